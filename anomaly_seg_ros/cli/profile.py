"""`anomaly-seg profile`: attach to a running node, match its inputs and outputs by stamp, print a live table
(rates, frame age, per-stage times, drops) and write profile.json and profile.png on exit."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from .outputs import prepare_out_dir
from .types import FloatRange, positive_float

if TYPE_CHECKING:
    from .help_format import CommandParser, Subparsers

__all__ = ['add_parser', 'run']

HELP = 'attach to a running node: live rates, frame age, stage times and drops; JSON and a plot on exit'
DESCRIPTION = f"""{HELP}.

The node is not restarted: a separate ROS node listens to the camera topic the node reads (--image), to
the node's outputs and to /diagnostics, on the current ROS_DOMAIN_ID. Inputs and outputs are matched by
header stamp. Frame age = receive time of a frame's last output here minus its header stamp (camera to
output, the latency the vehicle sees); 'node p50' = last output minus input, both received here (one
clock, independent of the camera's). Stage times are the node's own diagnostics p50s. A frame seen on
--image with no output after --timeout is a drop; with only some outputs, partial.
Stamps in the future (beyond --future-tolerance) or older than --past-limit (sim time, a replay with its
recorded stamps) are reported as clock skew, and the ages marked unreliable ('!' in the table).
Listening to the colour and heatmap outputs makes a node that renders them only while subscribed do that
work: pass --outputs segmentation,anomaly_score to profile it as a vehicle without viewers runs it.
Ends on Ctrl-C, SIGTERM or after --duration; exit 0 with the files written."""

OUTPUT_NAMES = ('segmentation', 'anomaly_score', 'segmentation/color', 'anomaly_heatmap')


class OutputList:
    """'segmentation,anomaly_score' -> ('segmentation', 'anomaly_score'); only the node's output names."""

    def __call__(self, text: str) -> tuple[str, ...]:
        names = tuple(part.strip().strip('/') for part in text.split(',') if part.strip())
        bad = [n for n in names if n not in OUTPUT_NAMES]
        if not names or bad:
            raise argparse.ArgumentTypeError(
                f'expected a comma-separated list of {", ".join(OUTPUT_NAMES)}, got {text!r}'
            )
        return names

    def show(self, value: tuple[str, ...]) -> str:
        return ','.join(value)


def add_parser(subparsers: Subparsers) -> CommandParser:
    p = subparsers.add_parser('profile', help=HELP, description=DESCRIPTION)
    p.add_argument('--image', required=True, help='the camera topic the node reads, e.g. /camera/image_raw')
    p.add_argument(
        '--node', default='/', help="the node's namespace ('/ns') or fully qualified name ('/ns/anomaly_seg')"
    )
    p.add_argument(
        '--duration',
        type=positive_float,
        default=None,
        help='seconds to profile (default: until Ctrl-C or SIGTERM)',
    )
    p.add_argument('--out', type=Path, default=Path('profile'), help='folder for profile.json and profile.png')
    p.add_argument('--overwrite', action='store_true', help='replace profile.json / profile.png already in --out')
    p.add_argument('--outputs', type=OutputList(), default=OUTPUT_NAMES, help='node outputs to match, comma-separated')
    p.add_argument(
        '--timeout',
        type=FloatRange(0.01, 600.0),
        default=2.0,
        help='seconds after which a frame without all its outputs counts as dropped (or partial)',
    )
    p.add_argument('--window', type=FloatRange(0.1, 3600.0), default=5.0, help='seconds the live figures cover')
    p.add_argument(
        '--future-tolerance',
        type=FloatRange(0.0, 3600.0),
        default=0.5,
        help='seconds a stamp may lie ahead of this clock before it counts as clock skew',
    )
    p.add_argument(
        '--past-limit',
        type=FloatRange(0.01, 1e9),
        default=30.0,
        help='seconds a stamp may lie behind this clock before it counts as skew (sim time, old replay)',
    )
    p.add_argument(
        '--discovery-timeout',
        type=FloatRange(0.0, 600.0),
        default=10.0,
        help='seconds to wait for the node to appear on the ROS graph',
    )
    return p


def run(args: argparse.Namespace) -> int:
    prepare_out_dir(args.out, ('profile.json', 'profile.png'), overwrite=args.overwrite, command='profile')
    from ..ros.profile import run_profile

    run_profile(
        args.image,
        args.node,
        args.out,
        duration_s=args.duration,
        outputs=args.outputs,
        timeout_s=args.timeout,
        window_s=args.window,
        future_tol_s=args.future_tolerance,
        past_limit_s=args.past_limit,
        discovery_s=args.discovery_timeout,
    )
    return 0
