"""Standardized max-logit (SML; Jung et al., ICCV 2021), with boundary suppression and dilated smoothing.

Score, per pixel of the net's logit map (Jung et al. sec. 3.2, "Standardized Max Logits"):

    c = argmax_k l_k,   SML = (max_k l_k - mean_c) / std_c,   anomaly score = -SML

where mean_c and std_c are the mean and standard deviation of the max logit over in-distribution training
pixels predicted as c (fitted by `anomaly-seg fit sml`, anomaly_seg_ros/fit/sml.py, stored in the artefact
`stats`: {'mean': K float32, 'std': K float32, 'count': K int64}). The max logit alone is not comparable across
classes (road pixels have far larger logits than pole pixels); standardising per predicted class puts every
class on the same scale, so one threshold works for the whole frame.

Then, on the SML map (sec. 3.3):

- iterative boundary suppression: class boundaries are where SML is least reliable (the max logit drops
  between two confident classes). `boundary_iterations` times, with the band width shrinking linearly from
  `boundary_width` to 1 pixel, the boundary band is the set of pixels whose (2r+1)x(2r+1) neighbourhood holds
  more than one predicted class (dilated minus eroded class map: a max-pool and a min-pool of the class ids);
  each band pixel with at least one non-band pixel among its 3x3 neighbours takes the mean of those
  non-band neighbours (boundary-aware average pooling), every other pixel keeps its value. Ending at width 1
  is this implementation's choice: the band pixels right next to the class edge are then reached by the
  last iteration (a schedule shrinking by r0/n, 8-6-4-2, would leave them untouched).
- dilated smoothing: a `smoothing_kernel` x `smoothing_kernel` box average with dilation
  `smoothing_dilation`, normalised by the number of taps inside the map (a frame edge does not pull the
  scores towards 0).

Parameters are in pixels of the logit map, where this runs (the graph upsamples the score afterwards). The
class defaults are the paper's figures (4 iterations, width 8, kernel 7, dilation 6), which assume a logit map
at Cityscapes' full 2048x1024; `fit sml` records values scaled to the fitted net's logit width (fit/sml.py).
`boundary_iterations: 0` turns suppression off, `smoothing_kernel: 1` smoothing.

Everything is fixed-shape torch ops ONNX opset 17 and TensorRT take: ArgMax/ReduceMax over the pixel rows (the
labels' own ArgMax, merged in the export), Gather of the class statistics, MaxPool, AveragePool, Conv with
dilation, Where; the loop is unrolled when the graph is traced. The score is unbounded: (-inf, inf).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from ..config import ModelConfig
from ..errors import CheckpointError, ConfigError
from .base import LOGITS, Scorer, ScorerConfig
from .softmax import pixel_rows

__all__ = ['STATS_KEYS', 'StandardizedMaxLogit', 'boundary_suppression', 'boundary_widths', 'dilated_smoothing']

#: what the `stats` artefact holds
STATS_KEYS = ('mean', 'std', 'count')


def boundary_widths(first: int, iterations: int) -> list[int]:
    """The band width of each iteration: linear from `first` down to 1 (one iteration: just `first`)."""
    if iterations <= 0:
        return []
    if iterations == 1:
        return [first]
    step = (first - 1) / (iterations - 1)
    return [max(1, round(first - i * step)) for i in range(iterations)]


def boundary_band(classes: torch.Tensor, width: int) -> torch.Tensor:
    """Bx1xhxw bool: pixels whose (2w+1)^2 neighbourhood holds more than one class (dilated != eroded)."""
    k = 2 * width + 1
    dilated = F.max_pool2d(classes, k, stride=1, padding=width)
    eroded = -F.max_pool2d(-classes, k, stride=1, padding=width)
    return dilated != eroded


def boundary_suppression(score: torch.Tensor, classes: torch.Tensor, widths: list[int]) -> torch.Tensor:
    """Bx1xhxw score, Bx1xhxw class ids (float) -> score with each band pixel replaced, iteration by iteration,
    by the mean of its non-band 3x3 neighbours (unchanged where it has none); non-band pixels are untouched."""
    for width in widths:
        band = boundary_band(classes, width)
        keep = (~band).to(score.dtype)
        # zero padding adds nothing to either sum, and the 1/9 of both averages cancels in the ratio
        total = F.avg_pool2d(score * keep, 3, stride=1, padding=1)
        count = F.avg_pool2d(keep, 3, stride=1, padding=1)
        score = torch.where(band & (count > 0), total / count.clamp(min=1e-12), score)
    return score


def dilated_smoothing(score: torch.Tensor, weight: torch.Tensor, dilation: int) -> torch.Tensor:
    """Bx1xhxw -> Bx1xhxw: box average over the dilated kernel `weight` (1x1xkxk of ones), over the taps that
    fall inside the map only."""
    k = weight.shape[-1]
    if k == 1:
        return score
    pad = dilation * (k - 1) // 2
    total = F.conv2d(score, weight, padding=pad, dilation=dilation)
    taps = F.conv2d(torch.ones_like(score), weight, padding=pad, dilation=dilation)
    return total / taps


def _positive_int(cfg: ScorerConfig, key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(
            f'scorer {cfg.name!r} (model.yaml scorers.{cfg.name}.params.{key}): expected a whole number >= {minimum}, '
            f'got {value!r}'
        )
    return value


class StandardizedMaxLogit(Scorer):
    name = 'sml'
    params = {'boundary_iterations': 4, 'boundary_width': 8, 'smoothing_kernel': 7, 'smoothing_dilation': 6}
    artefact_names = ('stats',)
    score_range = (-math.inf, math.inf)

    mean: torch.Tensor
    inv_std: torch.Tensor
    smooth_weight: torch.Tensor

    def __init__(
        self,
        num_classes: int,
        void_channel: bool,
        mean: torch.Tensor,
        std: torch.Tensor,
        boundary_iterations: int = 4,
        boundary_width: int = 8,
        smoothing_kernel: int = 7,
        smoothing_dilation: int = 6,
    ) -> None:
        super().__init__(num_classes, void_channel)
        self.register_buffer('mean', mean.float().reshape(-1).clone(), persistent=False)
        # a multiplication per pixel instead of a division
        self.register_buffer('inv_std', std.double().reciprocal().float().reshape(-1), persistent=False)
        self.widths = boundary_widths(boundary_width, boundary_iterations)
        self.smoothing_dilation = smoothing_dilation
        self.register_buffer('smooth_weight', torch.ones(1, 1, smoothing_kernel, smoothing_kernel), persistent=False)

    @classmethod
    def from_config(cls, model: ModelConfig, cfg: ScorerConfig) -> Scorer:
        cls.check_config(cfg)
        values = {key: cfg.params.get(key, default) for key, default in cls.params.items()}
        iterations = _positive_int(cfg, 'boundary_iterations', values['boundary_iterations'], 0)
        width = _positive_int(cfg, 'boundary_width', values['boundary_width'], 1)
        kernel = _positive_int(cfg, 'smoothing_kernel', values['smoothing_kernel'], 1)
        dilation = _positive_int(cfg, 'smoothing_dilation', values['smoothing_dilation'], 1)
        if kernel % 2 == 0:
            raise ConfigError(
                f'scorer {cfg.name!r} (model.yaml scorers.{cfg.name}.params.smoothing_kernel): must be odd (the '
                f'map keeps its size and every pixel its centre), got {kernel}'
            )
        mean, std = load_stats(cfg.artefacts['stats'], model.num_classes)
        return cls(model.num_classes, model.void_channel, mean, std, iterations, width, kernel, dilation)

    def forward(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = outputs[LOGITS]
        if self.void_channel:
            logits = logits[:, : self.num_classes]
        b, _, h, w = logits.shape
        with torch.autocast(logits.device.type, enabled=False):  # statistics and pooling in fp32 under autocast
            top, classes = pixel_rows(logits.float()).max(dim=-1)  # B x (h*w): max logit and its class
            sml = (top - self.mean[classes]) * self.inv_std[classes]
            score = -sml.reshape(b, 1, h, w)
            if self.widths:
                score = boundary_suppression(score, classes.reshape(b, 1, h, w).float(), self.widths)
            score = dilated_smoothing(score, self.smooth_weight, self.smoothing_dilation)
        return score.reshape(b, h, w)


def load_stats(path: Any, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) from a `fit sml` artefact, checked: K finite values each, std > 0."""
    data = Scorer.load_artefact(path)
    if not isinstance(data, dict) or any(k not in data for k in STATS_KEYS):
        keys = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f'{path}: SML statistics must be a dict with {", ".join(STATS_KEYS)}; got {keys}')
    out = []
    for key in ('mean', 'std'):
        t = data[key]
        if not isinstance(t, torch.Tensor) or t.shape != (num_classes,):
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise CheckpointError(
                f'{path}: {key!r} must be a tensor of {num_classes} values (one per class), got {shape}'
            )
        if not torch.isfinite(t).all():
            raise CheckpointError(f'{path}: {key!r} holds NaN or inf values')
        out.append(t.float())
    if not (out[1] > 0).all():
        bad = [i for i, v in enumerate(out[1].tolist()) if not v > 0]
        raise CheckpointError(f'{path}: std must be > 0 for every class; classes {bad} are not (refit with fit sml)')
    return out[0], out[1]
