"""The scorer contract shared by every anomaly scorer (softmax family now; flow and SynBoost later).

A scorer is an nn.Module so that it runs on the backend's device and exports into the same ONNX graph as
the segmentation net (one graph per pipeline for TensorRT). It declares the range of its scores: metrics
bin over it and the heatmap maps it to colours; nothing squashes scores silently.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ['Scorer']


class Scorer(nn.Module):
    """forward(logits BxCxhxw, image Bx3xhxw normalised) -> scores Bxhxw float32, higher = more anomalous."""

    name: str = ''
    #: closed range every score lies in; math.inf where the scorer is unbounded.
    score_range: tuple[float, float] = (0.0, 1.0)

    @property
    def bounded(self) -> bool:
        return all(math.isfinite(v) for v in self.score_range)

    def forward(self, logits: torch.Tensor, image: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError
