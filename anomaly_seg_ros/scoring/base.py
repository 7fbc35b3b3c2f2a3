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
    """forward(logits BxKxhxw, image Bx3xhxw normalised) -> scores Bxhxw float32, higher = more anomalous.

    K = num_classes, plus one trailing void channel when the model has one. Class-based scorers look at
    the first num_classes channels only (`class_logits`), so a void channel never changes them.
    """

    name: str = ''
    #: closed range every score lies in; math.inf where the scorer is unbounded.
    score_range: tuple[float, float] = (0.0, 1.0)

    def __init__(self, num_classes: int, void_channel: bool = False) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.void_channel = void_channel

    @property
    def bounded(self) -> bool:
        return all(math.isfinite(v) for v in self.score_range)

    def class_logits(self, logits: torch.Tensor) -> torch.Tensor:
        return logits[:, : self.num_classes].float()

    def forward(self, logits: torch.Tensor, image: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError
