"""`anomaly-seg bench-metrics`: throughput and peak memory of the pixel metrics, binned vs exact vs sklearn."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..eval.bench_metrics import METHODS
from .types import SizeArg, positive_int

if TYPE_CHECKING:
    from .help_format import CommandParser, Subparsers

__all__ = ['add_parser', 'run']

HELP = 'pixel-metric throughput and peak memory: binned vs exact vs sklearn'


def add_parser(subparsers: Subparsers) -> CommandParser:
    bm = subparsers.add_parser('bench-metrics', help=HELP, description=HELP)
    bm.add_argument('--frames', type=positive_int, default=200, help='frames per method')
    bm.add_argument('--size', type=SizeArg(), default=(2048, 1024), help='frame WIDTHxHEIGHT')
    bm.add_argument('--skip', action='append', choices=METHODS, help='leave a method out (repeatable)')
    return bm


def run(args: argparse.Namespace) -> int:
    from ..eval.bench_metrics import run_metrics_bench

    methods = tuple(m for m in METHODS if m not in (args.skip or []))
    run_metrics_bench(args.frames, args.size, methods)
    return 0
