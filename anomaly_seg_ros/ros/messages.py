"""Build sensor_msgs from numpy arrays and bytes, fast on every ROS 2 distribution.

A `uint8[]` field (`Image.data`, `CompressedImage.data`) is assigned an `array.array('B')`: the generated
message setters take one as it is. Anything else (bytes, an ndarray, a list) goes through a Python-level check
of every element wherever field checks are on: always on Humble and Jazzy (`if __debug__`), with
ROS_PYTHON_CHECK_FIELDS=1 on Kilted; measured here, 6.5 ms for a 512x256 mono8 image, so about 0.4 s for a
2048x1024 float32 score map, per frame. `uint8_array` makes the array with one copy straight from the buffer.
"""

from __future__ import annotations

import array
import sys

import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

__all__ = ['compressed_msg', 'image_msg', 'uint8_array']


def uint8_array(data: bytes | bytearray | memoryview | np.ndarray) -> array.array[int]:
    """`array.array('B')` holding the bytes of `data` (one copy; an ndarray is made C-contiguous first)."""
    view = np.ascontiguousarray(data).data if isinstance(data, np.ndarray) else memoryview(data)
    out = array.array('B')
    out.frombytes(view.cast('B') if view.ndim != 1 or view.format != 'B' else view)
    return out


def image_msg(header: Header, array_: np.ndarray, encoding: str) -> Image:
    """An Image with `header` copied in; `array_` must already have the dtype and channels of `encoding`."""
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(array_.shape[0]), int(array_.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = int(sys.byteorder == 'big' and array_.dtype.itemsize > 1)
    arr = np.ascontiguousarray(array_)
    msg.step = int(arr.strides[0])
    msg.data = uint8_array(arr)
    return msg


def compressed_msg(header: Header, data: bytes, fmt: str) -> CompressedImage:
    msg = CompressedImage()
    msg.header = header
    msg.format = fmt
    msg.data = uint8_array(data)
    return msg
