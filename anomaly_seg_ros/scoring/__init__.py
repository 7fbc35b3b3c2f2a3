"""Anomaly scorers: softmax family now; flow density and SynBoost plug into the same registry."""

from .base import IMAGE, LOGITS, Scorer, ScorerConfig
from .registry import SCORERS, build_scorer, register_scorer
from .softmax import MaxLogit, MaxSoftmax, NormalizedEntropy, SoftmaxDistance, VoidProbability, softmax_parts

__all__ = [
    'IMAGE',
    'LOGITS',
    'MaxLogit',
    'MaxSoftmax',
    'NormalizedEntropy',
    'SCORERS',
    'Scorer',
    'ScorerConfig',
    'SoftmaxDistance',
    'VoidProbability',
    'build_scorer',
    'register_scorer',
    'softmax_parts',
]
