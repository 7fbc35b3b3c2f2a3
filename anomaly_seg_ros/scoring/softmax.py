"""Scorers computed from the segmentation logits alone.

- max_softmax:      1 - max_c p(c)                    (Hendrycks & Gimpel, MSP baseline)
- entropy:          -sum_c p(c) log p(c) / log C      (normalised entropy, Chan et al. sec. 3.2; in [0, 1])
- softmax_distance: 1 - max_c p(c) + max_{c' != argmax} p(c')   (SynBoost eq. 2; already in [0, 1])
- max_logit:        -max_c l(c)                       (Hendrycks et al., "Scaling OoD detection"; unbounded)
- void:             p(void) from a softmax over classes + void, for nets trained with a void output

The softmax is over the C classes only; a void channel, when present, is left out of it (and of the
argmax), except by the `void` scorer.

The softmax over the channel axis is written out (max, subtract, exp, sum) rather than F.softmax: the two are
equal to float rounding, and ONNX Runtime runs a channel-axis Softmax/LogSoftmax of an NCHW tensor about 10x
slower than these elementwise ops and reductions (measured: 36 ms against 3 ms at 19x256x512 on 2 cores).
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from .base import Scorer

__all__ = ['MaxLogit', 'MaxSoftmax', 'NormalizedEntropy', 'SoftmaxDistance', 'VoidProbability', 'softmax_parts']


def softmax_parts(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z, e, s) over dim 1: z = l - max l, e = exp z, s = sum e; so p = e / s and log p = z - log s."""
    z = logits - logits.amax(dim=1, keepdim=True)
    e = z.exp()
    return z, e, e.sum(dim=1)


class MaxSoftmax(Scorer):
    name = 'max_softmax'

    def __init__(self, num_classes: int, void_channel: bool = False) -> None:
        super().__init__(num_classes, void_channel)
        # The top probability is at least 1/C, so the score never exceeds 1 - 1/C; the bound is declared as the
        # float32 value the clamp produces, so a uniform pixel scores exactly the top of the range, never above.
        self.score_range = (0.0, float(torch.tensor(1.0 - 1.0 / num_classes, dtype=torch.float32)))

    def forward(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        _, _, s = softmax_parts(self.class_logits(outputs))
        # the top class has z = 0, so e = 1 and its probability is 1 / s
        return (1.0 - s.reciprocal()).clamp(*self.score_range)  # only float rounding can leave the range


class NormalizedEntropy(Scorer):
    name = 'entropy'
    score_range = (0.0, 1.0)

    def __init__(self, num_classes: int, void_channel: bool = False) -> None:
        super().__init__(num_classes, void_channel)
        self.norm = 1.0 / math.log(num_classes)

    def forward(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        # H = -sum p log p = log s - sum(e z) / s; finite where p underflows (e = 0 gives e z = 0, never NaN)
        z, e, s = softmax_parts(self.class_logits(outputs))
        h = (s.log() - (e * z).sum(dim=1) / s) * self.norm
        return h.clamp(0.0, 1.0)  # only float rounding can leave [0, 1]


class SoftmaxDistance(Scorer):
    name = 'softmax_distance'
    score_range = (0.0, 1.0)

    def forward(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        _, e, s = softmax_parts(self.class_logits(outputs))
        top2 = e.topk(2, dim=1).values
        return (1.0 - (top2[:, 0] - top2[:, 1]) / s).clamp(0.0, 1.0)  # only float rounding can leave [0, 1]


class MaxLogit(Scorer):
    name = 'max_logit'
    score_range = (-math.inf, math.inf)

    def forward(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return -self.class_logits(outputs).amax(dim=1)


class VoidProbability(Scorer):
    name = 'void'
    score_range = (0.0, 1.0)

    def __init__(self, num_classes: int, void_channel: bool = False) -> None:
        if not void_channel:
            raise ConfigError("scorer 'void' needs a model with a void output channel (model.yaml void_channel: true)")
        super().__init__(num_classes, void_channel)

    def forward(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        _, e, s = softmax_parts(outputs['logits'][:, : self.num_classes + 1].float())
        return (e[:, self.num_classes] / s).clamp(0.0, 1.0)
