"""Deserialized bag messages -> the arrays of a Sample: the RGB image, ground truth, the header stamp.

Decoding never raises for bad message content: each function returns ``(array, None)`` or
``(None, reason)`` so the reader can report the reason with the topic and message index.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anomaly_seg_ros.bag.conventions import COMPRESSED_TYPE, GT_ENCODINGS, bad_gt_values, exception_text
from anomaly_seg_ros.errors import CodecError
from anomaly_seg_ros.io.image_codec import compressed_to_rgb, image_to_rgb

__all__ = ['decode_ground_truth', 'decode_image', 'header_stamp_ns']


def header_stamp_ns(msg: Any) -> int:
    """The message's header stamp in nanoseconds."""
    stamp = msg.header.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def decode_image(msg: Any, msgtype: str) -> tuple[np.ndarray | None, str | None]:
    """An Image or CompressedImage message as a writable HxWx3 uint8 RGB array, or (None, reason)."""
    try:
        if msgtype == COMPRESSED_TYPE:
            rgb = compressed_to_rgb(msg.format, msg.data)
        else:
            rgb = image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.data, msg.is_bigendian)
    except CodecError as exc:
        return None, f'cannot decode image: {exc}'
    except Exception as exc:  # noqa: BLE001 - a message missing fields
        return None, f'cannot decode image: {exception_text(exc)}'
    return (rgb if rgb.flags.writeable else rgb.copy()), None


def decode_ground_truth(role: str, msg: Any, msgtype: str) -> tuple[np.ndarray | None, str | None]:
    """A ground-truth message of ``role`` ('anomaly' or 'labels') as an HxW uint8 array with only
    values its encoding allows, or (None, reason): wrong encoding, lossy compression, bad values."""
    try:
        if msgtype == COMPRESSED_TYPE:
            fmt = str(msg.format).lower()
            if 'png' not in fmt:
                return None, f'compressed ground truth must be png (lossless), format is {msg.format!r}'
            arr = compressed_to_rgb(msg.format, msg.data)[:, :, 0]
        else:
            if str(msg.encoding).strip().lower() not in GT_ENCODINGS:
                return None, f'ground-truth encoding {msg.encoding!r}, expected mono8'
            arr = image_to_rgb('mono8', msg.height, msg.width, msg.step, msg.data)[:, :, 0]
    except CodecError as exc:
        return None, f'cannot decode: {exc}'
    arr = np.ascontiguousarray(arr)
    bad = bad_gt_values(role, arr)
    return (None, bad) if bad is not None else (arr, None)
