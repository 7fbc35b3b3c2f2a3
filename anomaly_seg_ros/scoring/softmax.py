"""Scorers computed from the segmentation logits alone.

- max_softmax:      1 - max_c p(c)                    (Hendrycks & Gimpel, MSP baseline)
- entropy:          -sum_c p(c) log p(c) / log C      (normalised entropy, Chan et al. sec. 3.2; in [0, 1])
- softmax_distance: 1 - max_c p(c) + max_{c' != argmax} p(c')   (SynBoost eq. 2; already in [0, 1])
- max_logit:        -max_c l(c)                       (Hendrycks et al., "Scaling OoD detection"; unbounded)
- void:             p(void) from a softmax over classes + void, for nets trained with a void output

The softmax is over the C classes only; a void channel, when present, is left out of it (and of the
argmax), except by the `void` scorer.

How it is computed, and why (figures: ONNX Runtime 1.31 on the 2-core CPU, 19 x 256 x 512 logits, per-node
minimum kernel times from its profiler; eager torch 2.13 on the same cores):
- the softmax is written out (max, subtract, exp, sum) rather than F.softmax: the two are equal to float
  rounding, and ONNX Runtime runs a channel-axis Softmax/LogSoftmax of an NCHW tensor about 10x slower than
  these elementwise ops and reductions (36 ms against 3 ms);
- the reductions run over the last axis of a pixels x classes view of the logits (`pixel_rows`): ONNX Runtime
  reduces a contiguous last axis 5-8x faster than the channel axis of NCHW (ReduceMax 0.4 against 3.4 ms,
  ReduceSum 0.34 against 2.2 ms, ArgMax 1.1 against 3.3 ms), and the transpose costs nothing there: it folds
  into the layout reorder that ends the net. In torch the view is free (no copy) and the reductions take the
  same time either way.
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from .base import LOGITS, Scorer

__all__ = [
    'MaxLogit',
    'MaxSoftmax',
    'NormalizedEntropy',
    'SoftmaxDistance',
    'VoidProbability',
    'pixel_rows',
    'softmax_parts',
]


def pixel_rows(logits: torch.Tensor) -> torch.Tensor:
    """B x C x h x w -> B x (h*w) x C, one row of class scores per pixel.

    A view in torch. In ONNX it is a Transpose and a Reshape; the Reshape keeps ONNX Runtime's transpose
    optimiser from pushing the Transpose back below the reductions (which would undo the gain)."""
    b, c, h, w = logits.shape
    return logits.permute(0, 2, 3, 1).reshape(b, h * w, c)


def softmax_parts(logits: torch.Tensor, dim: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z, e, s) over `dim`: z = l - max l, e = exp z, s = sum e; so p = e / s and log p = z - log s."""
    z = logits - logits.amax(dim=dim, keepdim=True)
    e = z.exp()
    return z, e, e.sum(dim=dim)


def _class_rows(scorer: Scorer, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The class logits (a void channel left out) as B x (h*w) x C rows; slicing only when there is a void
    channel (a full-range slice is a copy in ONNX Runtime)."""
    logits = outputs[LOGITS]
    if scorer.void_channel:
        logits = logits[:, : scorer.num_classes]
    return pixel_rows(logits.float())


def _maps(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """B x (h*w) per-pixel values back to B x h x w maps (`like`: the logits)."""
    return values.reshape(like.shape[0], like.shape[2], like.shape[3])


class MaxSoftmax(Scorer):
    name = 'max_softmax'

    def __init__(self, num_classes: int, void_channel: bool = False) -> None:
        super().__init__(num_classes, void_channel)
        # The top probability is at least 1/C, so the score never exceeds 1 - 1/C; the bound is declared as the
        # float32 value the clamp produces, so a uniform pixel scores exactly the top of the range, never above.
        self.score_range = (0.0, float(torch.tensor(1.0 - 1.0 / num_classes, dtype=torch.float32)))

    def forward(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        _, _, s = softmax_parts(_class_rows(self, outputs), dim=-1)
        # the top class has z = 0, so e = 1 and its probability is 1 / s
        score = (1.0 - s.reciprocal()).clamp(*self.score_range)  # only float rounding can leave the range
        return _maps(score, outputs[LOGITS])


class NormalizedEntropy(Scorer):
    name = 'entropy'
    score_range = (0.0, 1.0)

    def __init__(self, num_classes: int, void_channel: bool = False) -> None:
        super().__init__(num_classes, void_channel)
        self.norm = 1.0 / math.log(num_classes)

    def forward(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        # H = -sum p log p = log s - sum(e z) / s; finite where p underflows (e = 0 gives e z = 0, never NaN)
        z, e, s = softmax_parts(_class_rows(self, outputs), dim=-1)
        h = (s.log() - (e * z).sum(dim=-1) / s) * self.norm
        return _maps(h.clamp(0.0, 1.0), outputs[LOGITS])  # only float rounding can leave [0, 1]


class SoftmaxDistance(Scorer):
    name = 'softmax_distance'
    score_range = (0.0, 1.0)

    def forward(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        x = _class_rows(self, outputs)
        # The top class has e = 1; the runner-up is the largest logit once the top one (its first index, so a tie
        # for the top still gives the tied value) is masked out, and its e is exp(l2 - l1). This is topk(2)'s
        # answer; ONNX Runtime's TopK over the class rows is slow (2.8 ms), and the ArgMax here is the one the
        # labels compute already (merged in the exported graph: same input, same attributes).
        top, first = x.max(dim=-1)
        runner_up = x.scatter(-1, first[..., None], -math.inf).amax(dim=-1)
        s = (x - top[..., None]).exp().sum(dim=-1)
        score = (1.0 - (1.0 - (runner_up - top).exp()) / s).clamp(0.0, 1.0)  # only float rounding leaves [0, 1]
        return _maps(score, outputs[LOGITS])


class MaxLogit(Scorer):
    name = 'max_logit'
    score_range = (-math.inf, math.inf)

    def forward(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return _maps(-_class_rows(self, outputs).amax(dim=-1), outputs[LOGITS])


class VoidProbability(Scorer):
    name = 'void'
    score_range = (0.0, 1.0)

    def __init__(self, num_classes: int, void_channel: bool = False) -> None:
        if not void_channel:
            raise ConfigError("scorer 'void' needs a model with a void output channel (model.yaml void_channel: true)")
        super().__init__(num_classes, void_channel)

    def forward(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        # the logits are exactly the classes + void here (the graph checks the net's channel count)
        _, e, s = softmax_parts(pixel_rows(outputs[LOGITS].float()), dim=-1)
        return _maps((e[..., self.num_classes] / s).clamp(0.0, 1.0), outputs[LOGITS])
