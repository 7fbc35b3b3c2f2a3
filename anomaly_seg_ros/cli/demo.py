"""`anomaly-seg demo`: start the node, stream synthetic frames to it, print latency and save heatmaps."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ..defaults import SYNTHETIC_FRAME_SIZE
from .types import SizeArg, positive_int

if TYPE_CHECKING:
    from .help_format import CommandParser, Subparsers

__all__ = ['add_parser', 'run']

HELP = 'start the node, stream synthetic frames, print latency, save heatmaps'


def add_parser(subparsers: Subparsers) -> CommandParser:
    de = subparsers.add_parser('demo', help=HELP, description=HELP)
    de.add_argument('--model', default='default', help='model folder or name under models/')
    de.add_argument('--frames', type=positive_int, default=20, help='synthetic frames to stream')
    de.add_argument('--size', type=SizeArg(), default=SYNTHETIC_FRAME_SIZE, help='frame WIDTHxHEIGHT')
    de.add_argument('--seed', type=int, default=2000, help='synthetic world seed')
    de.add_argument('--out', type=Path, default=Path('out'), help='folder for the saved heatmaps')
    return de


def run(args: argparse.Namespace) -> int:
    from ..ros.demo import run_demo

    return run_demo(model=args.model, frames=args.frames, size=args.size, out=args.out, seed=args.seed)
