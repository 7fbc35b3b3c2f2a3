"""`anomaly-seg train seg`: train the segmentation net on the synthetic world or Cityscapes; writes a model folder."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..defaults import (
    SEG_BATCH,
    SEG_CROP_SIZE,
    SEG_EVAL_EVERY,
    SEG_INPUT_SIZE,
    SEG_ITERS,
    SEG_LR,
    SEG_SEED,
    SEG_THREADS,
    SEG_WIDTH,
)
from ..errors import AnomalySegError, CheckpointError
from .outputs import prepare_out_dir
from .types import SizeArg, positive_float, positive_int

if TYPE_CHECKING:  # annotations only: the data modules stay lazily imported
    from ..data.sample import Sample
    from ..data.synthetic import SyntheticWorld
    from .help_format import CommandParser, Subparsers

__all__ = ['MODEL_FILES', 'add_parser', 'run']

DATASETS = ('synthetic', 'cityscapes')
#: what `train seg --out DIR` writes into DIR; any of them there already means DIR holds a model
MODEL_FILES = ('model.yaml', 'model.pt', 'checkpoint.pt', 'train_log.json')


def add_parser(subparsers: Subparsers) -> CommandParser:
    train = subparsers.add_parser('train', help='training entry points', description='Training entry points.')
    what = train.add_subparsers(dest='what', required=True)
    help_seg = 'train the segmentation net; writes a model folder'
    ts = what.add_parser('seg', help=help_seg, description=help_seg)
    ts.add_argument('--dataset', default=DATASETS[0], choices=DATASETS, help='training data')
    ts.add_argument('--root', type=Path, help='dataset root for --dataset cityscapes (holds leftImg8bit/, gtFine/)')
    ts.add_argument('--train-split', default='train', help='Cityscapes split to train on')
    ts.add_argument('--val-split', default='val', help='Cityscapes split for the periodic mIoU')
    ts.add_argument('--out', type=Path, required=True, help='model folder to write (model.yaml, model.pt, ...)')
    ts.add_argument('--iters', type=positive_int, default=SEG_ITERS, help='training iterations (batches)')
    ts.add_argument('--batch', type=positive_int, default=SEG_BATCH, help='crops per batch')
    ts.add_argument('--lr', type=positive_float, default=SEG_LR, help='base learning rate (poly decay)')
    ts.add_argument('--width', type=int, default=SEG_WIDTH, help='channel width of icnet_small')
    ts.add_argument('--input-size', type=SizeArg(), default=SEG_INPUT_SIZE, help='network input WIDTHxHEIGHT')
    ts.add_argument('--crop', type=SizeArg(), default=SEG_CROP_SIZE, help='training crop WIDTHxHEIGHT')
    ts.add_argument(
        '--train-frames', type=positive_int, default=2000, help='synthetic frames to pre-render for training'
    )
    ts.add_argument('--val-frames', type=int, default=100, help='validation frames (Cityscapes: first N; 0 = all)')
    ts.add_argument(
        '--eval-every', type=positive_int, default=SEG_EVAL_EVERY, help='iterations between validation runs'
    )
    ts.add_argument('--seed', type=int, default=SEG_SEED, help='seed of the training run and the synthetic world')
    ts.add_argument('--threads', type=int, default=SEG_THREADS, help="torch threads (0: torch's own default)")
    ts.add_argument('--resume', action='store_true', help='continue from OUT/checkpoint.pt')
    ts.add_argument('--overwrite', action='store_true', help='replace a model already in --out (else refused)')
    return train


def run(args: argparse.Namespace) -> int:
    from ..train.seg import SegTrainConfig, train_segmentation

    cfg = SegTrainConfig(
        out=args.out,
        width=args.width,
        input_height=args.input_size[1],
        input_width=args.input_size[0],
        crop_height=args.crop[1],
        crop_width=args.crop[0],
        batch=args.batch,
        iters=args.iters,
        lr=args.lr,
        eval_every=args.eval_every,
        seed=args.seed,
        threads=args.threads,
    )
    # Everything that can be refused is refused before frames are rendered or a batch is trained.
    cfg.validate()
    if args.resume and not (args.out / 'checkpoint.pt').is_file():
        raise CheckpointError(f'{args.out / "checkpoint.pt"}: --resume given but no checkpoint there')
    prepare_out_dir(args.out, MODEL_FILES, overwrite=args.overwrite or args.resume, command='train seg')
    train: Sequence[Sample]
    val: Sequence[Sample]
    if args.dataset == 'synthetic':
        from ..data.synthetic import SyntheticWorld, WorldConfig

        world = WorldConfig(height=cfg.input_height, width=cfg.input_width, anomaly_prob=0.0)
        train = _materialise(SyntheticWorld(args.train_frames, seed=args.seed, config=world), 'generate train')
        val = _materialise(SyntheticWorld(args.val_frames, seed=args.seed + 1, config=world), 'generate val')
        source = f'{args.train_frames} synthetic frames (seed {args.seed})'
    elif args.dataset == 'cityscapes':
        from ..data.readers import CityscapesReader

        if args.root is None:
            raise AnomalySegError('train seg: --dataset cityscapes needs --root (the folder holding leftImg8bit/)')
        # Real datasets stay on disk and are read per batch; only the synthetic world is pre-rendered.
        train = CityscapesReader(args.root, split=args.train_split)
        full_val = CityscapesReader(args.root, split=args.val_split)
        val = [full_val[i] for i in range(min(len(full_val), args.val_frames))] if args.val_frames else full_val
        source = f'Cityscapes {args.train_split} ({len(train)} frames) under {args.root}'
    else:
        raise AnomalySegError(f'train seg: unknown dataset {args.dataset!r}; use synthetic or cityscapes')
    desc = f'{cfg.architecture} width {args.width} trained on {source} by `anomaly-seg train seg`'
    summary = train_segmentation(cfg, train, val, resume=args.resume, description=desc)
    last = summary['history'][-1] if summary['history'] else {}
    print(json.dumps({'out': str(args.out), **last}, indent=2))
    return 0


def _materialise(world: SyntheticWorld, desc: str) -> list[Sample]:
    """Pre-render frames once: training revisits each frame many times and rendering costs more than a copy."""
    from tqdm import tqdm

    return [world[i] for i in tqdm(range(len(world)), desc=desc)]
