"""Anomaly scorers: softmax family now; flow density and SynBoost plug into the same registry."""

from .base import Scorer
from .registry import SCORERS, build_scorer
from .softmax import MaxLogit, MaxSoftmax, NormalizedEntropy, SoftmaxDistance, VoidProbability

__all__ = [
    'MaxLogit',
    'MaxSoftmax',
    'NormalizedEntropy',
    'SCORERS',
    'Scorer',
    'SoftmaxDistance',
    'VoidProbability',
    'build_scorer',
]
