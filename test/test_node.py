"""Proof of life of the real node process: every output arrives with the right encoding, size and stamp,
a corrupt frame is dropped and counted, and the node keeps running. Isolated ROS domain per session."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='rclpy not installed (pip install ros-rclpy, see README)')

from anomaly_seg_ros.io.image_codec import encode_compressed  # noqa: E402
from anomaly_seg_ros.ros.harness import OUTPUT_TOPICS, FrameClient, NodeProcess, isolated_ros_env  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PARAMS = REPO / 'config' / 'default.yaml'


@pytest.fixture(scope='module')
def ros_env() -> Iterator[dict[str, str]]:
    env = isolated_ros_env()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _ns() -> str:
    return f'/t{uuid.uuid4().hex[:8]}'


def test_node_outputs_headers_and_survives_corrupt_frame(tiny_model: Path, ros_env: dict[str, str]) -> None:
    ns = _ns()
    params = {'model': str(tiny_model), 'subscribe_compressed': True, 'input_qos': 'reliable'}
    with NodeProcess(PARAMS, ns, ros_env, params) as proc:
        client = FrameClient(ns)
        try:
            assert client.wait_connected(90, compressed=True), proc.log()
            # A frame whose data is shorter than step*height: dropped, counted, node lives on.
            client.publish(1_000_000_001, encoding='rgb8', raw=(48, 64, 64 * 3, b'\x00' * 100))
            assert client.wait_diagnostics('dropped_bad_input', 1, 30), proc.log()
            rng = np.random.default_rng(0)
            frames = {
                2_000_000_000: ('rgb8', (48, 64)),
                2_000_000_001: ('bgr8', (50, 70)),
                2_000_000_002: ('mono16', (48, 64)),
                2_000_000_003: ('yuv422', (40, 80)),
            }
            for stamp, (enc, hw) in frames.items():
                client.publish(stamp, rng.integers(0, 255, (*hw, 3), dtype=np.uint8), enc, frame_id='cam_front')
                assert client.wait_for(stamp, 30), f'no outputs for {enc}\n{proc.log()}'
            jpeg_stamp = 3_000_000_000
            client.publish_compressed(
                jpeg_stamp, encode_compressed(rng.integers(0, 255, (32, 48, 3), np.uint8)), 'jpeg'
            )
            assert client.wait_for(jpeg_stamp, 30), proc.log()
            frames[jpeg_stamp] = ('jpeg', (32, 48))

            for stamp, (_, (h, w)) in frames.items():
                for topic, encoding in OUTPUT_TOPICS.items():
                    msg, _t = client.received.by_topic[topic][stamp]
                    assert msg.encoding == encoding, topic
                    assert (msg.height, msg.width) == (h, w), topic
                    assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == stamp
                    assert msg.header.frame_id == ('camera' if stamp == jpeg_stamp else 'cam_front')
                score_msg = client.received.by_topic['anomaly_score'][stamp][0]
                score = np.frombuffer(bytes(score_msg.data), np.float32).reshape(h, w)
                assert np.isfinite(score).all() and score.min() >= 0 and score.max() <= 1
                seg = np.frombuffer(bytes(client.received.by_topic['segmentation'][stamp][0].data), np.uint8)
                assert seg.max() < 19
            assert client.wait_diagnostics('frames_processed', len(frames), 30)
            assert client.diagnostics['dropped_bad_input'] == '1'
            for stage in ('decode', 'input', 'graph', 'total', 'publish'):
                assert float(client.diagnostics[f'{stage}_ms_p50']) >= 0.0, stage
            assert client.diagnostics['backend'].startswith('onnxruntime cpu fp32')  # backend auto on the CPU
            # camera-to-output age (the stamps are from 1970: huge but finite), windowed counters, DDS losses
            # the test stamps (1 s, 2 s, 3 s after the epoch) are no clock: counted, kept out of the age figures
            assert int(client.diagnostics['implausible_stamps']) >= len(frames)
            assert 'age_ms_p50' not in client.diagnostics
            assert client.diagnostics['non_finite'] == '0' and client.diagnostics['dropped_dds_lost'] == '0'
            assert float(client.diagnostics['rate_hz']) > 0
            assert proc.alive(), proc.log()
        finally:
            client.close()
    assert 'dropped a raw frame' in proc.log() and 'does not match step*height' in proc.log()


def test_params_file_applies_in_a_namespace(tiny_model: Path, ros_env: dict[str, str], tmp_path: Path) -> None:
    """The shipped file's '/**/anomaly_seg' section reaches a namespaced node (a plain key would not)."""
    params = tmp_path / 'p.yaml'
    params.write_text(
        PARAMS.read_text()
        .replace('model: default', f'model: {tiny_model}')
        .replace('scorer: ""', 'scorer: max_softmax')
    )
    ns = _ns()
    with NodeProcess(params, ns, ros_env) as proc:
        client = FrameClient(ns)
        try:
            assert client.wait_connected(90), proc.log()
        finally:
            client.close()
    assert "scorer 'max_softmax'" in proc.log() and str(tiny_model) in proc.log()


def test_node_fails_at_startup_naming_bad_parameter(tiny_model: Path, ros_env: dict[str, str]) -> None:
    bad = [
        sys.executable,
        '-m',
        'anomaly_seg_ros.ros.node',
        '--ros-args',
        '--params-file',
        str(PARAMS),
        '-p',
        f'model:={tiny_model}',
        '-p',
        'input_qos:=fastest',
    ]
    r = subprocess.run(bad, env=ros_env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "parameter 'input_qos'" in r.stderr or "key 'input_qos'" in r.stderr, r.stderr


def test_node_fails_at_startup_naming_missing_model(ros_env: dict[str, str]) -> None:
    bad = [sys.executable, '-m', 'anomaly_seg_ros.ros.node', '--ros-args', '-p', 'model:=/nonexistent/model_x']
    r = subprocess.run(bad, env=ros_env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert '/nonexistent/model_x' in r.stderr, r.stderr


def test_cli_node_rejects_unknown_key_in_params_file(tmp_path: Path, ros_env: dict[str, str]) -> None:
    p = tmp_path / 'p.yaml'
    p.write_text('anomaly_seg:\n  ros__parameters:\n    scorrer: entropy\n')
    r = subprocess.run(
        [sys.executable, '-m', 'anomaly_seg_ros.cli', 'node', '--params', str(p)],
        env=ros_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "unknown key 'scorrer'" in r.stderr, r.stderr


def test_node_runs_an_imported_onnx_model(tmp_path: Path, ros_env: dict[str, str]) -> None:
    """A network from outside (ONNX, 19 classes + void) served by the node through onnxruntime."""
    pytest.importorskip('onnxruntime')
    import torch

    from anomaly_seg_ros.backends.export import export_onnx
    from anomaly_seg_ros.importer import ImportOptions, import_model
    from anomaly_seg_ros.nets import build_net

    torch.manual_seed(1)
    onnx_path = export_onnx(build_net('icnet_small', 20, width=8), 128, 256, tmp_path / 'ext.onnx')
    model = import_model(onnx_path, 'onnx', ImportOptions(name='ext', void_channel=True), tmp_path / 'models')
    ns = _ns()
    params = {'model': str(model), 'backend': 'onnxruntime', 'scorer': 'void'}
    with NodeProcess(PARAMS, ns, ros_env, params) as proc:
        client = FrameClient(ns)
        try:
            assert client.wait_connected(90), proc.log()
            assert client.handshake(60), proc.log()
            client.publish(5_000_000_000, np.full((60, 90, 3), 120, np.uint8), 'rgb8')
            assert client.wait_for(5_000_000_000, 30), proc.log()
            score = client.received.by_topic['anomaly_score'][5_000_000_000][0]
            assert (score.height, score.width, score.encoding) == (60, 90, '32FC1')
        finally:
            client.close()
    assert "scorer 'void', backend onnxruntime" in proc.log()


def test_best_effort_large_frames_arrive(tiny_model: Path, ros_env: dict[str, str]) -> None:
    """Default sensor-data QoS with 1024x512 frames: with Fast DDS's default transports these never
    arrived over loopback here; the shipped profile (set by isolated_ros_env) must make them arrive."""
    assert ros_env['FASTDDS_DEFAULT_PROFILES_FILE'].endswith('fastdds_large_images.xml')
    ns = _ns()
    with NodeProcess(PARAMS, ns, ros_env, {'model': str(tiny_model)}) as proc:
        client = FrameClient(ns)
        try:
            assert client.wait_connected(90) and client.handshake(60), proc.log()
            for i in range(3):
                client.publish(7_000_000_000 + i, np.full((512, 1024, 3), 90 + i, np.uint8), 'rgb8')
                assert client.wait_for(7_000_000_000 + i, 30), f'frame {i} lost\n{proc.log()}'
        finally:
            client.close()
