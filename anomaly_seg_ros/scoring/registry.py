"""Scorers by name; an unknown name lists the valid ones.

Each entry is a Scorer class; its `from_config(model, scorer_config)` is the factory, so a scorer sees the
model folder's contract (classes, void channel, taps) and its own entry in model.yaml.
"""

from __future__ import annotations

from ..config import ModelConfig
from ..errors import ConfigError
from .base import Scorer, ScorerConfig
from .flow import FlowDensity
from .sml import StandardizedMaxLogit
from .softmax import MaxLogit, MaxSoftmax, NormalizedEntropy, SoftmaxDistance, VoidProbability

__all__ = ['SCORERS', 'build_scorer', 'register_scorer']

SCORERS: dict[str, type[Scorer]] = {
    'entropy': NormalizedEntropy,
    'flow': FlowDensity,
    'max_logit': MaxLogit,
    'max_softmax': MaxSoftmax,
    'sml': StandardizedMaxLogit,
    'softmax_distance': SoftmaxDistance,
    'void': VoidProbability,
}


def register_scorer(cls: type[Scorer]) -> type[Scorer]:
    """Add a scorer class under its `name` (a decorator; later issues' scorers register the same way)."""
    if not cls.name:
        raise ValueError(f'{cls.__name__}: a scorer needs a name')
    SCORERS[cls.name] = cls
    return cls


def build_scorer(name: str, model: ModelConfig, cfg: ScorerConfig | None = None) -> Scorer:
    """The scorer `name` for `model`, configured by its model.yaml entry unless `cfg` is given."""
    if name not in SCORERS:
        raise ConfigError(f'unknown scorer {name!r}; available: {", ".join(sorted(SCORERS))}')
    return SCORERS[name].from_config(model, cfg or ScorerConfig.for_model(model, name))
