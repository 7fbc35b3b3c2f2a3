"""`anomaly-seg train seg | entropy-max`: train the segmentation net (synthetic world or Cityscapes), or fine-tune
a model folder by entropy maximisation on labelled frames with pasted proxy objects; each writes a model folder."""

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
from .types import FloatRange, IntRange, SizeArg, dataset_formats, positive_float, positive_int

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
    ts.set_defaults(train_run=_run_seg)
    _add_entropy_max(what)
    return train


def _add_entropy_max(what: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    # the defaults are train/entropy_max.py's EM_* constants, repeated because importing that module here would pull
    # torch into --help; test_entropy_max checks that they agree
    help_em = (
        'fine-tune a model by entropy maximisation (Chan et al. 2021, sec. 3.1): cross entropy on labelled '
        'frames, maximal softmax entropy on pasted proxy objects; writes a new model folder with scorer entropy'
    )
    em = what.add_parser('entropy-max', help=help_em, description=help_em)
    em.add_argument('--model', required=True, help='model folder (or name under models/) to start from; format torch')
    em.add_argument('--out', type=Path, required=True, help='new model folder to write (model.yaml, model.pt, ...)')
    src = em.add_argument_group('in-distribution frames, with segmentation labels (one of --dataset, --synthetic)')
    src.add_argument(
        '--dataset', help='dataset format; its frames need trainId labels (cityscapes): ' + ', '.join(dataset_formats())
    )
    src.add_argument('--root', type=Path, help='dataset root for --dataset')
    src.add_argument('--split', default='train', help='split to train on, for formats with splits (cityscapes)')
    src.add_argument(
        '--val-split', default='val', help='split for the validation mIoU/entropy, for formats with splits'
    )
    src.add_argument('--synthetic', type=positive_int, metavar='N', help='N synthetic frames, seed --seed')
    prox = em.add_argument_group('OoD proxies (one of --proxy-objects, --proxy-synthetic)')
    prox.add_argument('--proxy-objects', type=Path, help='folder of RGBA PNG objects pasted into training frames')
    prox.add_argument(
        '--proxy-synthetic',
        action='store_true',
        help="the synthetic world's 'proxy' obstacle family (only with --synthetic; evaluation uses 'test')",
    )
    em.add_argument(
        '--lambda',
        dest='lam',
        metavar='LAMBDA',
        type=FloatRange(0.0, 1.0),
        default=0.9,
        help='weight of the proxy entropy term (eq. 2)',
    )
    em.add_argument('--iters', type=positive_int, default=1000, help='fine-tuning iterations (batches)')
    em.add_argument('--batch', type=positive_int, default=SEG_BATCH, help='crops per batch (>= 2)')
    em.add_argument('--lr', type=positive_float, default=5e-5, help='base learning rate (AdamW, poly decay)')
    em.add_argument(
        '--proxy-prob',
        type=FloatRange(0.0, 1.0),
        default=0.5,
        help='chance that a training frame holds proxy objects (pasted ones, or synthetic frames with obstacles)',
    )
    em.add_argument('--crop', type=SizeArg(), default=SEG_CROP_SIZE, help='training crop WIDTHxHEIGHT (fits the input)')
    em.add_argument('--val-frames', type=IntRange(0), default=50, help='validation frames (dataset: first N; 0 = all)')
    em.add_argument(
        '--eval-every', type=positive_int, default=SEG_EVAL_EVERY, help='iterations between validation runs'
    )
    em.add_argument('--seed', type=int, default=SEG_SEED, help='seed of the run and of the synthetic world')
    em.add_argument('--threads', type=int, default=SEG_THREADS, help="torch threads (0: torch's own default)")
    em.add_argument('--resume', action='store_true', help='continue from OUT/checkpoint.pt')
    em.add_argument('--overwrite', action='store_true', help='replace a model already in --out (else refused)')
    em.set_defaults(train_run=_run_entropy_max)


def run(args: argparse.Namespace) -> int:
    result: int = args.train_run(args)
    return result


def _run_seg(args: argparse.Namespace) -> int:
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


def _run_entropy_max(args: argparse.Namespace) -> int:
    from ..config import load_model_config, resolve_model_dir
    from ..train.entropy_max import MODEL_FILES as EM_FILES
    from ..train.entropy_max import EntropyMaxConfig, train_entropy_max

    cmd = 'train entropy-max'
    cfg = EntropyMaxConfig(
        out=args.out,
        lam=args.lam,
        iters=args.iters,
        batch=args.batch,
        lr=args.lr,
        proxy_prob=args.proxy_prob,
        crop_height=args.crop[1],
        crop_width=args.crop[0],
        eval_every=args.eval_every,
        seed=args.seed,
        threads=args.threads,
    )
    # Everything that can be refused is refused before frames are rendered or a batch is trained.
    cfg.validate()
    if (args.dataset is None) == (args.synthetic is None):
        raise AnomalySegError(f'{cmd}: give exactly one frame source: --dataset FORMAT --root DIR, or --synthetic N')
    if (args.proxy_objects is None) == (not args.proxy_synthetic):
        raise AnomalySegError(f'{cmd}: give exactly one proxy source: --proxy-objects DIR, or --proxy-synthetic')
    if args.proxy_synthetic and args.synthetic is None:
        raise AnomalySegError(
            f'{cmd}: --proxy-synthetic marks obstacles the synthetic world draws; '
            'with --dataset use --proxy-objects DIR'
        )
    model_dir = resolve_model_dir(args.model)
    base = load_model_config(model_dir)
    if args.crop[0] > base.input.width or args.crop[1] > base.input.height:
        raise AnomalySegError(
            f'{cmd}: --crop {args.crop[0]}x{args.crop[1]} does not fit the model input '
            f'{base.input.width}x{base.input.height} of {model_dir}'
        )
    if model_dir.resolve() == args.out.resolve():
        raise AnomalySegError(f'{cmd}: --out {args.out} is the --model folder; write the fine-tuned model elsewhere')
    objects = None
    if args.proxy_objects is not None:
        from ..data.blend import load_objects

        try:
            objects = load_objects(args.proxy_objects)
        except AnomalySegError as e:
            raise AnomalySegError(f'{cmd}: --proxy-objects: {e}') from None
    if args.resume and not (args.out / 'checkpoint.pt').is_file():
        raise CheckpointError(f'{args.out / "checkpoint.pt"}: --resume given but no checkpoint there')
    train: Sequence[Sample] = []
    val: Sequence[Sample] = []
    if args.dataset is not None:  # opened (and checked for labels) before anything is written
        train, val = _open_labelled(args, cmd)
    prepare_out_dir(args.out, EM_FILES, overwrite=args.overwrite or args.resume, command=cmd)
    if args.synthetic is not None:
        from ..data.synthetic import SyntheticWorld, WorldConfig

        family = 'proxy'  # never 'test': that is what evaluation uses
        prob = args.proxy_prob if args.proxy_synthetic else 0.0
        h, w = base.input.height, base.input.width
        world = WorldConfig(height=h, width=w, anomaly_prob=prob, anomaly_family=family)
        val_world = WorldConfig(
            height=h, width=w, anomaly_prob=1.0 if args.proxy_synthetic else 0.0, anomaly_family=family
        )
        train = _materialise(SyntheticWorld(args.synthetic, seed=args.seed, config=world), 'generate train')
        val = _materialise(SyntheticWorld(args.val_frames, seed=args.seed + 1, config=val_world), 'generate val')
        source = f'{args.synthetic} synthetic frames (seed {args.seed})'
    else:
        source = f'{args.dataset} {args.split} ({len(train)} frames) under {args.root}'
    source += (
        f", proxies: synthetic 'proxy' obstacle family (p {args.proxy_prob})"
        if args.proxy_synthetic
        else f', proxies: objects of {args.proxy_objects} pasted (p {args.proxy_prob})'
    )
    summary = train_entropy_max(cfg, model_dir, train, val, proxy_objects=objects, source=source, resume=args.resume)
    print(json.dumps({'out': str(args.out), 'before': summary['before'], 'after': summary['after']}, indent=2))
    return 0


def _open_labelled(args: argparse.Namespace, cmd: str) -> tuple[Sequence[Sample], Sequence[Sample]]:
    """Training and validation readers of --dataset, refused up front when the frames carry no trainIds."""
    import inspect

    from ..data.readers import DATASET_FORMATS, open_dataset

    if args.root is None:
        raise AnomalySegError(f'{cmd}: --dataset {args.dataset} needs --root (the dataset folder)')
    cls = DATASET_FORMATS.get(args.dataset)
    if cls is None:
        raise AnomalySegError(f'{cmd}: unknown --dataset {args.dataset!r}; valid: {", ".join(DATASET_FORMATS)}')
    has_split = 'split' in inspect.signature(cls.__init__).parameters
    train: Sequence[Sample] = open_dataset(args.dataset, args.root, **({'split': args.split} if has_split else {}))
    if len(train) == 0:
        raise AnomalySegError(f'{cmd}: --dataset {args.dataset} under {args.root} holds no frames')
    if train[0].labels is None:
        raise AnomalySegError(
            f'{cmd}: --dataset {args.dataset} frames under {args.root} carry no segmentation labels (trainIds); '
            'the cross-entropy term needs them: use a labelled layout such as cityscapes'
        )
    if has_split:
        full_val: Sequence[Sample] = open_dataset(args.dataset, args.root, split=args.val_split)
    else:  # no splits: hold out the last --val-frames frames
        n = min(len(train) - 1, max(args.val_frames, 0))
        full_val = [train[i] for i in range(len(train) - n, len(train))]
        train = [train[i] for i in range(len(train) - n)]
    val = [full_val[i] for i in range(min(len(full_val), args.val_frames))] if args.val_frames else full_val
    return train, val


def _materialise(world: SyntheticWorld, desc: str) -> list[Sample]:
    """Pre-render frames once: training revisits each frame many times and rendering costs more than a copy."""
    from tqdm import tqdm

    return [world[i] for i in tqdm(range(len(world)), desc=desc)]
