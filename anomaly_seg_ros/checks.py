"""Small value and array checks shared by every layer (config, data, pipeline): one definition each."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ['image_problem', 'is_int', 'is_number']


def is_int(value: Any) -> bool:
    """True for Python and numpy integers; False for bools (``True`` is an int to Python, never to a config)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """True for Python and numpy ints and floats; False for bools."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def image_problem(image: object) -> str | None:
    """What is wrong with ``image`` as an HxWx3 uint8 RGB frame, or None when nothing is.

    Callers wrap the text in their own domain error (DatasetError, ValueError, ...), so the message is the same
    wherever an image is checked.
    """
    if not isinstance(image, np.ndarray):
        return f'image must be an HxWx3 uint8 RGB numpy array, got {type(image).__name__}'
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        return f'image must be HxWx3 uint8 RGB, got shape {image.shape} dtype {image.dtype}'
    if image.shape[0] == 0 or image.shape[1] == 0:
        return f'image is empty: shape {image.shape}'
    return None
