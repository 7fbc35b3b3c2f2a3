"""sensor_msgs/Image and CompressedImage <-> RGB numpy, without cv_bridge and without rclpy.

cv_bridge cannot be installed next to this package, so the node decodes image messages here.
Nothing in this module imports rclpy or a message package: the functions take the message
fields (or any object that has them), so the whole codec is testable without ROS.

Conventions:
- Core images are C-contiguous HxWx3 uint8 RGB arrays.
- ``data`` may be bytes, bytearray, memoryview, array.array('B') (what rclpy hands out), a
  uint8 numpy array or a list of ints. Buffers are wrapped with ``np.frombuffer`` (no copy) and
  row padding (``step > width * bytes_per_pixel``) is sliced away as a view.
- Every bad input raises :class:`~anomaly_seg_ros.errors.CodecError` naming the field and numbers;
  no raw numpy/cv2 exception escapes.

Bayer naming: ROS names the 2x2 mosaic by its top-left block read row by row ('bayer_rggb8' has
R at (0, 0)); OpenCV names it by the 2nd and 3rd pixel of the 2nd row. The mapping below was
checked by mosaicking a synthetic image by the ROS name and decoding with all four OpenCV codes
(see test_codec.py::test_bayer_mapping_matches_opencv_naming).

mono16 is brought to 8 bit exactly as cv_bridge does (``convertTo(CV_8U, 255/65535)``, i.e.
``round(v * 255 / 65535)`` = ``round(v / 257)``): full scale 65535 maps to 255. No ties exist
for integer v, so the integer formula used here matches OpenCV's rounding bit for bit.

YUV 4:2:2 uses OpenCV's decoder (BT.601, limited range Y 16..235); :func:`rgb_to_image` packs
with the inverse of the same matrix so round trips agree up to chroma subsampling.

Why not rosbags-image (evaluated: 0.10.4, with rosbags 0.11.9, OpenCV 5.0, numpy 2.4; decision: keep
this codec everywhere, no dependency added). A 2048x1024 frame per encoding as a rosbags Humble
message, 50 reps, median ms on 2 CPU cores, ours / ``rosbags.image.image_to_cvimage(msg, 'rgb8')``:

    rgb8 0.00 / 0.00 (both a zero-copy view of msg.data)   bgr8 0.11 / 0.11   rgba8 0.11 / 0.11
    bgra8 0.13 / 0.13   mono8 0.09 / 0.08   mono16 2.1 / 9.0   bayer_*8 0.47-0.49 / 0.48-0.57
    yuv422/uyvy/yuyv 0.42-0.44 / 0.43-0.45   jpeg 8.4 / 8.4   png 29.6 / 30.2 (compressed_image_to_cvimage)

Results are bit-identical for every unpadded rgb8, bgr8, rgba8, bgra8, mono8, bayer_*8, YUV 4:2:2 and
bgr-stored jpeg/png frame. It is not as good where it matters to us: it ignores ``step`` (a padded
row gives a sheared image, 98% of pixels wrong, with no error); mono16 truncates (``v * 255/65535``)
where cv_bridge rounds (half of all 16-bit values come out 1 lower); it ignores the CompressedImage
format string (a jpeg stored as rgb8 comes back with R and B swapped); bad input raises TypeError,
cv2.error or a bare AssertionError (gone under ``python -O``) instead of a CodecError. Before this
comparison our bgr8/rgba8/bgra8/mono8 decoding was a numpy copy of a reversed-stride view (6.6, 7.1,
6.8, 4.5 ms): their speed there came from ``cv2.cvtColor``, which this module now calls itself, so
nothing is left that the package would add. Measured with a throwaway script: frames made by
:func:`rgb_to_image`, results compared for exact equality, zero-copy checked with ``np.shares_memory``.
"""

from __future__ import annotations

import re
from typing import Any

import cv2
import numpy as np

from anomaly_seg_ros.errors import CodecError

__all__ = [
    'SUPPORTED_ENCODINGS',
    'compressed_image_size',
    'compressed_msg_to_rgb',
    'compressed_to_rgb',
    'encode_compressed',
    'image_msg_to_rgb',
    'image_to_rgb',
    'rgb_to_image',
]

# ROS bayer name -> OpenCV demosaic code producing RGB (verified, see module docstring).
_BAYER_TO_CV: dict[str, int] = {
    'bayer_rggb8': cv2.COLOR_BayerBG2RGB,
    'bayer_bggr8': cv2.COLOR_BayerRG2RGB,
    'bayer_gbrg8': cv2.COLOR_BayerGR2RGB,
    'bayer_grbg8': cv2.COLOR_BayerGB2RGB,
}

# ROS 'yuv422' is UYVY (sensor_msgs image_encodings.hpp); 'yuv422_yuy2' and 'yuyv' are YUYV.
_YUV_TO_CV: dict[str, int] = {
    'yuv422': cv2.COLOR_YUV2RGB_UYVY,
    'uyvy': cv2.COLOR_YUV2RGB_UYVY,
    'yuyv': cv2.COLOR_YUV2RGB_YUY2,
    'yuv422_yuy2': cv2.COLOR_YUV2RGB_YUY2,
}

# 3/4 channel encodings other than rgb8 -> OpenCV conversion to RGB (alpha dropped)
_SWAP_TO_RGB: dict[str, int] = {
    'bgr8': cv2.COLOR_BGR2RGB,
    'rgba8': cv2.COLOR_RGBA2RGB,
    'bgra8': cv2.COLOR_BGRA2RGB,
}

# encoding -> bytes per pixel
_BPP: dict[str, int] = {
    'rgb8': 3,
    'bgr8': 3,
    'rgba8': 4,
    'bgra8': 4,
    'mono8': 1,
    'mono16': 2,
    **{name: 1 for name in _BAYER_TO_CV},
    **{name: 2 for name in _YUV_TO_CV},
}

SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_BPP)

_COMPRESSED_CODECS: dict[str, str] = {'jpeg': '.jpg', 'jpg': '.jpg', 'png': '.png'}

# BT.601 limited range, the inverse of what cv2.COLOR_YUV2RGB_UYVY/YUY2 decode.
_RGB2YUV = np.array(
    [
        [0.256788, 0.504129, 0.097906],
        [-0.148223, -0.290993, 0.439216],
        [0.439216, -0.367788, -0.071427],
    ],
    dtype=np.float32,
)
_YUV_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float32)


# --------------------------------------------------------------------------- helpers


def _normalise_encoding(encoding: str) -> str:
    name = str(encoding).strip().lower()
    if name not in _BPP:
        raise CodecError(f'unsupported image encoding {encoding!r}; supported: {", ".join(SUPPORTED_ENCODINGS)}')
    return name


def _as_bytes_array(data: Any) -> np.ndarray:
    """Wrap ``data`` as a flat uint8 array, sharing memory whenever the input is a buffer."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise CodecError(f'image data array must be uint8, got {data.dtype}')
        return data.reshape(-1)
    if isinstance(data, (list, tuple)):
        try:
            arr = np.asarray(data)
        except (ValueError, TypeError) as exc:
            raise CodecError(f'image data list is not a flat list of bytes: {exc}') from exc
        if arr.size == 0:
            return np.zeros(0, dtype=np.uint8)
        if arr.dtype.kind not in 'iu' or arr.min() < 0 or arr.max() > 255:
            raise CodecError('image data list must hold integers in 0..255')
        return arr.astype(np.uint8).reshape(-1)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError) as exc:
        raise CodecError(f'image data of type {type(data).__name__} is not a byte buffer: {exc}') from exc


def _check_geometry(encoding: str, height: int, width: int, step: int, nbytes: int) -> int:
    """Validate sizes against the buffer; return bytes per pixel."""
    bpp = _BPP[encoding]
    try:
        height, width, step = int(height), int(width), int(step)
    except (TypeError, ValueError) as exc:
        raise CodecError(f'height/width/step must be integers: {exc}') from exc
    if height < 0 or width < 0 or step < 0:
        raise CodecError(f'negative size: height={height} width={width} step={step}')
    if height == 0 or width == 0 or nbytes == 0:
        raise CodecError(f'empty {encoding} frame: height={height} width={width} len(data)={nbytes}')
    if step < width * bpp:
        raise CodecError(
            f'step {step} is smaller than width*bytes_per_pixel = {width}*{bpp} = {width * bpp} for {encoding}'
        )
    if nbytes != step * height:
        raise CodecError(
            f'len(data) = {nbytes} does not match step*height = {step}*{height} = {step * height}'
            f' for {encoding} {width}x{height}'
        )
    if encoding in _YUV_TO_CV and width % 2:
        raise CodecError(f'{encoding} needs an even width (2 pixels share chroma), got width={width}')
    return bpp


def _rows(buf: np.ndarray, height: int, width: int, step: int, bpp: int) -> np.ndarray:
    """Drop row padding as a view: (height, width*bpp) with row stride ``step``."""
    return buf.reshape(height, step)[:, : width * bpp]


def _cvt(img: np.ndarray, code: int, what: str) -> np.ndarray:
    try:
        return cv2.cvtColor(img, code)
    except cv2.error as exc:
        raise CodecError(f'OpenCV could not convert {what} of shape {img.shape}: {exc}') from exc


def _mono16_to_8(px16: np.ndarray) -> np.ndarray:
    # round(v * 255 / 65535); v*255+32767 fits easily in uint32.
    return ((px16.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _check_rgb(rgb: Any) -> np.ndarray:
    ok = isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8
    if not ok or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, 'shape', None)
        dtype = getattr(rgb, 'dtype', type(rgb).__name__)
        raise CodecError(f'expected an HxWx3 uint8 RGB array, got shape={shape} dtype={dtype}')
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise CodecError(f'empty RGB image of shape {rgb.shape}')
    return rgb


# --------------------------------------------------------------------------- raw Image


def image_to_rgb(
    encoding: str,
    height: int,
    width: int,
    step: int,
    data: Any,
    is_bigendian: int = 0,
) -> np.ndarray:
    """Decode raw sensor_msgs/Image fields to HxWx3 uint8 RGB.

    The result is C-contiguous. For rgb8 without row padding it is a zero-copy view of ``data``:
    read-only when ``data`` is bytes, and sharing memory with a writable buffer otherwise, so copy
    it before mutating. Every other encoding (or padded rgb8) returns a fresh writable array.
    ``is_bigendian`` only matters for mono16.
    """
    enc = _normalise_encoding(encoding)
    buf = _as_bytes_array(data)
    bpp = _check_geometry(enc, height, width, step, buf.size)
    height, width, step = int(height), int(width), int(step)
    rows = _rows(buf, height, width, step, bpp)

    if enc == 'mono16':
        px16 = rows.view('>u2' if is_bigendian else '<u2')
        return _cvt(_mono16_to_8(px16), cv2.COLOR_GRAY2RGB, enc)
    if enc == 'mono8':
        return _cvt(np.ascontiguousarray(rows), cv2.COLOR_GRAY2RGB, enc)
    if enc in _BAYER_TO_CV:
        return _cvt(np.ascontiguousarray(rows), _BAYER_TO_CV[enc], enc)

    pix = rows.reshape(height, width, bpp)
    if enc in _YUV_TO_CV:
        return _cvt(np.ascontiguousarray(pix), _YUV_TO_CV[enc], enc)
    if enc == 'rgb8':
        return np.ascontiguousarray(pix)
    # channel swaps through OpenCV: ~15x faster than a numpy copy of a reversed-stride view, same bytes
    return _cvt(np.ascontiguousarray(pix), _SWAP_TO_RGB[enc], enc)


def image_msg_to_rgb(msg: Any) -> np.ndarray:
    """Decode a sensor_msgs/Image (or anything with its fields) to RGB; see :func:`image_to_rgb`."""
    try:
        fields = (msg.encoding, msg.height, msg.width, msg.step, msg.data)
    except AttributeError as exc:
        raise CodecError(f'object of type {type(msg).__name__} is not an Image message: {exc}') from exc
    return image_to_rgb(*fields, is_bigendian=getattr(msg, 'is_bigendian', 0))


def rgb_to_image(
    rgb: np.ndarray,
    encoding: str,
    pad: int = 0,
    is_bigendian: int = 0,
) -> tuple[int, bytes]:
    """Encode RGB into raw Image bytes, the inverse of :func:`image_to_rgb`.

    Lets the demo and the tests publish frames in any supported encoding. mono8/mono16 carry the
    BT.601 luminance (mono16 = mono8 * 257, so decoding gives mono8 back exactly); bayer samples
    the mosaic named by the encoding; YUV averages chroma over each pixel pair; alpha is 255.
    ``pad`` zero bytes are appended to each row so callers can exercise ``step`` handling.
    Returns ``(step, data)``.
    """
    rgb = _check_rgb(rgb)
    enc = _normalise_encoding(encoding)
    if int(pad) < 0:
        raise CodecError(f'pad must be >= 0, got {pad}')
    h, w = rgb.shape[:2]

    if enc == 'rgb8':
        out = rgb
    elif enc == 'bgr8':
        out = rgb[:, :, ::-1]
    elif enc in ('rgba8', 'bgra8'):
        out = np.full((h, w, 4), 255, dtype=np.uint8)
        out[:, :, :3] = rgb if enc == 'rgba8' else rgb[:, :, ::-1]
    elif enc in ('mono8', 'mono16'):
        gray = _cvt(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY, 'RGB')
        if enc == 'mono8':
            out = gray
        else:
            out = (gray.astype(np.uint16) * 257).astype('>u2' if is_bigendian else '<u2')
            out = out.view(np.uint8).reshape(h, w * 2)
    elif enc in _BAYER_TO_CV:
        pattern = enc[len('bayer_') : len('bayer_') + 4]
        channel = {'r': 0, 'g': 1, 'b': 2}
        out = np.empty((h, w), dtype=np.uint8)
        for (dy, dx), colour in zip(((0, 0), (0, 1), (1, 0), (1, 1)), pattern, strict=True):
            out[dy::2, dx::2] = rgb[dy::2, dx::2, channel[colour]]
    else:  # YUV 4:2:2
        if w % 2:
            raise CodecError(f'{enc} needs an even width (2 pixels share chroma), got width={w}')
        yuv = rgb.astype(np.float32) @ _RGB2YUV.T + _YUV_OFFSET
        y = np.clip(np.rint(yuv[:, :, 0]), 0, 255).astype(np.uint8)
        uv = yuv[:, :, 1:].reshape(h, w // 2, 2, 2).mean(axis=2)  # (h, w/2, [u, v])
        uv = np.clip(np.rint(uv), 0, 255).astype(np.uint8)
        out = np.empty((h, w // 2, 4), dtype=np.uint8)
        if _YUV_TO_CV[enc] == cv2.COLOR_YUV2RGB_UYVY:
            order = (uv[..., 0], y[:, 0::2], uv[..., 1], y[:, 1::2])  # U Y0 V Y1
        else:
            order = (y[:, 0::2], uv[..., 0], y[:, 1::2], uv[..., 1])  # Y0 U Y1 V
        for i, plane in enumerate(order):
            out[..., i] = plane

    row = np.ascontiguousarray(out).reshape(h, -1)
    if pad:
        row = np.concatenate([row, np.zeros((h, int(pad)), dtype=np.uint8)], axis=1)
    return row.shape[1], row.tobytes()


# --------------------------------------------------------------------------- CompressedImage


def _parse_compressed_format(fmt: str, data: np.ndarray) -> tuple[str, bool]:
    """Return (codec, stored_as_rgb) from a CompressedImage.format string.

    image_transport writes '<orig encoding>; <codec> compressed <stored encoding>'; older
    publishers write just 'jpeg' or 'png', and some leave it empty (then sniff the magic bytes).
    The stored encoding tells whether the encoder was handed BGR (the normal case) or RGB.
    """
    text = str(fmt).strip().lower()
    if 'compresseddepth' in text:
        raise CodecError(f'compressed format {fmt!r} is a depth image (compressedDepth); not supported')
    stored_rgb = re.search(r'compressed\s+rgb', text) is not None
    if not text:
        head = bytes(data[:8])
        if head.startswith(b'\xff\xd8\xff'):
            return 'jpeg', False
        if head.startswith(b'\x89PNG'):
            return 'png', False
        raise CodecError('empty compressed format and the data is neither JPEG nor PNG')
    codec_part = text.split(';', 1)[1] if ';' in text else text
    tokens = re.findall(r'[a-z0-9]+', codec_part)
    codec = next((t for t in tokens if t in _COMPRESSED_CODECS), None)
    if codec is None:
        raise CodecError(f'unknown compressed format {fmt!r}; supported codecs: {", ".join(_COMPRESSED_CODECS)}')
    return ('jpeg' if codec == 'jpg' else codec), stored_rgb


_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOFn; C4 DHT, C8 JPG, CC DAC are not frames
_JPEG_NO_LENGTH = frozenset(range(0xD0, 0xDA)) | {0x01}  # RSTn, SOI, EOI, TEM carry no length field


def compressed_image_size(data: Any) -> tuple[int, int] | None:
    """(width, height) read from a PNG IHDR or a JPEG SOFn header without decoding; None when not found.

    A 187 KB PNG can decode to 16000x12000 pixels (576 MB of RGB): check this before handing it to the decoder.
    """
    buf = bytes(_as_bytes_array(data)[: 65536 * 4])  # headers sit near the start; APPn segments are < 64 KB each
    if buf.startswith(b'\x89PNG\r\n\x1a\n') and len(buf) >= 24 and buf[12:16] == b'IHDR':
        return int.from_bytes(buf[16:20], 'big'), int.from_bytes(buf[20:24], 'big')
    if not buf.startswith(b'\xff\xd8'):
        return None
    i = 2
    while i + 1 < len(buf):
        if buf[i] != 0xFF:
            return None  # not at a marker: corrupt, the decoder will say so
        while i < len(buf) and buf[i] == 0xFF:  # fill bytes
            i += 1
        if i + 2 >= len(buf):
            return None
        marker = buf[i]
        if marker in _JPEG_NO_LENGTH or marker == 0xD8:
            i += 1
            continue
        if marker == 0xDA:  # start of scan before any frame header
            return None
        length = int.from_bytes(buf[i + 1 : i + 3], 'big')
        if marker in _JPEG_SOF:
            if i + 7 >= len(buf):
                return None
            return int.from_bytes(buf[i + 6 : i + 8], 'big'), int.from_bytes(buf[i + 4 : i + 6], 'big')
        i += 1 + length
    return None


def compressed_to_rgb(fmt: str, data: Any, max_pixels: int | None = None) -> np.ndarray:
    """Decode CompressedImage fields (JPEG or PNG) to a fresh HxWx3 uint8 RGB array.

    Grey images come back with the grey value in all three channels; 16-bit PNGs are reduced to
    8 bit by OpenCV. With `max_pixels`, an image whose header announces more pixels (width*height) is
    refused before decoding.
    """
    buf = _as_bytes_array(data)
    if buf.size == 0:
        raise CodecError(f'empty compressed image (format {fmt!r}, 0 bytes)')
    codec, stored_rgb = _parse_compressed_format(fmt, buf)
    if max_pixels is not None:
        size = compressed_image_size(buf)
        if size is not None and size[0] * size[1] > max_pixels:
            raise CodecError(
                f'{codec} header announces {size[0]}x{size[1]} = {size[0] * size[1]} pixels, more than '
                f'max_frame_pixels = {max_pixels}; not decoded'
            )
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise CodecError(f'cannot decode {buf.size} bytes of {codec} data: {exc}') from exc
    if img is None or img.size == 0:
        raise CodecError(f'cannot decode {buf.size} bytes as {codec} (format {fmt!r}): corrupt or truncated')
    if stored_rgb:
        return np.ascontiguousarray(img)
    return _cvt(img, cv2.COLOR_BGR2RGB, codec)


def compressed_msg_to_rgb(msg: Any, max_pixels: int | None = None) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (or anything with .format/.data) to RGB; see compressed_to_rgb."""
    try:
        fmt, data = msg.format, msg.data
    except AttributeError as exc:
        raise CodecError(f'object of type {type(msg).__name__} is not a CompressedImage message: {exc}') from exc
    return compressed_to_rgb(fmt, data, max_pixels)


def encode_compressed(rgb: np.ndarray, fmt: str = 'jpeg', quality: int = 90) -> bytes:
    """Encode RGB as JPEG or PNG bytes stored as BGR, the layout image_transport publishes.

    Pair it with the format string 'rgb8; jpeg compressed bgr8' (or 'png'). ``quality`` (0..100)
    only applies to JPEG; PNG is lossless at OpenCV's default compression level.
    """
    rgb = _check_rgb(rgb)
    codec, _ = _parse_compressed_format(fmt or 'jpeg', np.zeros(0, dtype=np.uint8))
    if not 0 <= int(quality) <= 100:
        raise CodecError(f'jpeg quality must be in 0..100, got {quality}')
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if codec == 'jpeg' else []
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    try:
        ok, enc = cv2.imencode(_COMPRESSED_CODECS[codec], bgr, params)
    except cv2.error as exc:
        raise CodecError(f'OpenCV could not encode {rgb.shape} image as {codec}: {exc}') from exc
    if not ok:
        raise CodecError(f'OpenCV could not encode {rgb.shape} image as {codec}')
    return enc.tobytes()
