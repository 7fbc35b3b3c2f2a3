"""`anomaly-seg bench`: backends x scorers x camera sizes in one interleaved run, against eager torch; node overhead."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..defaults import BENCH_GAP_MS
from ..errors import AnomalySegError
from .outputs import prepare_out_file
from .types import FloatRange, IntRange, SizeArg, positive_int

if TYPE_CHECKING:
    from .help_format import CommandParser, Subparsers

__all__ = ['BENCH_SIZES', 'SizeList', 'add_parser', 'run']

HELP = 'latency of every backend and scorer at camera sizes, against eager torch; node overhead'
DESCRIPTION = f"""{HELP}.

Every configuration (backend, scorer, camera size) is warmed up, then the timed frames are interleaved over
all of them (frame i through each, the order rotated every frame). Each row gets its end-to-end p50/p95/p99,
its speed-up over eager torch fp32 (same scorer, size and frames) and its parity with it (labels agreeing,
largest score difference); the torch backend's pre/net/post split comes from a separate profiled pass.
Backends that cannot run here and scorers this model cannot run are listed with the reason.

With --soak N, only the soak runs (no backend table): the node process gets N frames at --rate Hz, then
--overload-frames (default N) at --overload times the rate it can sustain (1000 / its per-frame work p50);
printed: node RSS start/end and slope (MB per 1000 frames), frame age p50/p95/p99 and drops by cause."""

#: camera sizes (width, height) the bench runs at unless --sizes says otherwise
BENCH_SIZES = ((1024, 512), (2048, 1024))


class SizeList:
    """'1024x512,2048x1024' -> ((1024, 512), (2048, 1024))."""

    def __init__(self, minimum: int = 32) -> None:
        self.size = SizeArg(minimum)

    def __call__(self, text: str) -> tuple[tuple[int, int], ...]:
        sizes = tuple(self.size(part.strip()) for part in text.split(',') if part.strip())
        if not sizes:
            raise argparse.ArgumentTypeError(f'expected WIDTHxHEIGHT[,WIDTHxHEIGHT...] like 1024x512, got {text!r}')
        return sizes

    def show(self, value: tuple[tuple[int, int], ...]) -> str:
        return ','.join(self.size.show(v) for v in value)


def add_parser(subparsers: Subparsers) -> CommandParser:
    be = subparsers.add_parser('bench', help=HELP, description=DESCRIPTION)
    be.add_argument('--model', default='default', help='model folder or name under models/')
    be.add_argument(
        '--backend',
        default='all',
        help="'all', or a comma-separated list such as torch,onnxruntime (eager torch always runs: the reference)",
    )
    be.add_argument(
        '--scorer',
        default='',
        help="'all' (every scorer this model can run), or a comma-separated list (default: the model's own)",
    )
    be.add_argument('--sizes', type=SizeList(), default=BENCH_SIZES, help='camera frame sizes, comma-separated')
    be.add_argument('--frames', type=positive_int, default=30, help='timed frames per configuration')
    be.add_argument('--device', default='cpu', help='device: cpu, cuda or cuda:N')
    be.add_argument(
        '--gap-ms',
        type=FloatRange(0.0, 1000.0),
        default=BENCH_GAP_MS,
        help='idle ms before each timed call (camera-like pacing; 0 shows the cross-library spin penalty)',
    )
    be.add_argument('--json', type=Path, default=None, help='also write the figures to this JSON file')
    be.add_argument('--overwrite', action='store_true', help='replace an existing --json file')
    be.add_argument('--no-ros', action='store_true', help='skip the node-overhead measurement (through ROS)')
    soak = be.add_argument_group('soak (replaces the backend table)')
    soak.add_argument(
        '--soak',
        type=positive_int,
        default=None,
        metavar='N',
        help='N frames through the node at --rate, then the overload',
    )
    soak.add_argument(
        '--overload',
        type=FloatRange(0.0, 1000.0, lo_open=True),
        default=2.0,
        metavar='K',
        help='after the soak, frames at K x the sustainable rate',
    )
    soak.add_argument(
        '--overload-frames',
        type=IntRange(0),
        default=None,
        metavar='M',
        help='frames of the overload phase (default N)',
    )
    soak.add_argument(
        '--rate', type=FloatRange(0.0, 10000.0, lo_open=True), default=10.0, help='nominal soak rate in Hz'
    )
    return be


def run(args: argparse.Namespace) -> int:
    if args.soak is not None:
        return _run_soak(args)
    if args.json is not None:
        prepare_out_file(args.json, overwrite=args.overwrite, command='bench', option='--json')
    from ..bench import node_backend, print_report, run_bench

    report = run_bench(args.model, args.backend, args.scorer, args.sizes, args.frames, args.device, gap_ms=args.gap_ms)
    print_report(report)
    figures = report.to_json()
    if not args.no_ros:
        from ..ros.overhead import print_node_overhead

        backend, scorer = node_backend(report), report.scorers[0]
        print()
        figures['node_overhead'] = print_node_overhead(
            str(report.model.directory),
            scorer,
            backend,
            args.device,
            report.images,
            report.totals(backend, scorer),
            args.frames,
            args.gap_ms,
        )
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2, allow_nan=False) + '\n')
        print(f'\nwrote {args.json}')
    return 0


def _run_soak(args: argparse.Namespace) -> int:
    if len(args.sizes) != 1:
        sizes = SizeList().show(args.sizes)
        if args.sizes is not BENCH_SIZES:
            raise AnomalySegError(f'bench: --soak runs at one size; --sizes gave {sizes}')
        args.sizes = args.sizes[:1]  # the default list: its first size, 1024x512
    backend = 'auto' if args.backend == 'all' else args.backend
    if ',' in backend or args.scorer == 'all' or ',' in args.scorer:
        raise AnomalySegError('bench: --soak runs one backend and one scorer; give --backend NAME and --scorer NAME')
    if args.json is not None:
        prepare_out_file(args.json, overwrite=args.overwrite, command='bench', option='--json')
    from ..config import resolve_model_dir
    from ..ros.soak import print_soak, run_soak

    model = str(resolve_model_dir(args.model))
    report = run_soak(
        model,
        args.soak,
        args.overload,
        args.rate,
        args.sizes[0],
        overload_frames=args.overload_frames,
        device=args.device,
        backend=backend,
        scorer=args.scorer,
    )
    print_soak(report, model)
    if args.json is not None:
        args.json.write_text(json.dumps({'soak': report.to_json()}, indent=2, allow_nan=False) + '\n')
        print(f'\nwrote {args.json}')
    return 0
