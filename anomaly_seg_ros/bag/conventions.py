"""What the bag writer and reader agree on: message type names, the rosbags typestore, ground-truth values."""

from __future__ import annotations

from typing import Any

import numpy as np

from anomaly_seg_ros.classes import ANOMALY_ID, ANOMALY_IGNORE, ANOMALY_IN_DIST, IGNORE_ID, NUM_CLASSES
from anomaly_seg_ros.errors import BagError

__all__ = [
    'COMPRESSED_TYPE',
    'GT_ENCODINGS',
    'GT_VALID',
    'IMAGE_TYPE',
    'IMAGE_TYPES',
    'bad_gt_values',
    'exception_text',
    'hw',
    'require_rosbags',
    'ros2_typestore',
]

IMAGE_TYPE = 'sensor_msgs/msg/Image'
COMPRESSED_TYPE = 'sensor_msgs/msg/CompressedImage'
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)

# Ground-truth images are single channel 8 bit; '8UC1' is what many label publishers write.
GT_ENCODINGS = ('mono8', '8uc1')

_ANOMALY_OK = np.zeros(256, dtype=bool)
_ANOMALY_OK[[ANOMALY_IN_DIST, ANOMALY_ID, ANOMALY_IGNORE]] = True
_LABELS_OK = np.zeros(256, dtype=bool)
_LABELS_OK[:NUM_CLASSES] = True
_LABELS_OK[IGNORE_ID] = True

GT_VALID = {'anomaly': _ANOMALY_OK, 'labels': _LABELS_OK}
GT_ALLOWED_TEXT = {
    'anomaly': f'{{{ANOMALY_IN_DIST}, {ANOMALY_ID}, {ANOMALY_IGNORE}}}',
    'labels': f'0..{NUM_CLASSES - 1} or {IGNORE_ID}',
}


def require_rosbags() -> Any:
    """Import rosbags or raise a BagError that says how to install it."""
    try:
        import rosbags  # noqa: PLC0415
    except ImportError:
        raise BagError('reading and writing bags needs the pure-Python rosbags library: pip install rosbags') from None
    return rosbags


def ros2_typestore() -> Any:
    """The ROS 2 Humble typestore (sensor_msgs and std_msgs as Humble defines them)."""
    require_rosbags()
    from rosbags.typesys import Stores, get_typestore  # noqa: PLC0415

    return get_typestore(Stores.ROS2_HUMBLE)


def bad_gt_values(kind: str, arr: np.ndarray) -> str | None:
    """None when every value of ``arr`` is allowed for ``kind`` ('anomaly' or 'labels'), else a text."""
    counts = np.bincount(arr.reshape(-1), minlength=256)
    bad = np.flatnonzero((counts > 0) & ~GT_VALID[kind])
    if bad.size == 0:
        return None
    shown = ', '.join(f'{v} ({counts[v]} px)' for v in bad[:5])
    more = f' and {bad.size - 5} more values' if bad.size > 5 else ''
    return f'{kind} values outside {GT_ALLOWED_TEXT[kind]}: {shown}{more}'


def hw(arr: np.ndarray) -> str:
    """'HxW' of an image array, for messages."""
    return f'{arr.shape[0]}x{arr.shape[1]}'


def exception_text(exc: BaseException) -> str:
    """'Type: message' of a foreign exception (just the type when it has no message)."""
    text = str(exc).strip()
    return f'{type(exc).__name__}: {text}' if text else type(exc).__name__
