"""`anomaly-seg blend`: paste RGBA objects into camera images (Fishyscapes-style) to make an anomaly val set."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ..defaults import (
    BLEND_COLOR_NOISE,
    BLEND_GLOW_PROB,
    BLEND_HORIZON,
    BLEND_IN_DISTRIBUTION_PROB,
    BLEND_OBJECTS_PER_IMAGE,
    BLEND_SCALE_RANGE,
    BLEND_SEED,
)
from .types import NumberList, positive_int

if TYPE_CHECKING:
    from .help_format import CommandParser, Subparsers

__all__ = ['add_parser', 'run']

HELP = 'paste RGBA objects into your images (Fishyscapes-style): an anomaly val set'


def add_parser(subparsers: Subparsers) -> CommandParser:
    bl = subparsers.add_parser('blend', help=HELP, description=HELP)
    bl.add_argument('--images', type=Path, required=True, help='folder of png/jpg camera images')
    bl.add_argument('--objects', type=Path, required=True, help='folder of RGBA png objects (the anomalies)')
    bl.add_argument('--in-dist-objects', type=Path, help='RGBA png objects blended the same way but labelled 0')
    bl.add_argument('--out', type=Path, required=True, help='output folder: images/, labels/, blend.json')
    bl.add_argument(
        '--objects-per-image',
        type=NumberList(int, BLEND_OBJECTS_PER_IMAGE),
        default=BLEND_OBJECTS_PER_IMAGE,
        help='MIN,MAX objects per image',
    )
    bl.add_argument(
        '--scale-range',
        type=NumberList(float, BLEND_SCALE_RANGE),
        default=BLEND_SCALE_RANGE,
        help='MIN,MAX object height as a fraction of image height (far..near)',
    )
    bl.add_argument('--horizon', type=float, default=BLEND_HORIZON, help='horizon row as a fraction of image height')
    bl.add_argument(
        '--in-dist-prob', type=float, default=BLEND_IN_DISTRIBUTION_PROB, help='chance an object is in-distribution'
    )
    bl.add_argument('--glow-prob', type=float, default=BLEND_GLOW_PROB, help='chance of a glow halo per object')
    bl.add_argument(
        '--color-noise', type=float, default=BLEND_COLOR_NOISE, help='std of per-pixel colour noise (fraction of 255)'
    )
    bl.add_argument('--no-motion-blur', action='store_true', help='no radial motion blur')
    bl.add_argument('--no-depth-blur', action='store_true', help='no blur of small (far) objects')
    bl.add_argument('--seed', type=int, default=BLEND_SEED, help='same seed, byte-identical output')
    bl.add_argument('--limit', type=positive_int, help='only the first N images')
    return bl


def run(args: argparse.Namespace) -> int:
    from ..data.blend import BlendConfig
    from ..data.blend_folder import blend_folder

    cfg = BlendConfig(
        objects_per_image=args.objects_per_image,
        scale_range=args.scale_range,
        horizon=args.horizon,
        in_distribution_prob=args.in_dist_prob,
        glow_prob=args.glow_prob,
        motion_blur=not args.no_motion_blur,
        depth_blur=not args.no_depth_blur,
        color_noise=args.color_noise,
        seed=args.seed,
    )
    n = blend_folder(args.images, args.objects, args.out, cfg, in_dist_dir=args.in_dist_objects, limit=args.limit)
    print(
        f'wrote {n} blended images to {args.out}/images, labels (0 in-dist, 1 anomaly, 255 ignore) to '
        f'{args.out}/labels, settings to {args.out}/blend.json'
    )
    return 0
