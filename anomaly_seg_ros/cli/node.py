"""`anomaly-seg node`: check the params file, then run the ROS 2 node on it; `--ros-args ...` go to ROS."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .help_format import CommandParser, Subparsers

__all__ = ['add_parser', 'run']

HELP = 'run the ROS 2 node (extra --ros-args ... are passed to ROS)'


def add_parser(subparsers: Subparsers) -> CommandParser:
    p = subparsers.add_parser('node', help=HELP, description=HELP)
    p.add_argument('--params', type=Path, default=Path('config/default.yaml'), help='ROS 2 params file')
    p.set_defaults(takes_ros_args=True)
    return p


def run(args: argparse.Namespace) -> int:
    from ..config import load_node_config

    # Validate the whole file first: rclpy silently ignores keys the node never declares.
    load_node_config(args.params)
    from ..ros.node import main as node_main

    return node_main(['anomaly_seg', '--ros-args', '--params-file', str(args.params), *args.ros_args])
