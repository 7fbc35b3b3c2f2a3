"""Every scorer a model folder has fitted is selectable in the node by its `scorer` parameter.

A copy of the tiny model is fitted for sml and flow with `anomaly-seg fit ... --images DIR` (a folder of
plain image files, not the synthetic world). For each scorer the real AnomalySegNode is built in this
process around the real Pipeline (no fake); a camera-size frame goes through its subscription callback and
its worker thread, and what it publishes on ~/segmentation and ~/anomaly_score must be exactly what
Pipeline.from_model(model, scorer) computes for that frame on the same backend.
"""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='rclpy not installed (pip install ros-rclpy, see README)')

from rclpy.context import Context  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from anomaly_seg_ros.cli import main  # noqa: E402
from anomaly_seg_ros.io.image_codec import rgb_to_image  # noqa: E402
from anomaly_seg_ros.pipeline import Pipeline  # noqa: E402
from anomaly_seg_ros.ros import node as node_mod  # noqa: E402

CAMERA = (128, 256)  # HxW: twice the tiny model's 64x128 input, so the graph's resize is in the loop
TAP = 'head_bn=head.0.1'  # the BatchNorm before the head's ReLU of the tiny net
FLOW_OPTS = (
    '--steps', '30', '--batch', '256', '--pixels-per-frame', '256', '--coupling-layers', '2', '--hidden', '16',
    '--threads', '1', '--checkpoint-every', '0',
)  # fmt: skip


def _frame(hw: tuple[int, int], seed: int) -> np.ndarray:
    """Spatially smooth colour noise (pure noise makes every pixel a near-tie between classes)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (hw[0] // 8 + 1, hw[1] // 8 + 1, 3), dtype=np.uint8)
    return cv2.resize(small, (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)


@pytest.fixture(scope='module')
def model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp('node_scorers')
    out = root / 'tiny_fitted'
    shutil.copytree(tiny_model, out)
    images = root / 'frames'
    images.mkdir()
    for i in range(4):
        cv2.imwrite(str(images / f'{i:02d}.png'), cv2.cvtColor(_frame(CAMERA, i), cv2.COLOR_RGB2BGR))
    assert main(['fit', 'sml', '--model', str(out), '--images', str(images)]) == 0
    assert main(['fit', 'flow', '--model', str(out), '--images', str(images), '--tap', TAP, *FLOW_OPTS]) == 0
    return out


class _Recorder:
    """Stands in for a publisher: keeps what is published."""

    def __init__(self) -> None:
        self.msgs: list[Any] = []

    def publish(self, msg: Any) -> None:
        self.msgs.append(msg)

    def get_subscription_count(self) -> int:
        return 0


def _image(rgb: np.ndarray) -> Image:
    msg = Image()
    ns = time.time_ns()
    msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id = ns // 10**9, ns % 10**9, 'cam'
    msg.height, msg.width, msg.encoding = rgb.shape[0], rgb.shape[1], 'rgb8'
    msg.step, msg.data = rgb_to_image(rgb, 'rgb8')
    return msg


def _array(msg: Image, dtype: type) -> np.ndarray:
    assert msg.is_bigendian == 0
    return np.frombuffer(bytes(msg.data), dtype).reshape(msg.height, msg.width)


@pytest.mark.parametrize(
    ('scorer', 'backend'), [('entropy', 'torch'), ('sml', 'torch'), ('flow', 'torch'), ('flow', 'onnxruntime')]
)
def test_the_node_runs_each_fitted_scorer(model: Path, ros_context: Context, scorer: str, backend: str) -> None:
    if backend == 'onnxruntime':
        pytest.importorskip('onnxruntime')
    params = {
        'model': str(model),
        'scorer': scorer,
        'backend': backend,
        'publish_color': False,
        'publish_heatmap': False,
        'tune_malloc': False,
    }
    node = node_mod.AnomalySegNode(
        context=ros_context,
        namespace=f'/s{uuid.uuid4().hex[:8]}',
        parameter_overrides=[Parameter(k, value=v) for k, v in params.items()],
    )
    try:
        assert node.pipeline.scorer.name == scorer and node.pipeline.backend.name == backend
        seg, score = _Recorder(), _Recorder()
        node.pubs.update({'segmentation': seg, 'anomaly_score': score})  # the worker is idle until a frame is parked
        frame = _frame(CAMERA, seed=99)  # not one of the fit's frames
        msg = _image(frame)
        node._park('raw', msg)  # what the subscription callback does; the node's own worker processes it
        deadline = time.monotonic() + 30.0
        while not score.msgs and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(seg.msgs) == 1 and len(score.msgs) == 1, f'{scorer}: nothing published ({node.diagnostics()})'
        s, lab = score.msgs[0], seg.msgs[0]
        assert s.encoding == '32FC1' and lab.encoding == 'mono8'
        assert s.header.stamp == msg.header.stamp and s.header.frame_id == 'cam'
        want = Pipeline.from_model(model, scorer=scorer, backend=backend)(frame)
        got_score, got_labels = _array(s, np.float32), _array(lab, np.uint8)
        assert got_score.shape == CAMERA and np.isfinite(got_score).all() and float(got_score.std()) > 0
        np.testing.assert_array_equal(got_labels, want.labels)
        np.testing.assert_allclose(got_score, want.score, rtol=0, atol=1e-6)
    finally:
        node.destroy_node()


def test_the_scorers_give_different_maps(model: Path) -> None:
    """The parameter really switches the scorer: the three maps of one frame differ."""
    frame = _frame(CAMERA, seed=99)
    maps = {s: Pipeline.from_model(model, scorer=s, backend='torch')(frame).score for s in ('entropy', 'sml', 'flow')}
    for a, b in (('entropy', 'sml'), ('entropy', 'flow'), ('sml', 'flow')):
        assert not np.allclose(maps[a], maps[b], atol=1e-3), f'{a} and {b} give the same map'
