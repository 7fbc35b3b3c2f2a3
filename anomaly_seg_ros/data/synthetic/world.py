"""The public face of the synthetic world: `generate` one frame by seed, `SyntheticWorld` a sequence of them."""

from __future__ import annotations

import operator
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np

from anomaly_seg_ros.checks import is_int
from anomaly_seg_ros.data.sample import Sample

from .config import WorldConfig
from .render import FrameRenderer

__all__ = ['DEFAULT_CONFIG', 'SyntheticWorld', 'generate']

DEFAULT_CONFIG = WorldConfig()


def _check_seed(seed: Any, what: str = 'seed') -> int:
    """The seed as an int; ValueError unless it is an int >= 0."""
    if not is_int(seed) or seed < 0:
        raise ValueError(f'{what} must be an int >= 0, got {seed!r}')
    return int(seed)


def generate(seed: int, config: WorldConfig = DEFAULT_CONFIG) -> Sample:
    """Render one frame; deterministic per (seed, config). The name is ``'synthetic-{seed}'``."""
    seed = _check_seed(seed)
    if not isinstance(config, WorldConfig):
        raise TypeError(f'config must be a WorldConfig, got {type(config).__name__}')
    image, labels, anomaly = FrameRenderer(np.random.default_rng(seed), config).render()
    return Sample(image=image, labels=labels, anomaly=anomaly, name=f'synthetic-{seed}')


class SyntheticWorld:
    """A sequence of ``n`` frames: ``world[i] == generate(seed * 1_000_003 + i, config)`` (renamed).

    Frames are rendered on access (nothing is cached); names are ``'synthetic-s{seed}-{i:06d}'``.
    """

    SEED_STRIDE = 1_000_003

    def __init__(self, n: int, seed: int = 0, config: WorldConfig = DEFAULT_CONFIG) -> None:
        if not is_int(n) or n < 0:
            raise ValueError(f'n must be an int >= 0, got {n!r}')
        if not isinstance(config, WorldConfig):
            raise TypeError(f'config must be a WorldConfig, got {type(config).__name__}')
        self.n = int(n)
        self.seed = _check_seed(seed)
        self.config = config

    def __len__(self) -> int:
        return self.n

    def frame_seed(self, i: int) -> int:
        """The ``generate`` seed of frame ``i`` (0 <= i < n)."""
        return self.seed * self.SEED_STRIDE + i

    def __getitem__(self, i: int) -> Sample:
        if not is_int(i):
            raise TypeError(f'SyntheticWorld indices must be ints, got {type(i).__name__}')
        index = operator.index(i)
        if index < 0:
            index += self.n
        if not 0 <= index < self.n:
            raise IndexError(f'SyntheticWorld index {i} out of range for length {self.n}')
        sample = generate(self.frame_seed(index), self.config)
        return replace(sample, name=f'synthetic-s{self.seed}-{index:06d}')

    def __iter__(self) -> Iterator[Sample]:
        for i in range(self.n):
            yield self[i]

    def __repr__(self) -> str:
        return f'SyntheticWorld(n={self.n}, seed={self.seed}, config={self.config!r})'
