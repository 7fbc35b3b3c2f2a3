"""Build sensor_msgs from numpy arrays. `data = arr.tobytes()`: assigning an ndarray costs ~100x more in rclpy."""

from __future__ import annotations

import sys

import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

__all__ = ['compressed_msg', 'image_msg']

_CHANNELS = {'mono8': 1, 'mono16': 1, 'rgb8': 3, 'bgr8': 3, '32FC1': 1, '16UC1': 1}


def image_msg(header: Header, array: np.ndarray, encoding: str) -> Image:
    """An Image with `header` copied in; `array` must already have the dtype and channels of `encoding`."""
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(array.shape[0]), int(array.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = int(sys.byteorder == 'big' and array.dtype.itemsize > 1)
    arr = np.ascontiguousarray(array)
    msg.step = int(arr.strides[0])
    msg.data = arr.tobytes()
    return msg


def compressed_msg(header: Header, data: bytes, fmt: str) -> CompressedImage:
    msg = CompressedImage()
    msg.header = header
    msg.format = fmt
    msg.data = data
    return msg
