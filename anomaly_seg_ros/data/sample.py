"""The one sample type every data source yields: synthetic world, dataset readers, bags."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ['Sample']


@dataclass(frozen=True)
class Sample:
    """One frame with optional ground truth.

    image:   HxWx3 uint8 RGB.
    labels:  HxW uint8 Cityscapes trainIds (0..18), 255 = ignore; None when the source has none.
    anomaly: HxW uint8 Fishyscapes encoding (0 in-distribution, 1 anomaly, 255 ignore); None when absent.
    name:    a stable identifier (file stem, seed/index), used in reports and error messages.
    """

    image: np.ndarray
    labels: np.ndarray | None = None
    anomaly: np.ndarray | None = None
    name: str = ''
