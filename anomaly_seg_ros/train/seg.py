"""Segmentation training: the entry point behind `anomaly-seg train seg`.

Recipe (the usual one for Cityscapes-style nets, shortened for CPU): random scale, random crop, horizontal
flip, AdamW with poly learning-rate decay, ICNet cascade label guidance (loss weights 1, 0.4, 0.16 as in
ICNet), periodic mIoU on a validation split, checkpoints every eval and resume from the last one.
The output is a model folder (model.yaml + weights) that `Pipeline.from_model` loads directly.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..checkpoint import write_model_folder
from ..classes import CITYSCAPES_CLASSES, IGNORE_ID, NUM_CLASSES
from ..config import InputSpec, ModelConfig
from ..data.sample import Sample
from ..defaults import (
    DEFAULT_SCORER,
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
from ..errors import CheckpointError, ConfigError
from ..metrics import SegmentationIoU
from ..nets import build_net
from ..pipeline import Pipeline, Result
from ..preprocess import Preprocessor

__all__ = [
    'CASCADE_WEIGHTS',
    'Augment',
    'CropSettings',
    'SegTrainConfig',
    'evaluate_miou',
    'fit_to_input',
    'load_checkpoint',
    'poly_lr',
    'resize_logits',
    'save_checkpoint',
    'start_run',
    'train_segmentation',
]

#: ICNet cascade label guidance: loss weights of the full, 1/2 and 1/4 resolution heads (ICNet paper)
CASCADE_WEIGHTS = (1.0, 0.4, 0.16)

log = logging.getLogger(__name__)


@dataclass
class SegTrainConfig:
    out: Path
    architecture: str = 'icnet_small'
    width: int = SEG_WIDTH
    input_height: int = SEG_INPUT_SIZE[1]
    input_width: int = SEG_INPUT_SIZE[0]
    crop_height: int = SEG_CROP_SIZE[1]
    crop_width: int = SEG_CROP_SIZE[0]
    scale_min: float = 0.75
    scale_max: float = 1.25
    batch: int = SEG_BATCH
    iters: int = SEG_ITERS
    lr: float = SEG_LR
    weight_decay: float = 1e-4
    eval_every: int = SEG_EVAL_EVERY
    seed: int = SEG_SEED
    threads: int = SEG_THREADS  # 0: torch default
    scorer: str = DEFAULT_SCORER

    def validate(self) -> None:
        for name in ('input_height', 'input_width', 'crop_height', 'crop_width', 'batch', 'iters', 'eval_every'):
            if getattr(self, name) <= 0:
                raise ConfigError(f'train seg: --{name.replace("_", "-")} must be > 0, got {getattr(self, name)}')
        if self.crop_height > self.input_height or self.crop_width > self.input_width:
            raise ConfigError('train seg: crop must fit inside the input size')
        if not 0 < self.scale_min <= self.scale_max:
            raise ConfigError(f'train seg: need 0 < scale_min <= scale_max, got {self.scale_min}, {self.scale_max}')
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f'train seg: --lr must be a finite number > 0, got {self.lr}')
        context = _icnet_context_side(self.crop_height) * _icnet_context_side(self.crop_width)
        if self.architecture == 'icnet_small' and self.batch * context <= 1:
            raise ConfigError(
                f'train seg: --batch {self.batch} with --crop {self.crop_width}x{self.crop_height} gives '
                'icnet_small a 1x1 context map per batch, and BatchNorm needs more than one value per channel to '
                'train: use --batch 2 or more, or a --crop of at least 50 pixels on one side'
            )


def _icnet_context_side(n: int) -> int:
    """Side of icnet_small's smallest (1/32) feature map for an input side n: a 0.5 resize (floor), three
    stride-2 3x3 convs (ceil), a 0.5 resize (floor). 49 -> 1, 50 -> 2; test_cli_bad_input checks it against the net."""
    side = n // 2
    for _ in range(3):
        side = (side + 1) // 2
    return side // 2


class CropSettings(Protocol):
    """What the augmentation reads from a training config (SegTrainConfig, EntropyMaxConfig)."""

    @property
    def input_height(self) -> int: ...
    @property
    def input_width(self) -> int: ...
    @property
    def crop_height(self) -> int: ...
    @property
    def crop_width(self) -> int: ...
    @property
    def scale_min(self) -> float: ...
    @property
    def scale_max(self) -> float: ...


class Augment:
    """Random scale, crop, flip on (image, labels); labels use nearest neighbour so ids stay ids.

    Any uint8 id map works as labels (the entropy-max trainer passes trainIds with its proxy marker)."""

    def __init__(self, cfg: CropSettings, rng: np.random.Generator, prep: Preprocessor) -> None:
        self.cfg = cfg
        self.rng = rng
        self.prep = prep

    def __call__(self, s: Sample) -> tuple[np.ndarray, np.ndarray]:
        cfg, rng = self.cfg, self.rng
        img, lab = fit_to_input(self.prep, s.image, s.labels)
        k = rng.uniform(cfg.scale_min, cfg.scale_max)
        h = max(cfg.crop_height, round(cfg.input_height * k))
        w = max(cfg.crop_width, round(cfg.input_width * k))
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        lab = cv2.resize(lab, (w, h), interpolation=cv2.INTER_NEAREST)
        y = int(rng.integers(0, h - cfg.crop_height + 1))
        x = int(rng.integers(0, w - cfg.crop_width + 1))
        img = img[y : y + cfg.crop_height, x : x + cfg.crop_width]
        lab = lab[y : y + cfg.crop_height, x : x + cfg.crop_width]
        if rng.random() < 0.5:
            img, lab = img[:, ::-1], lab[:, ::-1]
        return img, lab


def fit_to_input(prep: Preprocessor, img: np.ndarray, lab: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """A training frame at the model's input size: the Pipeline's image resize, nearest neighbour for ids."""
    if lab is None:
        raise ConfigError('train seg: a training sample has no labels')
    if img.shape[:2] != (prep.spec.height, prep.spec.width):
        img = prep.resize(img)
        lab = cv2.resize(lab, prep.size, interpolation=cv2.INTER_NEAREST)
    return img, lab


def poly_lr(it: int, total: int, base: float) -> float:
    """The poly learning-rate schedule (power 0.9) every training entry point uses."""
    return base * (1.0 - it / total) ** 0.9


def save_checkpoint(
    path: Path, net: torch.nn.Module, opt: torch.optim.Optimizer, iteration: int, history: list[dict[str, Any]]
) -> None:
    """Weights, optimiser state, iteration and the log so far: everything --resume needs (tensors and a
    JSON string only, so torch.load(weights_only=True) reads it back)."""
    torch.save(
        {
            'state_dict': net.state_dict(),
            'optimizer': opt.state_dict(),
            'iteration': iteration,
            'history': json.dumps(history),
        },
        path,
    )


def start_run(out: Path, threads: int, seed: int, command: str) -> np.random.Generator:
    """Before a training run: the output folder exists (now, not at the first checkpoint: a bad --out must not
    cost the first iterations), torch's threads and seed are set; returns the run's numpy generator."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f'{command}: cannot create the model folder {out}: {e.strerror or e}') from None
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def load_checkpoint(path: Path, net: torch.nn.Module, opt: torch.optim.Optimizer) -> tuple[int, list[dict[str, Any]]]:
    """Restore a save_checkpoint file into net and opt; returns (iteration, history)."""
    if not path.is_file():
        raise CheckpointError(f'{path}: --resume given but no checkpoint there')
    state = torch.load(path, map_location='cpu', weights_only=True)
    net.load_state_dict(state['state_dict'], strict=True)
    opt.load_state_dict(state['optimizer'])
    return int(state['iteration']), json.loads(state['history'])


def evaluate_miou(
    net: torch.nn.Module,
    val: Sequence[Sample],
    model: ModelConfig,
    observe: Callable[[Sample, Result], None] | None = None,
) -> SegmentationIoU:
    """mIoU exactly as `anomaly-seg evaluate` computes it: every frame through the Pipeline (its resize and
    normalisation, labels resized back to the frame), one dataset-wide confusion matrix at the frame's resolution.

    ``observe`` sees each frame's Pipeline result (model.scorer's map included), so a trainer that also tracks
    a score statistic on the validation frames (entropy maximisation) needs no second pass over them."""
    metric = SegmentationIoU(NUM_CLASSES)
    pipe = Pipeline.from_net(model, net)
    try:
        for s in val:
            if s.labels is None:
                raise ConfigError('train seg: a validation sample has no labels')
            result = pipe(s.image)
            metric.update(result.labels, s.labels)
            if observe is not None:
                observe(s, result)
    finally:
        net.train()
    return metric


def training_model_config(cfg: SegTrainConfig, spec: InputSpec) -> ModelConfig:
    """The model.yaml contents of the folder being trained, so validation runs the deployed input contract."""
    return ModelConfig(
        name=cfg.out.name,
        directory=cfg.out,
        architecture=cfg.architecture,
        format='torch',
        weights=cfg.out / 'model.pt',
        classes=CITYSCAPES_CLASSES,
        input=spec,
        scorer=cfg.scorer,
        arch_args={'width': cfg.width},
    )


def train_segmentation(
    cfg: SegTrainConfig,
    train: Sequence[Sample],
    val: Sequence[Sample],
    *,
    resume: bool = False,
    description: str = '',
    progress: bool = True,
) -> dict[str, Any]:
    """Train, evaluate every cfg.eval_every iterations, write cfg.out/{model.yaml, model.pt, train_log.json}."""
    cfg.validate()
    if len(train) == 0:
        raise ConfigError('train seg: the training split is empty')
    rng = start_run(cfg.out, cfg.threads, cfg.seed, 'train seg')
    spec = InputSpec(cfg.input_height, cfg.input_width)
    prep = Preprocessor(spec)
    model_cfg = training_model_config(cfg, spec)
    net = build_net(cfg.architecture, NUM_CLASSES, width=cfg.width)
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ckpt_path = cfg.out / 'checkpoint.pt'
    start, history = 0, cast(list[dict[str, Any]], [])
    if resume:
        start, history = load_checkpoint(ckpt_path, net, opt)
        rng = np.random.default_rng([cfg.seed, start])  # a fresh but reproducible stream after resume
        log.info('resumed from %s at iteration %d', ckpt_path, start)
    augment = Augment(cfg, rng, prep)
    weights = CASCADE_WEIGHTS
    t_start = time.perf_counter()
    bar = tqdm(range(start, cfg.iters), initial=start, total=cfg.iters, disable=not progress, desc='train seg')
    loss_avg = math.nan
    for it in bar:
        idx = rng.integers(0, len(train), cfg.batch)
        pairs = [augment(train[int(i)]) for i in idx]
        x = prep.normalise([p[0] for p in pairs])
        y = torch.from_numpy(np.stack([p[1] for p in pairs]).astype(np.int64))
        for g in opt.param_groups:
            g['lr'] = poly_lr(it, cfg.iters, cfg.lr)
        outs = net(x)
        # never the int start value 0: there are always three weighted heads
        loss = cast(
            torch.Tensor,
            sum(
                w * F.cross_entropy(resize_logits(o, y.shape[1:]), y, ignore_index=IGNORE_ID)
                for w, o in zip(weights, outs, strict=True)
            ),
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_avg = loss.item() if math.isnan(loss_avg) else 0.95 * loss_avg + 0.05 * loss.item()
        bar.set_postfix(loss=f'{loss_avg:.3f}', lr=f'{opt.param_groups[0]["lr"]:.2e}')
        done = it + 1
        if done % cfg.eval_every == 0 or done == cfg.iters:
            miou = evaluate_miou(net, val, model_cfg).compute().miou if len(val) else math.nan
            history.append(
                {'iteration': done, 'loss': loss_avg, 'val_miou': miou, 'elapsed_s': time.perf_counter() - t_start}
            )
            bar.write(f'iteration {done}: loss {loss_avg:.4f}, val mIoU {miou:.4f}', file=sys.stderr)
            save_checkpoint(ckpt_path, net, opt, done, history)
    net.eval()
    write_model_folder(cfg.out, net, cfg.architecture, {'width': cfg.width}, spec, cfg.scorer, description)
    summary = {
        'config': {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
        'train_frames': len(train),
        'val_frames': len(val),
        'history': history,
        'train_seconds_this_run': time.perf_counter() - t_start,
        'torch': torch.__version__,
        'threads': torch.get_num_threads(),
        'classes': list(CITYSCAPES_CLASSES),
    }
    with open(cfg.out / 'train_log.json', 'w', encoding='utf-8') as f:
        json.dump(summary, f, indent=2)
    return summary


def resize_logits(o: torch.Tensor, size: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """A head's logits bilinearly at the label size (ICNet's lower-resolution heads are upsampled to the labels)."""
    if o.shape[2:] == size:
        return o
    return F.interpolate(o, size=tuple(size), mode='bilinear', align_corners=False)
