"""`anomaly-seg export`: the fused pipeline graph (camera frame -> labels, score, aux) as one checked ONNX file.

The graph is the one the onnxruntime and tensorrt backends run (backends/source.py `GraphSource.onnx`, taken
from the content-keyed cache or exported into it), copied to --out with any external-data files beside it.
Before the file is put in place it passes onnx.checker and a parity run: a few deterministic synthetic road
frames through ONNX Runtime on the written file and through eager torch (the reference). Labels must agree
on >= 99.9 % of pixels and scores (and aux maps) within 1e-3; otherwise nothing is written and the exit code is 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .outputs import prepare_out_file
from .types import SizeArg, positive_int

if TYPE_CHECKING:
    from .help_format import CommandParser, Subparsers

__all__ = ['MAX_SIDE', 'AuxList', 'BoundedSize', 'add_parser', 'run']

HELP = 'write the fused pipeline graph (frame -> labels, score, aux) as one ONNX file, checked'
DESCRIPTION = f"""{HELP}.

Input 'frame': uint8 1xHxWx3 RGB at the camera size. Outputs 'labels' (uint8 1xHxW trainIds), 'score'
(float32 1xHxW) and one float32 1xHxW map per --aux scorer, all at the camera size. The file is checked by
onnx.checker and by running it in ONNX Runtime against eager torch on a few synthetic frames (labels agree
on >= 99.9 %, scores within 1e-3); if the check fails nothing is written and the exit code is 1."""

#: the largest camera side an export accepts (as import-model's limit on a declared input)
MAX_SIDE = 8192


class BoundedSize(SizeArg):
    """A camera size WIDTHxHEIGHT, each side in [minimum, MAX_SIDE]."""

    def __call__(self, text: str) -> tuple[int, int]:
        w, h = super().__call__(text)
        if w > MAX_SIDE or h > MAX_SIDE:
            raise argparse.ArgumentTypeError(f'size {text!r} too large (max {MAX_SIDE} per side)')
        return w, h


class AuxList:
    """'max_softmax,softmax_distance' -> ('max_softmax', 'softmax_distance'); '' -> ()."""

    def __call__(self, text: str) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(n.strip() for n in text.split(',') if n.strip()))
        if text.strip() and not names:
            raise argparse.ArgumentTypeError(f'expected comma-separated scorer names, got {text!r}')
        return names

    def show(self, value: tuple[str, ...]) -> str:
        return ','.join(value) or 'none'


def add_parser(subparsers: Subparsers) -> CommandParser:
    ex = subparsers.add_parser('export', help=HELP, description=DESCRIPTION)
    ex.add_argument('--model', default='default', help='model folder or name under models/')
    ex.add_argument('--scorer', default='', help="scorer in the graph (default: the model's own)")
    ex.add_argument('--out', type=Path, required=True, help='the ONNX file to write, e.g. pipeline.onnx')
    ex.add_argument(
        '--size',
        type=BoundedSize(),
        default=None,
        help="camera frame size WIDTHxHEIGHT (default: the model's input size)",
    )
    ex.add_argument(
        '--aux', type=AuxList(), default=(), help='extra score maps as graph outputs: comma-separated scorer names'
    )
    ex.add_argument('--frames', type=positive_int, default=3, help='synthetic frames for the parity check')
    ex.add_argument('--overwrite', action='store_true', help='replace an existing --out file')
    return ex


def _shape(value_info: Any) -> list[int | str]:
    return [
        d.dim_value if d.HasField('dim_value') else (d.dim_param or '?') for d in value_info.type.tensor_type.shape.dim
    ]


def describe(path: Path) -> tuple[list[str], list[tuple[str, str, str, list[int | str]]]]:
    """(opset imports as 'domain opset N', [(input|output, name, dtype, shape)]) read from the graph alone."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    opsets = [f'{o.domain or "ai.onnx"} opset {o.version}' for o in model.opset_import]
    initializers = {t.name for t in model.graph.initializer}
    rows = []
    for kind, values in (
        ('input', [i for i in model.graph.input if i.name not in initializers]),
        ('output', model.graph.output),
    ):
        for v in values:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name
            rows.append((kind, v.name, dtype, _shape(v)))
    return opsets, rows


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    prepare_out_file(out, overwrite=args.overwrite, command='export')
    from ..backends import GraphSource
    from ..backends.onnx_file import read_onnx_file_info
    from ..config import load_model_config, resolve_model_dir
    from ..scoring import build_scorer

    cfg = load_model_config(resolve_model_dir(args.model))
    scorer_name = args.scorer or cfg.scorer
    source = GraphSource(cfg, build_scorer(scorer_name, cfg), tuple(args.aux))
    w, h = args.size or (cfg.input.width, cfg.input.height)
    t0 = time.perf_counter()
    cached = source.onnx((h, w))
    export_s = time.perf_counter() - t0
    external = [out.parent / rel for rel in read_onnx_file_info(cached).external_data]
    clash = [p for p in external if p.exists()]
    if clash and not args.overwrite:
        raise ConfigError(
            f'export: the graph keeps its weights in external files, and {", ".join(map(str, clash))} already '
            'exist; pass --overwrite to replace them (nothing was written)'
        )
    print(f'model {cfg.name!r}, scorer {scorer_name!r}, aux {",".join(args.aux) or "none"}, camera {w}x{h}')
    print(f'graph: {cached} ({export_s:.2f} s to export or find in the cache)')
    tmp = out.with_name(f'.{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp')
    written: list[Path] = []
    try:
        for rel, target in zip(read_onnx_file_info(cached).external_data, external, strict=True):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cached.parent / rel, target)
            written.append(target)
        shutil.copyfile(cached, tmp)
        problem = check_file(tmp, args.model, scorer_name, tuple(args.aux), (w, h), args.frames)
    except BaseException:
        tmp.unlink(missing_ok=True)
        for p in written:
            p.unlink(missing_ok=True)
        raise
    if problem:
        tmp.unlink(missing_ok=True)
        for p in written:
            p.unlink(missing_ok=True)
        print(
            f'anomaly-seg export: parity check failed: {problem}; nothing was written to {out} '
            f'(the graph stays in the cache: {cached})',
            file=sys.stderr,
        )
        return 1
    tmp.replace(out)
    size = out.stat().st_size + sum(p.stat().st_size for p in external)
    extra = f' (with {len(external)} external-data file(s))' if external else ''
    print(f'wrote {out}: {size / 1e6:.2f} MB{extra}')
    return 0


def check_file(
    path: Path, model: str, scorer: str, aux: tuple[str, ...], size: tuple[int, int], frames: int
) -> str | None:
    """onnx.checker, then ONNX Runtime on `path` against eager torch; prints the figures, returns a parity
    problem (or None). BackendError when the checker or ONNX Runtime refuses the file."""
    import numpy as np

    from ..backends.export import check_onnx
    from ..backends.onnxruntime_backend import make_session
    from ..bench import LABEL_AGREEMENT, SCORE_ATOL, bench_frames, compare, parity_problem
    from ..pipeline import Pipeline, Result

    check_onnx(path)
    opsets, rows = describe(path)
    print(f'onnx.checker: ok; {", ".join(opsets)}')
    for kind, name, dtype, shape in rows:
        print(f'  {kind:<6} {name:<18} {dtype:<8} {shape}')
    reference = Pipeline.from_model(model, scorer, 'torch', aux=aux)
    session = make_session(path)
    names = [o.name for o in session.get_outputs()]
    agree = total = 0
    diffs = {name: 0.0 for name in ('score', *aux)}
    for frame in bench_frames(size, frames):
        ref = reference(frame)
        got = dict(zip(names, (o[0] for o in session.run(names, {'frame': frame[None]})), strict=True))
        if got['labels'].shape != ref.labels.shape or got['labels'].dtype != np.uint8:
            return f'labels come out {got["labels"].shape} {got["labels"].dtype}, expected {ref.labels.shape} uint8'
        a, t, d = compare(ref, Result(got['labels'], got['score'], reference.score_range))
        agree, total = agree + a, total + t
        diffs['score'] = d if np.isnan(d) else max(diffs['score'], d)
        for name in aux:
            d = float(np.abs(ref.aux[name].astype(np.float64) - got[name]).max())
            diffs[name] = d if np.isnan(d) else max(diffs[name], d)
    agreement = agree / total
    aux_text = ''.join(f', {name} {diffs[name]:.1e}' for name in aux)
    print(
        f'ONNX Runtime vs eager torch on {frames} synthetic frames: labels agree on {agreement * 100:.3f} % '
        f'(bound >= {LABEL_AGREEMENT * 100:g} %), max |score diff| {diffs["score"]:.1e}{aux_text} '
        f'(bound {SCORE_ATOL:g})'
    )
    problems = [parity_problem(agreement, diffs['score'])]
    problems += [f'aux {name}: {parity_problem(1.0, diffs[name])}' for name in aux if parity_problem(1.0, diffs[name])]
    return '; '.join(p for p in problems if p) or None
