"""`anomaly-seg bag from-dataset | info`: write a dataset or the synthetic world into a rosbag2; describe a bag."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..defaults import BAG_FRAME_ID, BAG_RATE_HZ, BAG_STORAGE, SYNTHETIC_EVAL_SEED, SYNTHETIC_FRAME_SIZE
from ..errors import AnomalySegError
from .types import FloatRange, SizeArg, dataset_formats, positive_int

if TYPE_CHECKING:
    from ..data.sample import Sample
    from ..data.synthetic import SyntheticWorld
    from .help_format import CommandParser, Subparsers

__all__ = ['STAMP_RATE_HZ', 'add_parser', 'run']

#: --rate: at 1e6 Hz consecutive stamps still differ by 1000 ns (rounding to whole ns cannot merge two frames);
#: at 1e-3 Hz (one frame per 1000 s) the uint32 seconds of builtin_interfaces/Time, counted from the first
#: stamp (stamps.STAMP0_NS, 1.7e9 s), still hold 2.5 million frames.
STAMP_RATE_HZ = FloatRange(1e-3, 1e6)

HELP = 'datasets to rosbag2, bag info (no ROS install needed)'


def add_parser(subparsers: Subparsers) -> CommandParser:
    bag = subparsers.add_parser('bag', help=HELP, description=HELP)
    what = bag.add_subparsers(dest='what', required=True)
    help_from = 'write camera frames + ground truth topics into a new bag'
    bf = what.add_parser('from-dataset', help=help_from, description=help_from)
    bf.add_argument('--format', required=True, choices=['synthetic', *dataset_formats()], help='what to read')
    bf.add_argument('--root', type=Path, help='dataset root (not for synthetic)')
    bf.add_argument('--split', help='dataset split (cityscapes/lostandfound)')
    bf.add_argument('--out', type=Path, required=True, help='bag to create (must not exist)')
    bf.add_argument('--storage', choices=['mcap', 'sqlite3'], default=BAG_STORAGE, help='rosbag2 storage plugin')
    bf.add_argument('--compressed', choices=['jpeg', 'png'], help='write sensor_msgs/CompressedImage instead of Image')
    bf.add_argument('--rate', type=STAMP_RATE_HZ, default=BAG_RATE_HZ, help='frames per second of the stamps')
    bf.add_argument('--frame-id', default=BAG_FRAME_ID, help='header frame_id of every message')
    bf.add_argument('--limit', type=positive_int, help='only the first N samples')
    bf.add_argument('--count', type=positive_int, default=50, help='synthetic: frames')
    bf.add_argument('--seed', type=int, default=SYNTHETIC_EVAL_SEED, help='synthetic: world seed')
    bf.add_argument('--size', type=SizeArg(), default=SYNTHETIC_FRAME_SIZE, help='synthetic: WIDTHxHEIGHT')
    help_info = 'topics, types, counts, duration of a bag'
    bi = what.add_parser('info', help=help_info, description=help_info)
    bi.add_argument('bag', type=Path, help='rosbag2 folder/file or ROS 1 bag')
    return bag


def run(args: argparse.Namespace) -> int:
    from ..bag import bag_info, write_bag

    if args.what == 'info':
        print(json.dumps(bag_info(args.bag), indent=2, default=str))
        return 0
    if args.format == 'synthetic':
        from ..data.synthetic import SyntheticWorld, WorldConfig

        w, h = args.size
        samples: SyntheticWorld | Sequence[Sample] = SyntheticWorld(
            args.count, seed=args.seed, config=WorldConfig(height=h, width=w)
        )
    else:
        from ..data.readers import open_dataset

        if args.root is None:
            raise AnomalySegError(f'bag from-dataset: --format {args.format} needs --root')
        samples = open_dataset(args.format, args.root, **({'split': args.split} if args.split else {}))
    if args.limit is not None:
        samples = [samples[i] for i in range(min(args.limit, len(samples)))]
    summary = write_bag(
        samples,
        args.out,
        storage=args.storage,
        compressed=args.compressed,
        rate_hz=args.rate,
        frame_id=args.frame_id,
    )
    print(json.dumps(summary, indent=2, default=str))
    return 0
