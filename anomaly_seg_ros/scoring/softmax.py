"""Scorers computed from the segmentation logits alone.

- max_softmax:      1 - max_c p(c)                    (Hendrycks & Gimpel, MSP baseline)
- entropy:          -sum_c p(c) log p(c) / log C      (normalised entropy, Chan et al. sec. 3.2; in [0, 1])
- softmax_distance: 1 - max_c p(c) + max_{c' != argmax} p(c')   (SynBoost eq. 2; already in [0, 1])
- max_logit:        -max_c l(c)                       (Hendrycks et al., "Scaling OoD detection"; unbounded)
- void:             p(void) from a softmax over classes + void, for nets trained with a void output

The softmax is over the C classes only; a void channel, when present, is left out of it (and of the
argmax), except by the `void` scorer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .base import Scorer

__all__ = ['MaxLogit', 'MaxSoftmax', 'NormalizedEntropy', 'SoftmaxDistance', 'VoidProbability']


class MaxSoftmax(Scorer):
    name = 'max_softmax'

    def __init__(self, num_classes: int, void_channel: bool = False) -> None:
        super().__init__(num_classes, void_channel)
        # The top probability is at least 1/C, so the score never exceeds 1 - 1/C; the bound is declared as the
        # float32 value the clamp produces, so a uniform pixel scores exactly the top of the range, never above.
        self.score_range = (0.0, float(torch.tensor(1.0 - 1.0 / num_classes, dtype=torch.float32)))

    def forward(self, logits: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        s = 1.0 - F.softmax(self.class_logits(logits), dim=1).amax(dim=1)
        return s.clamp_(*self.score_range)  # only float rounding can leave the range


class NormalizedEntropy(Scorer):
    name = 'entropy'
    score_range = (0.0, 1.0)

    def __init__(self, num_classes: int, void_channel: bool = False) -> None:
        super().__init__(num_classes, void_channel)
        self.norm = 1.0 / math.log(num_classes)

    def forward(self, logits: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        # log_softmax keeps p*log p finite where p underflows to 0 (0 * -inf would be NaN).
        logp = F.log_softmax(self.class_logits(logits), dim=1)
        h = -(logp.exp() * logp).sum(dim=1) * self.norm
        return h.clamp_(0.0, 1.0)  # only float rounding can leave [0, 1]


class SoftmaxDistance(Scorer):
    name = 'softmax_distance'
    score_range = (0.0, 1.0)

    def forward(self, logits: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        top2 = F.softmax(self.class_logits(logits), dim=1).topk(2, dim=1).values
        return (1.0 - top2[:, 0] + top2[:, 1]).clamp_(0.0, 1.0)  # only float rounding can leave [0, 1]


class MaxLogit(Scorer):
    name = 'max_logit'
    score_range = (-math.inf, math.inf)

    def forward(self, logits: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return -self.class_logits(logits).amax(dim=1)


class VoidProbability(Scorer):
    name = 'void'
    score_range = (0.0, 1.0)

    def __init__(self, num_classes: int, void_channel: bool = False) -> None:
        if not void_channel:
            raise ConfigError("scorer 'void' needs a model with a void output channel (model.yaml void_channel: true)")
        super().__init__(num_classes, void_channel)

    def forward(self, logits: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return F.softmax(logits[:, : self.num_classes + 1].float(), dim=1)[:, self.num_classes]
