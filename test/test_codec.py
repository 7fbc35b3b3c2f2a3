"""Tests for anomaly_seg_ros.io.image_codec: no ROS import, synthetic images only."""

from __future__ import annotations

import array
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.errors import CodecError
from anomaly_seg_ros.io.image_codec import (
    SUPPORTED_ENCODINGS,
    compressed_image_size,
    compressed_msg_to_rgb,
    compressed_to_rgb,
    encode_compressed,
    image_msg_to_rgb,
    image_to_rgb,
    rgb_to_image,
)

H, W = 32, 48
BAYER = ('bayer_rggb8', 'bayer_bggr8', 'bayer_gbrg8', 'bayer_grbg8')
YUV = ('yuv422', 'uyvy', 'yuyv', 'yuv422_yuy2')
EXACT = ('rgb8', 'bgr8', 'rgba8', 'bgra8')


def smooth_rgb(h: int = H, w: int = W) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    r = x * 255 // (w - 1)
    g = y * 255 // (h - 1)
    b = 255 - (x + y) * 255 // (w + h - 2)
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def luminance(rgb: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return np.repeat(gray[:, :, None], 3, axis=2)


def decode(rgb: np.ndarray, encoding: str, pad: int = 0, is_bigendian: int = 0) -> np.ndarray:
    step, data = rgb_to_image(rgb, encoding, pad=pad, is_bigendian=is_bigendian)
    h, w = rgb.shape[:2]
    return image_to_rgb(encoding, h, w, step, data, is_bigendian=is_bigendian)


def mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_supported_encodings_cover_the_brief() -> None:
    expected = {'rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', 'mono16', *BAYER, *YUV}
    assert set(SUPPORTED_ENCODINGS) == expected


@pytest.mark.parametrize('encoding', SUPPORTED_ENCODINGS)
def test_round_trip_every_encoding(encoding: str) -> None:
    rgb = smooth_rgb()
    out = decode(rgb, encoding)
    assert out.shape == (H, W, 3)
    assert out.dtype == np.uint8
    assert out.flags.c_contiguous
    if encoding in EXACT:
        np.testing.assert_array_equal(out, rgb)
    elif encoding.startswith('mono'):
        np.testing.assert_array_equal(out, luminance(rgb))
    else:
        assert mae(out, rgb) < 6, f'{encoding}: mean abs error {mae(out, rgb):.2f}'


@pytest.mark.parametrize('encoding', BAYER + YUV)
@pytest.mark.parametrize('channel', [0, 1, 2])
def test_pure_primary_is_not_swapped(encoding: str, channel: int) -> None:
    rgb = np.zeros((H, W, 3), dtype=np.uint8)
    rgb[:, :, channel] = 255
    out = decode(rgb, encoding)
    means = out.reshape(-1, 3).mean(axis=0)
    assert means[channel] > 200, f'{encoding}: channel means {means}'
    others = [means[c] for c in range(3) if c != channel]
    assert max(others) < 60, f'{encoding}: channel means {means}'


def _hand_mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """Mosaic independently of the codec: ROS names the top-left 2x2 block row by row."""
    idx = {'r': 0, 'g': 1, 'b': 2}
    m = np.empty(rgb.shape[:2], dtype=np.uint8)
    for (dy, dx), colour in zip(((0, 0), (0, 1), (1, 0), (1, 1)), pattern, strict=True):
        m[dy::2, dx::2] = rgb[dy::2, dx::2, idx[colour]]
    return m


@pytest.mark.parametrize(
    ('encoding', 'cv_name'),
    [
        ('bayer_rggb8', 'BayerBG'),
        ('bayer_bggr8', 'BayerRG'),
        ('bayer_gbrg8', 'BayerGR'),
        ('bayer_grbg8', 'BayerGB'),
    ],
)
def test_bayer_mapping_matches_opencv_naming(encoding: str, cv_name: str) -> None:
    rgb = smooth_rgb()
    mosaic = _hand_mosaic(rgb, encoding[len('bayer_') : len('bayer_') + 4])
    # Of the four OpenCV codes, exactly the mapped one reconstructs the image.
    errors = {
        name: mae(cv2.cvtColor(mosaic, getattr(cv2, f'COLOR_{name}2RGB')), rgb)
        for name in ('BayerBG', 'BayerGB', 'BayerRG', 'BayerGR')
    }
    assert min(errors, key=errors.get) == cv_name, errors
    out = image_to_rgb(encoding, H, W, W, mosaic.tobytes())
    assert mae(out, rgb) < 2
    np.testing.assert_array_equal(out, cv2.cvtColor(mosaic, getattr(cv2, f'COLOR_{cv_name}2RGB')))


@pytest.mark.parametrize(
    ('encoding', 'luma_bytes'),
    [('yuv422', (1, 3)), ('uyvy', (1, 3)), ('yuyv', (0, 2)), ('yuv422_yuy2', (0, 2))],
)
def test_yuv_byte_order_by_hand(encoding: str, luma_bytes: tuple[int, int]) -> None:
    # Grey ramp packed by hand (chroma 128 = no colour): only the right byte order reads the
    # ramp from the luma bytes; the wrong one reads the constant 128 chroma as luma.
    luma = np.linspace(16, 235, 16).astype(np.uint8)
    packed = np.full((2, 8, 4), 128, dtype=np.uint8)
    packed[:, :, luma_bytes[0]] = luma[0::2]
    packed[:, :, luma_bytes[1]] = luma[1::2]
    out = image_to_rgb(encoding, 2, 16, 32, packed.tobytes())
    expected = np.clip(np.rint((luma.astype(float) - 16) * 255 / 219), 0, 255)
    assert np.abs(out[0, :, 0] - expected).max() <= 1
    assert np.abs(out.astype(int) - out[:, :, :1]).max() <= 1  # grey stays grey


@pytest.mark.parametrize('is_bigendian', [0, 1])
def test_mono16_both_endiannesses(is_bigendian: int) -> None:
    values = np.array([[0, 128, 129, 256, 32767], [32768, 40000, 65000, 65407, 65535]], dtype=np.uint16)
    dt = '>u2' if is_bigendian else '<u2'
    data = values.astype(dt).tobytes()
    out = image_to_rgb('mono16', 2, 5, 10, data, is_bigendian=is_bigendian)
    expected = np.rint(values.astype(np.float64) * 255.0 / 65535.0).astype(np.uint8)  # cv_bridge
    np.testing.assert_array_equal(out[:, :, 0], expected)
    np.testing.assert_array_equal(out[:, :, 1], expected)
    np.testing.assert_array_equal(out[:, :, 2], expected)
    # Reading with the wrong byte order gives a different picture: the flag is honoured.
    wrong = image_to_rgb('mono16', 2, 5, 10, data, is_bigendian=1 - is_bigendian)
    assert not np.array_equal(wrong, out)


@pytest.mark.parametrize('is_bigendian', [0, 1])
def test_mono16_round_trip_is_exact_on_luminance(is_bigendian: int) -> None:
    rgb = smooth_rgb()
    np.testing.assert_array_equal(decode(rgb, 'mono16', is_bigendian=is_bigendian), luminance(rgb))


@pytest.mark.parametrize('encoding', SUPPORTED_ENCODINGS)
def test_step_padding_is_ignored(encoding: str) -> None:
    rgb = smooth_rgb()
    step, data = rgb_to_image(rgb, encoding, pad=7)
    padded = bytearray(data)
    tight_step = step - 7
    for row in range(H):  # fill padding with garbage: must not leak into the picture
        padded[row * step + tight_step : (row + 1) * step] = b'\xab' * 7
    got = image_to_rgb(encoding, H, W, step, bytes(padded))
    np.testing.assert_array_equal(got, decode(rgb, encoding))
    assert got.flags.c_contiguous


def test_rgb8_unpadded_is_zero_copy_view() -> None:
    rgb = smooth_rgb()
    buf = bytearray(rgb.tobytes())
    out = image_to_rgb('rgb8', H, W, W * 3, buf)
    assert np.shares_memory(out, np.frombuffer(buf, dtype=np.uint8))
    ro = image_to_rgb('rgb8', H, W, W * 3, bytes(buf))
    assert not ro.flags.writeable


@pytest.mark.parametrize(
    'wrap',
    [
        bytes,
        bytearray,
        memoryview,
        lambda b: array.array('B', b),
        lambda b: np.frombuffer(b, np.uint8),
        list,
    ],
)
def test_accepts_every_data_type(wrap) -> None:
    rgb = smooth_rgb()
    step, data = rgb_to_image(rgb, 'bgr8')
    np.testing.assert_array_equal(image_to_rgb('bgr8', H, W, step, wrap(data)), rgb)


def test_image_msg_to_rgb_with_array_data() -> None:
    rgb = smooth_rgb()
    step, data = rgb_to_image(rgb, 'bgra8', pad=4)
    msg = SimpleNamespace(encoding='bgra8', height=H, width=W, step=step, data=array.array('B', data), is_bigendian=0)
    np.testing.assert_array_equal(image_msg_to_rgb(msg), rgb)


def test_image_msg_to_rgb_rejects_non_message() -> None:
    with pytest.raises(CodecError, match='not an Image message'):
        image_msg_to_rgb(SimpleNamespace(encoding='rgb8'))


def test_compressed_png_round_trip_is_exact() -> None:
    rgb = smooth_rgb()
    data = encode_compressed(rgb, 'png')
    assert data.startswith(b'\x89PNG')
    np.testing.assert_array_equal(compressed_to_rgb('png', data), rgb)
    out = compressed_to_rgb('bgr8; png compressed bgr8', array.array('B', data))
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize('fmt', ['jpeg', 'jpg', 'rgb8; jpeg compressed bgr8', 'bgr8; jpeg compressed bgr8', ''])
def test_compressed_jpeg_round_trip(fmt: str) -> None:
    rgb = smooth_rgb()
    data = encode_compressed(rgb, 'jpeg', quality=95)
    assert data.startswith(b'\xff\xd8\xff')
    out = compressed_to_rgb(fmt, data)
    assert out.shape == (H, W, 3)
    assert mae(out, rgb) < 4


def test_compressed_stored_as_rgb_is_not_swapped() -> None:
    rgb = np.zeros((16, 16, 3), dtype=np.uint8)
    rgb[:, :, 0] = 255  # pure red
    # A publisher that handed RGB straight to the encoder says 'compressed rgb8'.
    ok, raw = cv2.imencode('.png', rgb)
    out = compressed_to_rgb('rgb8; png compressed rgb8', raw.tobytes())
    np.testing.assert_array_equal(out, rgb)


def test_compressed_msg_to_rgb() -> None:
    rgb = smooth_rgb()
    msg = SimpleNamespace(format='png', data=array.array('B', encode_compressed(rgb, 'png')))
    np.testing.assert_array_equal(compressed_msg_to_rgb(msg), rgb)


def test_grey_jpeg_decodes_to_three_channels() -> None:
    gray = np.tile(np.arange(64, dtype=np.uint8)[None, :] * 4, (8, 1))
    ok, raw = cv2.imencode('.png', gray)
    out = compressed_to_rgb('mono8; png compressed mono8', raw.tobytes())
    assert out.shape == (8, 64, 3)
    np.testing.assert_array_equal(out[:, :, 0], gray)


# ----------------------------------------------------------------------------- errors


def test_error_unsupported_encoding_lists_supported() -> None:
    with pytest.raises(CodecError, match=r"unsupported image encoding '32FC1'.*rgb8.*yuv422"):
        image_to_rgb('32FC1', 2, 2, 16, bytes(32))


@pytest.mark.parametrize(
    ('height', 'width', 'step', 'data'),
    [(0, 4, 12, b''), (4, 0, 0, b''), (2, 2, 6, b'')],
)
def test_error_empty_frame(height: int, width: int, step: int, data: bytes) -> None:
    with pytest.raises(CodecError, match=rf'empty rgb8 frame: height={height} width={width}'):
        image_to_rgb('rgb8', height, width, step, data)


def test_error_short_step() -> None:
    msg = r'step 10 is smaller than width\*bytes_per_pixel = 4\*3 = 12'
    with pytest.raises(CodecError, match=msg):
        image_to_rgb('rgb8', 2, 4, 10, bytes(20))


def test_error_size_mismatch_names_both_numbers() -> None:
    msg = r'len\(data\) = 23 does not match step\*height = 12\*2 = 24'
    with pytest.raises(CodecError, match=msg):
        image_to_rgb('rgb8', 2, 4, 12, bytes(23))


def test_error_odd_width_yuv422() -> None:
    with pytest.raises(CodecError, match='even width.*width=5'):
        image_to_rgb('yuv422', 2, 5, 10, bytes(20))
    with pytest.raises(CodecError, match='even width.*width=5'):
        rgb_to_image(np.zeros((2, 5, 3), np.uint8), 'yuyv')


def test_error_corrupt_jpeg() -> None:
    good = encode_compressed(smooth_rgb(), 'jpeg')
    with pytest.raises(CodecError, match=r'cannot decode 100 bytes as jpeg'):
        compressed_to_rgb('jpeg', b'\x00' * 100)
    with pytest.raises(CodecError, match=r'cannot decode \d+ bytes as jpeg'):
        compressed_to_rgb('jpeg', good[:20])
    with pytest.raises(CodecError, match='empty compressed image'):
        compressed_to_rgb('jpeg', b'')


@pytest.mark.parametrize('fmt', ['tiff', 'rgb8; webp compressed bgr8', '16UC1; compressedDepth png'])
def test_error_unknown_compressed_format(fmt: str) -> None:
    with pytest.raises(CodecError, match='compressed'):
        compressed_to_rgb(fmt, encode_compressed(smooth_rgb(), 'png'))


@pytest.mark.parametrize(
    'data',
    [np.zeros(24, dtype=np.float32), object(), [0, 1, 300]],
)
def test_error_bad_data_types(data) -> None:
    with pytest.raises(CodecError, match='data'):
        image_to_rgb('mono8', 1, 3, 3, data)


def test_error_bad_rgb_input_to_encoders() -> None:
    with pytest.raises(CodecError, match='HxWx3 uint8'):
        rgb_to_image(np.zeros((4, 4), np.uint8), 'rgb8')
    with pytest.raises(CodecError, match='HxWx3 uint8'):
        encode_compressed(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(CodecError, match='quality'):
        encode_compressed(smooth_rgb(), 'jpeg', quality=101)


# -- decoded size from the header, before decoding -------------------------------------------------------------
@pytest.mark.parametrize('fmt', ['png', 'jpeg'])
@pytest.mark.parametrize(('h', 'w'), [(1, 1), (37, 53), (480, 640)])
def test_compressed_image_size_reads_the_header(fmt: str, h: int, w: int) -> None:
    data = encode_compressed(np.zeros((h, w, 3), np.uint8), fmt)
    assert compressed_image_size(data) == (w, h)


def test_compressed_image_size_grey_progressive_and_unknown() -> None:
    grey = cv2.imencode('.jpg', np.zeros((21, 34), np.uint8))[1].tobytes()
    assert compressed_image_size(grey) == (34, 21)
    progressive = cv2.imencode('.jpg', np.zeros((30, 40, 3), np.uint8), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1]
    assert compressed_image_size(progressive.tobytes()) == (40, 30)  # SOF2
    for junk in (b'', b'junk', b'\xff\xd8', b'\xff\xd8\xff\xe0\x00', b'\x89PNG\r\n\x1a\n'):
        assert compressed_image_size(junk) is None, junk


def test_header_announcing_too_many_pixels_is_not_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A small file can announce a huge image (PNG of 16000x12000 zeros is ~190 KB): refused from the header."""
    import anomaly_seg_ros.io.image_codec as codec

    data = encode_compressed(np.zeros((120, 160, 3), np.uint8), 'png')
    monkeypatch.setattr(codec.cv2, 'imdecode', lambda *a: pytest.fail('decoded despite its header'))
    with pytest.raises(CodecError, match=r'png header announces 160x120 = 19200 pixels, more than max_frame_pixels'):
        compressed_to_rgb('png', data, max_pixels=19199)
    monkeypatch.undo()
    assert compressed_to_rgb('png', data, max_pixels=19200).shape == (120, 160, 3)
