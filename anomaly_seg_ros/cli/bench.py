"""`anomaly-seg bench`: per-stage latency of the Pipeline at 1024x512 and 2048x1024, and the node's overhead."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .types import positive_int

if TYPE_CHECKING:
    from .help_format import CommandParser, Subparsers

__all__ = ['add_parser', 'run']

HELP = 'per-stage latency at 1024x512 and 2048x1024, and node overhead'


def add_parser(subparsers: Subparsers) -> CommandParser:
    be = subparsers.add_parser('bench', help=HELP, description=HELP)
    be.add_argument('--model', default='default', help='model folder or name under models/')
    be.add_argument('--scorer', default='', help="scorer (default: the model's own)")
    be.add_argument('--frames', type=positive_int, default=30, help='timed frames per size')
    be.add_argument('--device', default='cpu', help='torch device')
    be.add_argument('--no-ros', action='store_true', help='skip the through-ROS measurement')
    return be


def run(args: argparse.Namespace) -> int:
    from ..bench import run_bench

    direct, images = run_bench(model=args.model, scorer=args.scorer, frames=args.frames, device=args.device)
    if not args.no_ros:
        from ..ros.overhead import print_node_overhead

        print_node_overhead(args.model, args.scorer, args.device, images, direct, args.frames)
    return 0
