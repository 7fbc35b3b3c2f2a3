"""Entropy maximisation fine-tuning: the entry point behind `anomaly-seg train entropy-max`.

Chan, Rottmann, Gottschalk, "Entropy Maximization and Meta Classification for Out-of-Distribution Detection in
Semantic Segmentation" (ICCV 2021), sec. 3.1 (``entropy-maximization-meta-classification.txt``). The
segmentation net is fine-tuned with eq. (2)

    L = (1 - lambda) * E_in[ l_in ] + lambda * E_out[ l_out ]

where l_in (eq. 3) is the usual cross entropy on in-distribution pixels and l_out (eq. 4) is the negative
log-likelihood averaged over the q classes, -1/q * sum_j log f_j, on out-of-distribution *proxy* pixels: the
cross entropy to the uniform distribution, minimal (log q) exactly when the softmax is uniform, i.e. when the
entropy is maximal. Each expectation is a mean over the pixels of its kind in the batch (a batch without
proxy pixels contributes its CE term only). Afterwards the `entropy` scorer flags the pixels where the
fine-tuned net is uncertain; the price is some segmentation quality, which the training log shows as mIoU
before and after on the validation frames.

Proxies are objects pasted into labelled training frames, never the anomalies evaluation uses: any folder of
RGBA objects pasted with the Fishyscapes blending of ``data/blend.py`` (the paper pastes COCO objects into
Cityscapes frames), or the synthetic world's ``proxy`` obstacle family (its anomaly mask marks the proxy
pixels; evaluation uses the disjoint ``test`` family). Pasted pixels have segmentation label 255, so the two
terms never see the same pixel.

The data pipeline, augmentation, poly schedule, cascade head weights, validation mIoU and checkpoints are
those of ``train/seg.py``; the proxy marker rides through the augmentation as one more id in the label map.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
import yaml
from tqdm import tqdm

from ..backends.source import file_sha256, load_torch_net
from ..checkpoint import save_state_dict
from ..classes import ANOMALY_ID, IGNORE_ID
from ..config import ModelConfig, load_model_config
from ..data.blend import BlendConfig, blend_sample
from ..data.sample import Sample
from ..defaults import SEG_BATCH, SEG_CROP_SIZE, SEG_EVAL_EVERY, SEG_SEED, SEG_THREADS
from ..errors import ConfigError
from ..pipeline import Result
from ..preprocess import Preprocessor
from .seg import (
    CASCADE_WEIGHTS,
    Augment,
    evaluate_miou,
    fit_to_input,
    load_checkpoint,
    poly_lr,
    resize_logits,
    save_checkpoint,
    start_run,
)

__all__ = [
    'EM_ITERS',
    'EM_LAMBDA',
    'EM_LR',
    'EM_PROXY_PROB',
    'PROXY_ID',
    'EntropyMaxConfig',
    'EntropyMaxLoss',
    'entropy_max_loss',
    'proxy_target',
    'train_entropy_max',
]

log = logging.getLogger(__name__)

COMMAND = 'train entropy-max'
#: the label value marking proxy (out-of-distribution) pixels in the training target: not a trainId, not 255
PROXY_ID = 254
EM_LAMBDA = 0.9  # Chan et al. sec. 4 ("set the (out-distribution) loss weight lambda = 0.9")
# The paper fine-tunes a pretrained DeepLabv3+ with Adam at 1e-5. Here 40x below the rate the default model was
# trained with: a run at 2e-4 from models/default had lost 0.10 validation mIoU after 200 iterations, the proxy
# term being near its floor (log q) by then, so a larger step buys nothing but segmentation damage.
EM_LR = 5e-5
EM_ITERS = 1000
# The paper mixes 1 proxy image per 10 frames, but a COCO object covers far more of a frame than the small
# road obstacles pasted here; at 0.5 almost every batch of 8 holds proxy pixels.
EM_PROXY_PROB = 0.5
MODEL_FILES = ('model.yaml', 'model.pt', 'checkpoint.pt', 'train_log.json')


@dataclass
class EntropyMaxConfig:
    out: Path
    lam: float = EM_LAMBDA
    iters: int = EM_ITERS
    batch: int = SEG_BATCH
    lr: float = EM_LR
    weight_decay: float = 1e-4
    proxy_prob: float = EM_PROXY_PROB
    #: training crop; clipped to the model's input size (the model fixes the input, not this command)
    crop_height: int = SEG_CROP_SIZE[1]
    crop_width: int = SEG_CROP_SIZE[0]
    scale_min: float = 0.75
    scale_max: float = 1.25
    eval_every: int = SEG_EVAL_EVERY
    seed: int = SEG_SEED
    threads: int = SEG_THREADS  # 0: torch default

    def validate(self) -> None:
        if not (isinstance(self.lam, (int, float)) and 0.0 <= self.lam <= 1.0):
            raise ConfigError(f'{COMMAND}: --lambda must be a number in [0, 1] (eq. 2 is a convex mix), got {self.lam}')
        if not 0.0 <= self.proxy_prob <= 1.0:
            raise ConfigError(f'{COMMAND}: --proxy-prob must be a probability in [0, 1], got {self.proxy_prob}')
        for name in ('iters', 'batch', 'eval_every', 'crop_height', 'crop_width'):
            if getattr(self, name) <= 0:
                raise ConfigError(f'{COMMAND}: --{name.replace("_", "-")} must be > 0, got {getattr(self, name)}')
        if self.batch < 2:
            raise ConfigError(f'{COMMAND}: --batch must be >= 2 (BatchNorm trains on the batch), got {self.batch}')
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f'{COMMAND}: --lr must be a finite number > 0, got {self.lr}')
        if not 0 < self.scale_min <= self.scale_max:
            raise ConfigError(f'{COMMAND}: need 0 < scale_min <= scale_max, got {self.scale_min}, {self.scale_max}')


@dataclass(frozen=True)
class _Crop:
    """Augment's settings: the config's crop and scale at the model's input size."""

    input_height: int
    input_width: int
    crop_height: int
    crop_width: int
    scale_min: float
    scale_max: float


class EntropyMaxLoss(NamedTuple):
    total: torch.Tensor  # (1 - lambda) * ce + lambda * proxy
    ce: torch.Tensor  # mean l_in over in-distribution pixels (0 when there are none)
    proxy: torch.Tensor  # mean l_out over proxy pixels (0 when there are none); >= log(num_classes)


def entropy_max_loss(logits: torch.Tensor, target: torch.Tensor, lam: float) -> EntropyMaxLoss:
    """Eq. (2)-(4) of Chan et al. on one batch: logits Bx C xHxW (the C classes), target BxHxW int64 with
    trainIds 0..C-1 (in-distribution), PROXY_ID (proxy pixels) and anything else ignored."""
    num_classes = logits.shape[1]
    logp = F.log_softmax(logits.float(), dim=1)
    inside = (target >= 0) & (target < num_classes)
    proxy = target == PROXY_ID
    zero = logp.sum() * 0.0  # keeps the graph (and the device) when a term has no pixels
    if bool(inside.any()):
        picked = logp.gather(1, torch.where(inside, target, 0).unsqueeze(1)).squeeze(1)
        ce = -picked[inside].mean()
    else:
        ce = zero
    out = -logp.mean(dim=1)[proxy].mean() if bool(proxy.any()) else zero
    return EntropyMaxLoss((1.0 - lam) * ce + lam * out, ce, out)


def proxy_target(labels: np.ndarray, anomaly: np.ndarray | None) -> np.ndarray:
    """The training target: trainIds, PROXY_ID where the anomaly mask is 1 (the pasted proxy objects), and
    255 where it is 255 (their soft border: neither in-distribution nor a clean proxy pixel)."""
    target = labels.astype(np.uint8, copy=True)
    if anomaly is not None:
        if anomaly.shape != labels.shape:
            raise ConfigError(f'{COMMAND}: anomaly mask {anomaly.shape} and labels {labels.shape} differ in shape')
        target[anomaly == 255] = IGNORE_ID
        target[anomaly == ANOMALY_ID] = PROXY_ID
    return target


class _Frames:
    """Training or validation frames with their proxy pixels, at the model's input size.

    With ``objects`` every frame gets pasted objects with probability ``prob`` (a fresh paste each visit);
    without, the frames' own anomaly masks mark the proxies (the synthetic proxy family)."""

    def __init__(
        self,
        prep: Preprocessor,
        objects: Sequence[np.ndarray] | None,
        prob: float,
        rng: np.random.Generator,
    ) -> None:
        self.prep = prep
        self.objects = objects
        self.prob = prob
        self.rng = rng
        self.blend = BlendConfig()

    def __call__(self, s: Sample) -> Sample:
        if s.labels is None:
            raise ConfigError(
                f'{COMMAND}: frame {s.name!r} has no segmentation labels; the cross-entropy term needs trainIds '
                '(use a labelled source: --dataset cityscapes, or --synthetic)'
            )
        if self.objects is None:
            img, lab = fit_to_input(self.prep, s.image, s.labels)
            anomaly = s.anomaly
            if anomaly is not None and anomaly.shape != lab.shape:  # nearest neighbour, as the labels
                anomaly = cv2.resize(anomaly, self.prep.size, interpolation=cv2.INTER_NEAREST)
            return Sample(image=img, labels=proxy_target(lab, anomaly), name=s.name)
        img, lab = fit_to_input(self.prep, s.image, s.labels)
        frame = Sample(image=img, labels=lab, name=s.name)
        if self.objects and self.rng.random() < self.prob:
            frame = blend_sample(frame, self.objects, [], self.blend, self.rng)
        if frame.labels is None:  # blend_sample keeps labels that were given
            raise ConfigError(f'{COMMAND}: frame {s.name!r} lost its labels while blending')
        return Sample(image=frame.image, labels=proxy_target(frame.labels, frame.anomaly), name=s.name)


def _as_val(frame: Sample) -> Sample:
    """A training-target frame as the evaluator reads it: trainIds with 255 on the proxies (mIoU ignores
    them, as it ignores anomalies), the proxies as the anomaly mask (1)."""
    if frame.labels is None:
        raise ConfigError(f'{COMMAND}: validation frame {frame.name!r} has no labels')
    proxy = frame.labels == PROXY_ID
    labels = np.where(proxy, np.uint8(IGNORE_ID), frame.labels).astype(np.uint8)
    return Sample(image=frame.image, labels=labels, anomaly=proxy.astype(np.uint8), name=frame.name)


class _EntropyStats:
    """Mean normalised entropy (the `entropy` scorer's map) on proxy and on in-distribution pixels."""

    def __init__(self) -> None:
        self.sums = {'proxy': 0.0, 'in_dist': 0.0}
        self.counts = {'proxy': 0, 'in_dist': 0}

    def __call__(self, s: Sample, r: Result) -> None:
        if s.labels is None or s.anomaly is None:
            return
        proxy = s.anomaly == ANOMALY_ID
        for key, mask in (('proxy', proxy), ('in_dist', ~proxy & (s.labels != IGNORE_ID))):
            self.sums[key] += float(r.score[mask].sum(dtype=np.float64))
            self.counts[key] += int(mask.sum())

    def means(self) -> dict[str, float]:
        return {k: self.sums[k] / self.counts[k] if self.counts[k] else math.nan for k in self.sums}


def _fine_tune_config(base: ModelConfig, out: Path) -> ModelConfig:
    """The new folder's config: the base's contract, the entropy scorer, no fitted artefacts (they were fitted
    on the base net's outputs and would be stale)."""
    return dataclasses.replace(
        base, name=out.name, directory=out, weights=out / 'model.pt', scorer='entropy', scorers={}
    )


def _validate(net: torch.nn.Module, val: Sequence[Sample], model: ModelConfig) -> dict[str, float]:
    if not val:
        return {'val_miou': math.nan, 'val_entropy_proxy': math.nan, 'val_entropy_in_dist': math.nan}
    stats = _EntropyStats()
    miou = evaluate_miou(net, val, model, observe=stats).compute().miou
    means = stats.means()
    return {'val_miou': miou, 'val_entropy_proxy': means['proxy'], 'val_entropy_in_dist': means['in_dist']}


def train_entropy_max(
    cfg: EntropyMaxConfig,
    base_model: Path,
    train: Sequence[Sample],
    val: Sequence[Sample],
    *,
    proxy_objects: Sequence[np.ndarray] | None = None,
    source: str = '',
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Fine-tune base_model by eq. (2) and write cfg.out/{model.yaml, model.pt, train_log.json}.

    train/val: labelled frames. With proxy_objects (RGBA arrays) objects are pasted into training frames with
    probability cfg.proxy_prob and into every validation frame; without, the frames' anomaly masks (value 1)
    mark the proxy pixels. Validation (mIoU, mean normalised entropy on proxy and in-distribution pixels) runs
    before the first step and every cfg.eval_every iterations, each time with a checkpoint for --resume.
    """
    cfg.validate()
    if len(train) == 0:
        raise ConfigError(f'{COMMAND}: the training set is empty')
    if proxy_objects is not None and len(proxy_objects) == 0:
        raise ConfigError(f'{COMMAND}: --proxy-objects holds no objects')
    base = load_model_config(base_model)
    if base.format != 'torch':
        raise ConfigError(
            f'{COMMAND}: --model {base_model} is format {base.format!r}; fine-tuning needs the weights of one of '
            "this package's nets (format torch): import a state dict with `import-model --torch`"
        )
    if train[0].labels is None:
        raise ConfigError(
            f'{COMMAND}: training frame {train[0].name!r} has no segmentation labels; the cross-entropy term '
            'needs trainIds (use a labelled source: --dataset cityscapes, or --synthetic)'
        )
    if proxy_objects is None and train[0].anomaly is None:
        raise ConfigError(
            f'{COMMAND}: no proxy pixels: the training frames carry no anomaly masks and no --proxy-objects were given'
        )
    rng = start_run(cfg.out, cfg.threads, cfg.seed, COMMAND)
    spec = base.input
    prep = Preprocessor(spec)
    crop = _Crop(
        spec.height, spec.width, min(cfg.crop_height, spec.height), min(cfg.crop_width, spec.width),
        cfg.scale_min, cfg.scale_max,
    )  # fmt: skip
    model_cfg = _fine_tune_config(base, cfg.out)
    net = load_torch_net(base)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    val_frames = _Frames(prep, proxy_objects, 1.0, np.random.default_rng([cfg.seed, 1]))
    val_set = [_as_val(val_frames(s)) for s in val]  # one fixed paste per frame: every evaluation sees the same set
    ckpt_path = cfg.out / 'checkpoint.pt'
    start: int = 0
    history: list[dict[str, Any]] = []
    if resume:
        start, history = load_checkpoint(ckpt_path, net, opt)
        rng = np.random.default_rng([cfg.seed, start])  # a fresh but reproducible stream after resume
        log.info('resumed from %s at iteration %d', ckpt_path, start)
    else:
        history.append({'iteration': 0, **_validate(net, val_set, model_cfg), 'elapsed_s': 0.0})
    frames = _Frames(prep, proxy_objects, cfg.proxy_prob, rng)
    augment = Augment(crop, rng, prep)
    net.train()
    t_start = time.perf_counter()
    sums = {'loss': 0.0, 'ce': 0.0, 'proxy': 0.0}
    steps, proxy_steps = 0, 0
    bar = tqdm(range(start, cfg.iters), initial=start, total=cfg.iters, disable=not progress, desc=COMMAND)
    for it in bar:
        idx = rng.integers(0, len(train), cfg.batch)
        pairs = [augment(frames(train[int(i)])) for i in idx]
        x = prep.normalise([p[0] for p in pairs])
        y = torch.from_numpy(np.stack([p[1] for p in pairs]).astype(np.int64))
        for g in opt.param_groups:
            g['lr'] = poly_lr(it, cfg.iters, cfg.lr)
        outs = net(x)
        heads = outs if isinstance(outs, (tuple, list)) else (outs,)
        parts = [entropy_max_loss(resize_logits(o[:, : base.num_classes], y.shape[1:]), y, cfg.lam) for o in heads]
        weights = CASCADE_WEIGHTS[: len(parts)]
        loss = torch.stack([w * p.total for w, p in zip(weights, parts, strict=True)]).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        main = parts[0]  # the deployed head: the numbers in the log are its terms
        sums['loss'] += loss.item()
        sums['ce'] += main.ce.item()
        has_proxy = bool((y == PROXY_ID).any())
        if has_proxy:
            sums['proxy'] += main.proxy.item()
            proxy_steps += 1
        steps += 1
        bar.set_postfix(ce=f'{main.ce.item():.3f}', proxy=f'{main.proxy.item():.3f}' if has_proxy else '-')
        done = it + 1
        if done % cfg.eval_every == 0 or done == cfg.iters:
            record = {
                'iteration': done,
                'loss': sums['loss'] / steps,
                'train_ce': sums['ce'] / steps,
                'train_proxy_nll': sums['proxy'] / proxy_steps if proxy_steps else math.nan,
                'batches_with_proxy': proxy_steps / steps,
                **_validate(net, val_set, model_cfg),
                'elapsed_s': time.perf_counter() - t_start,
            }
            net.train()
            history.append(record)
            bar.write(
                f'iteration {done}: CE {record["train_ce"]:.4f}, proxy NLL {record["train_proxy_nll"]:.4f}, '
                f'val mIoU {record["val_miou"]:.4f}, val entropy proxy {record["val_entropy_proxy"]:.3f} / '
                f'in-dist {record["val_entropy_in_dist"]:.3f}',
                file=sys.stderr,
            )
            save_checkpoint(ckpt_path, net, opt, done, history)
            sums = dict.fromkeys(sums, 0.0)
            steps, proxy_steps = 0, 0
    net.eval()
    description = (
        f'{base.description.strip() or base.name}; fine-tuned from {base.name} by entropy maximisation '
        f'(Chan et al. 2021, sec. 3.1; lambda {cfg.lam}, {cfg.iters} iterations) on {source or "given frames"} '
        f'by `anomaly-seg {COMMAND}`'
    )
    _write_folder(cfg.out, base, net, description)
    before = history[0] if history and history[0]['iteration'] == 0 else {}
    summary = {
        'config': {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
        'base_model': {'path': str(base.directory), 'name': base.name, 'weights_sha256': file_sha256(base.weights)},
        'source': source,
        'proxies': 'pasted RGBA objects' if proxy_objects is not None else 'anomaly masks of the training frames',
        'loss': 'eq. (2): (1 - lambda) * CE(in-dist pixels) + lambda * mean_j -log p_j (proxy pixels)',
        'train_frames': len(train),
        'val_frames': len(val),
        'before': before,
        'after': history[-1] if history else {},
        'history': history,
        'train_seconds_this_run': time.perf_counter() - t_start,
        'torch': torch.__version__,
        'threads': torch.get_num_threads(),
    }
    with open(cfg.out / 'train_log.json', 'w', encoding='utf-8') as f:
        json.dump(summary, f, indent=2)
    return summary


def _write_folder(out: Path, base: ModelConfig, net: torch.nn.Module, description: str) -> None:
    """model.yaml copied from the base (its input contract, classes, taps kept), with the new name,
    description, weights and scorer; fitted scorer entries dropped (stale for the new weights)."""
    save_state_dict(net, out / 'model.pt')
    with open(base.directory / 'model.yaml', encoding='utf-8') as f:
        raw = yaml.safe_load(f)
    raw = dict(raw) if isinstance(raw, dict) else {}
    raw.pop('scorers', None)
    raw.update({'name': out.name, 'description': description, 'weights': 'model.pt', 'scorer': 'entropy'})
    with open(out / 'model.yaml', 'w', encoding='utf-8') as f:
        yaml.safe_dump(raw, f, sort_keys=False)
    load_model_config(out)  # the folder must load as written
