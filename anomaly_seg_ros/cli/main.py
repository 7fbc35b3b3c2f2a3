"""The `anomaly-seg` parser, built from the subcommand modules, and `main`: run one command, errors to exit 2.

Each subcommand module offers ``add_parser(subparsers)`` and ``run(args) -> int`` and imports its heavy
modules inside ``run``, so `--help` stays instant and only `node`, `demo` and `bench` touch rclpy.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Protocol

from ..errors import AnomalySegError
from . import bag, bench, bench_metrics, blend, demo, evaluate, import_model, node, train
from .help_format import CommandParser

if TYPE_CHECKING:
    from .help_format import Subparsers

__all__ = ['COMMANDS', 'Subcommand', 'build_parser', 'main']


class Subcommand(Protocol):
    """What a subcommand module offers."""

    def add_parser(self, subparsers: Subparsers) -> CommandParser: ...

    def run(self, args: argparse.Namespace) -> int: ...


# In the order `anomaly-seg --help` lists them.
COMMANDS: tuple[Subcommand, ...] = (node, train, import_model, blend, evaluate, bag, bench, bench_metrics, demo)

DESCRIPTION = 'One entry point for the node, training, evaluation, benchmark and demo.'


def build_parser() -> CommandParser:
    parser = CommandParser(prog='anomaly-seg', description=DESCRIPTION)
    parser.add_argument('-v', '--verbose', action='store_true', help='debug logging')
    # Only `node` sets takes_ros_args; run_command is the chosen module's run.
    parser.set_defaults(takes_ros_args=False)
    subparsers = parser.add_subparsers(dest='command', required=True)
    for command in COMMANDS:
        command.add_parser(subparsers).set_defaults(run_command=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """`anomaly-seg ARGS`: everything after `--ros-args` goes to ROS (node only); AnomalySegError -> exit 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ros_args: list[str] = []
    if '--ros-args' in argv:
        i = argv.index('--ros-args')
        argv, ros_args = argv[:i], argv[i + 1 :]
    args = build_parser().parse_args(argv)
    args.ros_args = ros_args
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format='%(levelname)s %(message)s')
    try:
        if ros_args and not args.takes_ros_args:
            raise AnomalySegError(f'--ros-args only applies to `node`, not `{args.command}`')
        result: int = args.run_command(args)
        return result
    except AnomalySegError as e:
        print(f'anomaly-seg {args.command}: error: {e}', file=sys.stderr)
        return 2
