"""`anomaly-seg fit METHOD`: fit a scorer on the user's own frames and record it in the model folder.

    anomaly-seg fit {sml,flow} --model M (--bag BAG [--image-topic T] | --images DIR | --dataset F --root DIR
        [--split S] | --synthetic N [--seed S]) [--limit N] [method options] [--json F] [--overwrite] [--set-default]

Steps: load the model folder; open and check the frames (fit/sources.py: refused up front when the model
cannot take them); run the method's fitter over them with a progress bar (it writes its artefact files
beside model.yaml, atomically); merge its entry (params, artefacts, taps) into model.yaml (fit/model_yaml.py);
then build the Pipeline with the fitted scorer and run one frame through it, so a broken artefact fails
here and not on the vehicle. Prints the summary and where the files went.

Fitter modules (anomaly_seg_ros.fit.FITTERS) are imported only once a method is chosen, so `--help` stays
light and a missing fitter says it is not available (exit 2) instead of breaking the command line. The
method's own options therefore appear in `anomaly-seg fit METHOD --help`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, overload

from ..errors import ConfigError
from .help_format import CommandParser

if TYPE_CHECKING:
    from ..data.sample import Sample
    from .help_format import Subparsers

__all__ = ['add_parser', 'load_fitter', 'method_parser', 'run']

HELP = 'fit a scorer (sml, flow) on your own frames: a bag, an image folder, a dataset or the synthetic world'
DESCRIPTION = f"""{HELP}.

Writes the fitted files beside model.yaml, records them under `scorers:` there, and checks the result by
running one frame through the Pipeline with the fitted scorer. Methods:

  sml    standardized max-logit (Jung et al. 2021): per-class max-logit statistics, no labels needed
  flow   Real-NVP density of feature-tap embeddings (Fishyscapes sec. 4.2)
  meta   obstacle meta classifier (Chan et al. sec. 4): TP vs FP segments, needs anomaly ground truth;
         recorded under `obstacles:` (no scorer)

`anomaly-seg fit METHOD --help` lists the frame-source options and the method's own options. Example:

    anomaly-seg fit sml --model default --bag drive1.mcap --image-topic /camera/front/image_raw"""


def _methods() -> tuple[str, ...]:
    from ..fit import FITTERS

    return tuple(FITTERS)


def add_parser(subparsers: Subparsers) -> CommandParser:
    fp = subparsers.add_parser('fit', help=HELP, description=DESCRIPTION)
    fp.add_argument('method', choices=_methods(), help='the scorer to fit')
    fp.add_argument(
        'options', nargs=argparse.REMAINDER, help='--model M, a frame source and method options (see fit METHOD --help)'
    )
    return fp


def load_fitter(method: str) -> ModuleType:
    """The fitter module of `method`; ConfigError when it is unknown or cannot be imported."""
    from ..fit import FITTERS

    if method not in FITTERS:
        raise ConfigError(f'fit: unknown method {method!r}; available: {", ".join(FITTERS)}')
    try:
        module = importlib.import_module(FITTERS[method])
    except ImportError as e:
        raise ConfigError(
            f'fit {method}: not available in this installation (module {FITTERS[method]} cannot be imported: {e})'
        ) from None
    missing = [name for name in ('HELP', 'add_arguments', 'fit') if not hasattr(module, name)]
    if missing:
        raise ConfigError(f'fit {method}: module {FITTERS[method]} lacks {", ".join(missing)}: not a fitter')
    return module


def method_parser(method: str, fitter: ModuleType) -> CommandParser:
    """The parser of `anomaly-seg fit METHOD`: common options, frame sources, then the fitter's own."""
    from ..fit.sources import add_source_arguments

    p = CommandParser(prog=f'anomaly-seg fit {method}', description=f'{fitter.HELP}.\n\n{DESCRIPTION}')
    p.add_argument('--model', required=True, help='model folder, or the name of a folder under models/')
    p.add_argument('--device', default='cpu', help="where the net runs while fitting: 'cpu', 'cuda', 'cuda:N'")
    p.add_argument('--json', type=Path, default=None, help='also write the fit summary to this JSON file')
    p.add_argument('--overwrite', action='store_true', help=f'replace an existing scorers.{method} entry and its files')
    p.add_argument('--set-default', action='store_true', help=f"make {method} the model's scorer (model.yaml scorer:)")
    add_source_arguments(p)
    fitter.add_arguments(p)
    return p


class _Progress:
    """The frames, with a tqdm bar advancing as a fitter iterates them (each pass gets its own bar)."""

    def __init__(self, frames: Sequence[Sample], desc: str) -> None:
        self.frames = frames
        self.desc = desc

    def __len__(self) -> int:
        return len(self.frames)

    @overload
    def __getitem__(self, i: int) -> Sample: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[Sample]: ...

    def __getitem__(self, i: int | slice) -> Sample | Sequence[Sample]:
        return self.frames[i]

    def __iter__(self) -> Iterator[Sample]:
        from tqdm import tqdm

        yield from tqdm(self.frames, total=len(self.frames), desc=self.desc, unit='frame')


def run(args: argparse.Namespace) -> int:
    fitter = load_fitter(args.method)
    opts = method_parser(args.method, fitter).parse_args(args.options)
    from ..config import load_model_config, resolve_model_dir
    from ..fit.model_yaml import update_model_yaml
    from ..fit.sources import open_frames
    from ..pipeline import Pipeline

    model_dir = resolve_model_dir(opts.model)
    cfg = load_model_config(model_dir)
    if args.method in cfg.scorers and args.method != 'meta' and not opts.overwrite:
        raise ConfigError(
            f'{model_dir / "model.yaml"} already has scorers.{args.method}; pass --overwrite to fit it again '
            '(its files are replaced)'
        )
    frames = open_frames(opts, cfg)
    print(f'fit {args.method}: model {cfg.name!r} ({model_dir}), {len(frames)} frames from {frames.describe}')
    t0 = time.perf_counter()
    result = fitter.fit(model_dir, _Progress(frames, f'fit {args.method}'), opts)
    fit_s = time.perf_counter() - t0
    yaml_path = update_model_yaml(model_dir, result, set_default=opts.set_default)
    check = _check(Pipeline, model_dir, result.scorer, frames[0].image, opts.device)
    _print_summary(result.summary)
    files = [model_dir / name for name in result.artefacts.values()]
    for f in files:
        print(f'wrote {f} ({f.stat().st_size / 1e3:.1f} kB)')
    default = ' (now the default scorer)' if opts.set_default else ''
    recorded = [f'scorers.{result.scorer}'] if result.record_scorer else []
    recorded += list(result.model_yaml)
    print(f'updated {yaml_path}: {", ".join(recorded)}{default}; taps {result.taps or "none"}')
    print(
        f'check: Pipeline with scorer {result.scorer!r} ran one {check["frame"]} frame in {check["ms"]:.0f} ms, '
        f'scores {check["score_min"]:.3g}..{check["score_max"]:.3g}'
    )
    print(f'fit took {fit_s:.1f} s')
    if opts.json is not None:
        report = {
            'method': args.method,
            'model': str(model_dir),
            'model_yaml': str(yaml_path),
            'source': frames.describe,
            'frames': len(frames),
            'scorer': result.scorer,
            'params': result.params,
            'artefacts': {k: str(model_dir / v) for k, v in result.artefacts.items()},
            'taps': result.taps,
            'summary': result.summary,
            'check': check,
            'fit_seconds': round(fit_s, 2),
        }
        opts.json.parent.mkdir(parents=True, exist_ok=True)
        opts.json.write_text(json.dumps(report, indent=2, default=str) + '\n', encoding='utf-8')
        print(f'wrote {opts.json}')
    return 0


def _check(pipeline: Any, model_dir: Path, scorer: str, image: Any, device: str) -> dict[str, Any]:
    """One frame through the Pipeline with the fitted scorer (eager torch: the reference path)."""
    t0 = time.perf_counter()
    p = pipeline.from_model(model_dir, scorer=scorer, backend='torch', device=device)
    try:
        out = p(image)
    finally:
        p.close()
    h, w = image.shape[:2]
    return {
        'frame': f'{w}x{h}',
        'ms': (time.perf_counter() - t0) * 1e3,
        'score_min': float(out.score.min()),
        'score_max': float(out.score.max()),
    }


def _print_summary(summary: dict[str, Any]) -> None:
    """Scalars one per line; a mapping of mappings (per-class figures) as a table."""
    for key, value in summary.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            cols = list(next(iter(value.values())))
            # every column at least one space wider than its header and its widest cell
            widths = [1 + max(len(c), *(len(_fmt(row.get(c))) for row in value.values())) for c in cols]
            print(f'{key}:')
            print('  ' + f'{"":<16}' + ''.join(f'{c:>{w}}' for c, w in zip(cols, widths, strict=True)))
            for name, row in value.items():
                cells = ''.join(f'{_fmt(row.get(c)):>{w}}' for c, w in zip(cols, widths, strict=True))
                print('  ' + f'{name:<16}' + cells)
        else:
            print(f'{key}: {_fmt(value)}')


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f'{value:.4g}'
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return str(value)
