"""`anomaly-seg import-model`: bring your own segmentation net (ONNX, state dict, TorchScript) as models/NAME/."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..defaults import CHANNEL_ORDER, DEFAULT_SCORER, IMAGENET_MEAN, IMAGENET_STD, IMPORT_CLASSES, PIXEL_SCALE
from .types import NumberList, ScaleArg, SizeArg, key_value

if TYPE_CHECKING:
    from .help_format import CommandParser, Subparsers

__all__ = ['add_parser', 'run']

HELP = 'bring your own segmentation net: writes and validates models/NAME/'


def add_parser(subparsers: Subparsers) -> CommandParser:
    im = subparsers.add_parser('import-model', help=HELP, description=HELP)
    model_file = im.add_mutually_exclusive_group(required=True)
    model_file.add_argument('--onnx', type=Path, help='ONNX file: NCHW float image in, NxKxHxW logits out')
    model_file.add_argument('--torch', type=Path, help='state dict of a registered architecture (see --architecture)')
    model_file.add_argument('--torchscript', type=Path, help='TorchScript archive of a segmentation net')
    im.add_argument('--name', help='model folder name (default: the file stem)')
    im.add_argument('--classes', default=IMPORT_CLASSES, help="'cityscapes' (19 trainIds) or a file, one name per line")
    im.add_argument('--input-size', type=SizeArg(), help='WIDTHxHEIGHT the net expects (default: from the ONNX input)')
    im.add_argument(
        '--channel-order', choices=['rgb', 'bgr'], default=CHANNEL_ORDER, help='channel order the net expects'
    )
    im.add_argument(
        '--scale', type=ScaleArg(), default=PIXEL_SCALE, help='multiply uint8 pixels by this first: 1 or 1/255'
    )
    im.add_argument(
        '--mean', type=NumberList(float, IMAGENET_MEAN), default=IMAGENET_MEAN, help='per channel, after scaling'
    )
    im.add_argument(
        '--std', type=NumberList(float, IMAGENET_STD), default=IMAGENET_STD, help='per channel, after scaling'
    )
    im.add_argument(
        '--void-channel', action='store_true', help='the net outputs one extra void/background channel last'
    )
    im.add_argument('--scorer', default=DEFAULT_SCORER, help='default scorer written into model.yaml')
    im.add_argument('--architecture', help='registered architecture for --torch (e.g. icnet_small)')
    im.add_argument('--arch-arg', type=key_value, action='append', metavar='KEY=VALUE', help='architecture argument')
    im.add_argument(
        '--tap',
        type=tap_arg,
        action='append',
        metavar='NAME=TENSOR',
        help='feature tap written into model.yaml taps: an ONNX tensor name (or a module path for --torch); repeatable',
    )
    im.add_argument('--models-dir', type=Path, help='where model folders live (default: the package models/)')
    im.add_argument('--overwrite', action='store_true', help='replace an existing model folder')
    return im


def tap_arg(text: str) -> tuple[str, str]:
    """'NAME=TENSOR' -> (NAME, TENSOR); the tensor name is kept verbatim (ONNX names hold '/', ':' and '.')."""
    name, sep, where = text.partition('=')
    if not sep or not name.strip() or not where.strip():
        raise argparse.ArgumentTypeError(f'expected NAME=TENSOR (e.g. features=/head/Relu_output_0), got {text!r}')
    return name.strip(), where.strip()


def run(args: argparse.Namespace) -> int:
    from ..config import default_models_dir
    from ..importer import ImportOptions, import_model

    fmt, source = next(
        (f, p)
        for f, p in (('onnx', args.onnx), ('torch', args.torch), ('torchscript', args.torchscript))
        if p is not None
    )
    # Without --architecture the ImportOptions default ('external') applies.
    architecture: dict[str, Any] = {'architecture': args.architecture} if args.architecture else {}
    opts = ImportOptions(
        name=args.name or source.stem,
        classes=args.classes,
        input_size=args.input_size,
        channel_order=args.channel_order,
        scale=args.scale,
        mean=args.mean,
        std=args.std,
        void_channel=args.void_channel,
        scorer=args.scorer,
        arch_args=dict(args.arch_arg or []),
        taps=dict(args.tap or []),
        **architecture,
    )
    out = import_model(source, fmt, opts, args.models_dir or default_models_dir(), overwrite=args.overwrite)
    print(
        f'wrote {out} (validated by a forward pass); run it with: anomaly-seg node --params ... '
        f'--ros-args -p model:={out}'
    )
    return 0
