"""Pinned frames of the synthetic world: sha256 of image, labels and anomaly bytes for fixed seeds and configs.

The hashes below are the pinned reference, computed from the single-file renderer
(``anomaly_seg_ros/data/synthetic.py`` at commit 0e5abf6) before it was split into the
``anomaly_seg_ros.data.synthetic`` package. A refactor of the renderer must keep every draw from the random
streams in the same order, so these frames stay byte-identical. A deliberate change of the world's look
updates them, and says so in its commit. They were computed with numpy 2.4.6 and opencv-python-headless
5.0.0.93; another OpenCV build may rasterise or blur differently. OpenCV 4.11.0 (requirements-jazzy.txt: the
newest opencv-python-headless that accepts numpy 1.x) draws a few of them differently and has its own pins below.
"""

from __future__ import annotations

import hashlib
from typing import Any

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.data.synthetic import ANOMALY_FAMILIES, WorldConfig, generate


def small(**changes: Any) -> WorldConfig:
    """A 256x128 config where every frame holds obstacles."""
    return WorldConfig(height=128, width=256, anomaly_prob=1.0, **changes)


# (seed, config, (image, labels, anomaly) sha256)
FRAMES: list[tuple[int, WorldConfig, tuple[str, str, str]]] = [
    (  # 1024x512 default config: random weather (dusk), 3 obstacles, 3 void objects, ego bonnet
        5,
        WorldConfig(),
        (
            'd5eb004630ab2454fb7945f2b34b86707d6fcc74076bf016875973bc750f9909',
            'cda10c23519f0a60501814e8678846cfeabc8d17d6ea8186bff6851b1f7a48fb',
            '0c758b79ca91be0a88f6b86963210b9d8aaf7f8ed7e27b021bacc5d7b334049c',
        ),
    ),
    (  # night: lamps, glows, light pools; obstacles, void objects, bonnet and an ignore band
        5,
        small(weather='night', ignore_band=2),
        (
            '387a211802c0cd9991e5c6dda8f9982250af54a21963f62122359694c1cebcea',
            '9d088aef65df1e87863b74978b2215f0279b84eaa24cc3ae50240beb51bf1b24',
            '2c47e4ac7bf2bb6c6c899a9ee42c3984ef84d18c2185f97ec86b738099a95d9f',
        ),
    ),
    (  # fog with the proxy obstacle family and a void object
        8,
        small(max_anomalies=3, weather='fog', anomaly_family='proxy'),
        (
            'dcd2a5832387e5c720d340d7694b67ec7652b3f46da035fba2d4bd169468b053',
            '1649165d7be92b4d40e2c264852fae6486020b40c558ad9a80bb3656ec442061',
            '8e756f03c631aeef6a32bc1036c5863a95521b57578f371efab560e6283135f5',
        ),
    ),
    (  # rain: streaks, wet road, haze
        13,
        small(weather='rain'),
        (
            '8b0817318c74ffce489e786cee46e9d865f053248f2da30da986fb617337466d',
            '79a272b21435dee7cea99b14e87170ff3c537bb591210da52ae264f810999fa7',
            'd61253ee0da7267e1f10ab539683335ef27eccdc3faaec7b9c1edb879ab148cb',
        ),
    ),
    (  # clear: sun shadows; void objects and bonnet
        21,
        small(weather='clear'),
        (
            '1141b9e040bf03db7daf02144ba60d69321d46b581d649b2d86af9c55ed94c08',
            'd9e5c4fa49aed8a366f9c16ec85c496a8b26b659464627e7be9b6d9aa0ee3029',
            'e9c0479557d3c5c63fc719bd9049ab2735a8028f64bb1167190e68df6aa5b57e',
        ),
    ),
    (  # dusk without void objects
        34,
        small(weather='dusk', void_objects=False),
        (
            '38094311e92ded34a5f9d3452c8a8a5b04265c7c3d40b1effa8a440e4e5e86bf',
            'eaeacbca266d721f374b3adec3fe0d5c6f0d0fa4e24b1bde274ced8d9c4ecc0d',
            '3d57936d65f5b5bef4950d7d461eac02c19fcf66f99fd4ae983c91ea3e44cc19',
        ),
    ),
]

# One digest over 24 tiny frames per obstacle family: together they draw every obstacle shape of both families.
FAMILY_DIGESTS: dict[str, str] = {
    'test': '6f0559ede4b5e008f83e28bda0d90dc7d207596683e03791bc43e3ba52e996d9',
    'proxy': 'ef4ef065edb7147002e787ebed538b5b4e1bc5a0f137c1e1e89292fd712ec133',
}

# OpenCV 4.11.0 (the Jazzy / numpy 1.x environment, test/jazzy_check.sh) rasterises the 1024x512 frame and some
# obstacle shapes differently from 5.0; the same digests with numpy 1.26.4 and 2.4.6. The rest match 5.0's pins.
_OPENCV_4_11 = cv2.__version__.startswith('4.11.')
FRAMES_OPENCV_4_11: dict[str, tuple[str, str, str]] = {
    'random-5': (
        '2ff2bab47e6343401ff8cdb0d3ea2248b26329f0914ee850df9a73a31dc6e6eb',
        'ed8e3a65aee967cfc99f6e9a6c9d7f61ae1f468f1ff1fbb602872844cd7a174a',
        '0c758b79ca91be0a88f6b86963210b9d8aaf7f8ed7e27b021bacc5d7b334049c',
    ),
}
FAMILY_DIGESTS_OPENCV_4_11: dict[str, str] = {
    'test': 'b682f65f24b88f4eb217a1ea39c6a3facfacac7c5cf69eeea8502b9a2219df27',
    'proxy': 'd929bfeae575468d5c55164d2bd362a22a014fb36e7ef494b5cc53021caa86d1',
}


def _sha(array: np.ndarray | None) -> str:
    if array is None:
        raise AssertionError('the synthetic world returned no array')
    return hashlib.sha256(array.tobytes()).hexdigest()


@pytest.mark.parametrize(('seed', 'config', 'expected'), FRAMES, ids=[f'{c.weather}-{s}' for s, c, _ in FRAMES])
def test_frame_bytes_are_pinned(seed: int, config: WorldConfig, expected: tuple[str, str, str]) -> None:
    if _OPENCV_4_11:
        expected = FRAMES_OPENCV_4_11.get(f'{config.weather}-{seed}', expected)
    sample = generate(seed, config)
    got = (_sha(sample.image), _sha(sample.labels), _sha(sample.anomaly))
    assert got[0] == expected[0], 'image bytes changed'
    assert got[1] == expected[1], 'label bytes changed'
    assert got[2] == expected[2], 'anomaly bytes changed'


@pytest.mark.parametrize('family', ANOMALY_FAMILIES)
def test_every_obstacle_shape_is_pinned(family: str) -> None:
    config = WorldConfig(height=64, width=128, anomaly_prob=1.0, max_anomalies=3, anomaly_family=family, ignore_band=1)
    digest = hashlib.sha256()
    for seed in range(24):
        sample = generate(seed, config)
        for array in (sample.image, sample.labels, sample.anomaly):
            assert array is not None
            digest.update(array.tobytes())
    pins = FAMILY_DIGESTS_OPENCV_4_11 if _OPENCV_4_11 else FAMILY_DIGESTS
    assert digest.hexdigest() == pins[family]
