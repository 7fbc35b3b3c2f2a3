"""The `anomaly-seg` parser, built from the subcommand modules, and `main`: run one command, map its errors.

Each subcommand module offers ``add_parser(subparsers)`` and ``run(args) -> int`` and imports its heavy
modules inside ``run``, so `--help` stays instant and only `node`, `demo`, `bench`, `profile` and live
`evaluate` touch rclpy.

Exit codes: 0 done; 2 bad input (argparse usage errors and AnomalySegError: a file, key, topic or value
named in one line); 1 anything else (an OSError, a bug: one line naming the exception); 130 Ctrl-C.
Tracebacks are printed only with the global ``--debug``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from typing import TYPE_CHECKING, Protocol

from ..errors import AnomalySegError
from . import (
    bag,
    bench,
    bench_metrics,
    bench_obstacles,
    blend,
    build_engine,
    demo,
    evaluate,
    export,
    fit,
    import_model,
    node,
    profile,
    train,
)
from .help_format import CommandParser

if TYPE_CHECKING:
    from .help_format import Subparsers

__all__ = ['COMMANDS', 'Subcommand', 'build_parser', 'main']


class Subcommand(Protocol):
    """What a subcommand module offers."""

    def add_parser(self, subparsers: Subparsers) -> CommandParser: ...

    def run(self, args: argparse.Namespace) -> int: ...


# In the order `anomaly-seg --help` lists them.
COMMANDS: tuple[Subcommand, ...] = (
    node,
    train,
    fit,
    import_model,
    blend,
    evaluate,
    bag,
    export,
    build_engine,
    bench,
    bench_metrics,
    bench_obstacles,
    profile,
    demo,
)

DESCRIPTION = 'One entry point for the node, training, evaluation, benchmark and demo.'


def build_parser() -> CommandParser:
    parser = CommandParser(prog='anomaly-seg', description=DESCRIPTION)
    parser.add_argument('-v', '--verbose', action='store_true', help='debug logging')
    parser.add_argument('--debug', action='store_true', help='print the full traceback of an error')
    # Only `node` sets takes_ros_args; run_command is the chosen module's run.
    parser.set_defaults(takes_ros_args=False)
    subparsers = parser.add_subparsers(dest='command', required=True)
    for command in COMMANDS:
        command.add_parser(subparsers).set_defaults(run_command=command.run)
    return parser


EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C


def main(argv: list[str] | None = None) -> int:
    """`anomaly-seg ARGS`: everything after `--ros-args` goes to ROS (node only).

    AnomalySegError -> exit 2, any other exception -> exit 1, Ctrl-C -> 130; each one line on stderr.
    """
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
        _report(args, f'error: {e}')
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _report(args, 'interrupted')
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - the last resort: one line instead of a traceback
        hint = '' if args.debug else ' (--debug shows the traceback)'
        _report(args, f'{_one_line(e)}{hint}')
        return EXIT_FAILED


def _report(args: argparse.Namespace, text: str) -> None:
    """The error line on stderr, after the traceback of the exception being handled if --debug was given."""
    if args.debug:
        traceback.print_exc()
    print(f'anomaly-seg {args.command}: {text}', file=sys.stderr)


def _one_line(e: BaseException) -> str:
    """'OSError: [Errno 28] No space left on device': the type and the message, whitespace folded to one line."""
    message = ' '.join(str(e).split())
    return f'{type(e).__name__}: {message}' if message else type(e).__name__
