"""Scorers by name; an unknown name lists the valid ones."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ConfigError
from .base import Scorer
from .softmax import MaxLogit, MaxSoftmax, NormalizedEntropy, SoftmaxDistance, VoidProbability

__all__ = ['SCORERS', 'build_scorer']

SCORERS: dict[str, Callable[[int, bool], Scorer]] = {
    'entropy': NormalizedEntropy,
    'max_logit': MaxLogit,
    'max_softmax': MaxSoftmax,
    'softmax_distance': SoftmaxDistance,
    'void': VoidProbability,
}


def build_scorer(name: str, num_classes: int, void_channel: bool = False) -> Scorer:
    if name not in SCORERS:
        raise ConfigError(f'unknown scorer {name!r}; available: {", ".join(sorted(SCORERS))}')
    return SCORERS[name](num_classes, void_channel)
