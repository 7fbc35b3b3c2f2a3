"""Image and mask files on disk -> numpy arrays, with errors that name the file (every reader and blend use these).

``cv2.imdecode`` over bytes read by Python rather than ``cv2.imread``: non-ASCII paths work, and a missing,
unreadable, empty or corrupt file each get their own message instead of OpenCV's silent ``None``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import DatasetError

__all__ = ['read_bytes', 'read_image', 'read_mask']


def read_bytes(path: Path, what: str) -> np.ndarray:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f'{what} file {str(path)!r} does not exist') from None
    except OSError as e:
        raise DatasetError(f'cannot read {what} file {str(path)!r}: {e}') from e
    if not data:
        raise DatasetError(f'{what} file {str(path)!r} is empty')
    return np.frombuffer(data, dtype=np.uint8)


def read_image(path: Path) -> np.ndarray:
    """HxWx3 uint8 RGB; a grey or 16-bit image is converted by OpenCV, alpha dropped."""
    img = cv2.imdecode(read_bytes(path, 'image'), cv2.IMREAD_COLOR)
    if img is None or img.ndim != 3 or img.shape[2] != 3 or img.size == 0:
        raise DatasetError(f'image file {str(path)!r} is corrupt or not an image OpenCV can decode')
    return np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))


def read_mask(path: Path) -> np.ndarray:
    """HxW uint8 or uint16 mask, read unchanged."""
    mask = cv2.imdecode(read_bytes(path, 'mask'), cv2.IMREAD_UNCHANGED)
    if mask is None or mask.size == 0:
        raise DatasetError(f'mask file {str(path)!r} is corrupt or not an image OpenCV can decode')
    if mask.dtype not in (np.uint8, np.uint16):
        raise DatasetError(f'mask file {str(path)!r} has dtype {mask.dtype}; expected 8- or 16-bit integers')
    if mask.ndim == 3:
        channels = mask[:, :, :3]
        if not (
            np.array_equal(channels[:, :, 0], channels[:, :, 1])
            and np.array_equal(channels[:, :, 0], channels[:, :, 2])
        ):
            raise DatasetError(
                f'mask file {str(path)!r} has {mask.shape[2]} colour channels with different values '
                '(colour or palette PNG?); expected a single-channel label image'
            )
        mask = channels[:, :, 0]
    if mask.ndim != 2:
        raise DatasetError(f'mask file {str(path)!r} has shape {mask.shape}; expected HxW')
    return mask
