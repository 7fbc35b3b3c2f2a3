"""Scorers computed from the softmax of the segmentation logits alone.

- max_softmax:      1 - max_c p(c)                    (Hendrycks & Gimpel, MSP baseline)
- entropy:          -sum_c p(c) log p(c) / log C      (normalised entropy, Chan et al. sec. 3.2; in [0, 1])
- softmax_distance: 1 - max_c p(c) + max_{c' != argmax} p(c')   (SynBoost eq. 2; already in [0, 1])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .base import Scorer

__all__ = ['MaxSoftmax', 'NormalizedEntropy', 'SoftmaxDistance']


class MaxSoftmax(Scorer):
    name = 'max_softmax'

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        # The top probability is at least 1/C, so the score never exceeds 1 - 1/C.
        self.score_range = (0.0, 1.0 - 1.0 / num_classes)

    def forward(self, logits: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return 1.0 - F.softmax(logits.float(), dim=1).amax(dim=1)


class NormalizedEntropy(Scorer):
    name = 'entropy'

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.norm = 1.0 / math.log(num_classes)
        self.score_range = (0.0, 1.0)

    def forward(self, logits: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        # log_softmax keeps p*log p finite where p underflows to 0 (0 * -inf would be NaN).
        logp = F.log_softmax(logits.float(), dim=1)
        h = -(logp.exp() * logp).sum(dim=1) * self.norm
        return h.clamp_(0.0, 1.0)  # only float rounding can leave [0, 1]


class SoftmaxDistance(Scorer):
    name = 'softmax_distance'

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.score_range = (0.0, 1.0)

    def forward(self, logits: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        top2 = F.softmax(logits.float(), dim=1).topk(2, dim=1).values
        return 1.0 - top2[:, 0] + top2[:, 1]
