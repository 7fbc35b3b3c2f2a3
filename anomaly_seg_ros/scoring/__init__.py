"""Anomaly scorers: softmax family now; flow density and SynBoost plug into the same registry."""

from .base import Scorer
from .registry import SCORERS, build_scorer
from .softmax import MaxSoftmax, NormalizedEntropy, SoftmaxDistance

__all__ = ['MaxSoftmax', 'NormalizedEntropy', 'SCORERS', 'Scorer', 'SoftmaxDistance', 'build_scorer']
