"""The node must never be silently blind: broken models fail at start-up, non-finite frames are withheld and
reported as ERROR, diagnostics describe a time window, oversized frames are refused from their header,
parameters mean what they say, and SIGTERM ends cleanly.

Most tests build the real AnomalySegNode in this process around a fake Pipeline (fast and deterministic, with
a fake diagnostics clock); the start-up and signal tests run the node as a process, as a vehicle would."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

rclpy = pytest.importorskip('rclpy', reason='rclpy not installed (pip install ros-rclpy, see README)')

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from anomaly_seg_ros.errors import ConfigError, NonFiniteOutputError  # noqa: E402
from anomaly_seg_ros.io.image_codec import encode_compressed, rgb_to_image  # noqa: E402
from anomaly_seg_ros.pipeline import Result  # noqa: E402
from anomaly_seg_ros.ros import node as node_mod  # noqa: E402
from anomaly_seg_ros.ros import outputs as outputs_mod  # noqa: E402
from anomaly_seg_ros.ros.harness import FrameClient, NodeProcess, isolated_ros_env  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PARAMS = REPO / 'config' / 'default.yaml'


# -- in-process node around a fake pipeline -------------------------------------------------------------------
class FakePipeline:
    """Scores NaN for frames brighter than 200, raises for frames between 100 and 200, else a normal result."""

    def __init__(self, warmup_error: Exception | None = None) -> None:
        self.model = SimpleNamespace(name='fake', directory=Path('/fake'), input=SimpleNamespace(width=8, height=8))
        self.scorer = SimpleNamespace(name='entropy')
        self.backend = SimpleNamespace(name='fake', device='cpu', precision='fp32')
        self.warmup_error = warmup_error

    def warmup(self) -> None:
        if self.warmup_error is not None:
            raise self.warmup_error

    def __call__(self, rgb: np.ndarray) -> Result:
        level = float(rgb.mean())
        if level > 200:
            raise NonFiniteOutputError(f"model 'fake': {rgb.shape[0] * rgb.shape[1]} scores are NaN or inf")
        if level > 100:
            raise RuntimeError('kernel exploded')
        h, w = rgb.shape[:2]
        timings = {'input': 0.1, 'graph': 0.2, 'total': 0.3}
        return Result(np.zeros((h, w), np.uint8), np.zeros((h, w), np.float32), (0.0, 1.0), {}, timings)


class Recorder:
    """Stands in for a publisher: records what is published, reports `subs` subscribers."""

    def __init__(self, subs: int = 1) -> None:
        self.subs = subs
        self.msgs: list[Any] = []

    def publish(self, msg: Any) -> None:
        self.msgs.append(msg)

    def get_subscription_count(self) -> int:
        return self.subs


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _make_node(
    ctx: Context, monkeypatch: pytest.MonkeyPatch, pipeline: FakePipeline | None = None, **params: Any
) -> node_mod.AnomalySegNode:
    fake = pipeline or FakePipeline()
    monkeypatch.setattr(node_mod.Pipeline, 'from_model', lambda *a, **k: fake)
    overrides = [Parameter(k, value=v) for k, v in {'model': '/fake', **params}.items()]
    return node_mod.AnomalySegNode(context=ctx, namespace=f'/u{uuid.uuid4().hex[:8]}', parameter_overrides=overrides)


@pytest.fixture()
def made(ros_context: Context, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[node_mod.AnomalySegNode]]:
    nodes: list[node_mod.AnomalySegNode] = []
    yield nodes
    for n in nodes:
        n.destroy_node()


def _wire(node: node_mod.AnomalySegNode) -> tuple[Clock, dict[str, Recorder]]:
    """Fake clock for the diagnostics, recorders for the publishers."""
    with node._cond:  # the test plays the worker: stop the real one
        node._stop = True
        node._cond.notify()
    node._worker.join(5.0)
    clock = Clock()
    node._now = clock
    node.stats.started = clock.t
    pubs = {'seg': Recorder(), 'score': Recorder(), 'color': Recorder(), 'heat': Recorder()}
    node.pubs = {
        'segmentation': pubs['seg'],
        'anomaly_score': pubs['score'],
        'segmentation/color': pubs['color'],
        'anomaly_heatmap': pubs['heat'],
    }
    return clock, pubs


def _raw(level: int, h: int = 8, w: int = 10, stamp_ns: int | None = None) -> Image:
    """A frame stamped 20 ms ago on the wall clock (the node's ROS clock), unless `stamp_ns` is given."""
    msg = Image()
    ns = time.time_ns() - 20_000_000 if stamp_ns is None else stamp_ns
    msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id = ns // 10**9, ns % 10**9, 'cam'
    msg.height, msg.width, msg.encoding = h, w, 'rgb8'
    msg.step, msg.data = rgb_to_image(np.full((h, w, 3), level, np.uint8), 'rgb8')
    return msg


def _feed(node: node_mod.AnomalySegNode, kind: str, msg: Any) -> None:
    """What the subscription callback and the worker do, synchronously."""
    node._park(kind, msg)
    with node._cond:
        item, node._slot = node._slot, None
    assert item is not None
    node._process(*item)


def _diag(node: node_mod.AnomalySegNode) -> tuple[int, str, dict[str, str]]:
    st = node.diagnostics()
    return st.level[0] if isinstance(st.level, bytes) else st.level, st.message, {kv.key: kv.value for kv in st.values}


def _lvl(level: Any) -> int:
    return level[0] if isinstance(level, bytes) else int(level)


def test_non_finite_frame_counted_withheld_and_error(
    ros_context: Context, monkeypatch: pytest.MonkeyPatch, made: list
) -> None:
    node = _make_node(ros_context, monkeypatch, diagnostics_window_s=5.0, stale_after_s=3.0)
    made.append(node)
    clock, pubs = _wire(node)
    _feed(node, 'raw', _raw(10))
    assert len(pubs['seg'].msgs) == 1 and _diag(node)[0] == _lvl(DiagnosticStatus.OK)
    clock.t += 0.5
    _feed(node, 'raw', _raw(250))  # NaN scores
    assert len(pubs['seg'].msgs) == 1 and len(pubs['score'].msgs) == 1, 'a non-finite frame must not be published'
    level, message, values = _diag(node)
    assert level == _lvl(DiagnosticStatus.ERROR), message
    assert values['non_finite'] == '1' and values['non_finite_window'] == '1' and values['failed'] == '0'
    assert 'NaN' in message
    clock.t += 0.5
    _feed(node, 'raw', _raw(150))  # the pipeline raises: also ERROR, counted as failed
    level, message, values = _diag(node)
    assert level == _lvl(DiagnosticStatus.ERROR) and values['failed'] == '1' and 'kernel exploded' in message
    _feed(node, 'raw', _raw(10))
    assert _diag(node)[0] == _lvl(DiagnosticStatus.ERROR), 'still ERROR within the window'
    clock.t += 5.1
    _feed(node, 'raw', _raw(10))
    level, message, values = _diag(node)
    assert level == _lvl(DiagnosticStatus.OK), message
    assert values['non_finite'] == '1' and values['non_finite_window'] == '0'


def test_diagnostics_window_rate_decays_warn_expires_then_stale(
    ros_context: Context, monkeypatch: pytest.MonkeyPatch, made: list
) -> None:
    node = _make_node(ros_context, monkeypatch, diagnostics_window_s=2.0, stale_after_s=3.0)
    made.append(node)
    clock, pubs = _wire(node)
    for _ in range(20):  # 10 Hz for 2 s
        clock.t += 0.1
        _feed(node, 'raw', _raw(10))
    level, message, values = _diag(node)
    assert level == _lvl(DiagnosticStatus.OK), message
    assert float(values['rate_hz']) == pytest.approx(10.0, rel=0.1)
    for key in ('age_ms_p50', 'age_ms_p95', 'age_ms_max'):
        assert 20 <= float(values[key]) < 60_000, key  # stamped 20 ms before it was fed
    assert values['implausible_stamps'] == '0'
    _feed(node, 'raw', _raw(10, stamp_ns=5 * 10**9))  # a camera stamping 5 s after the epoch: not an age
    assert _diag(node)[2]['implausible_stamps'] == '1'
    bad = _raw(10)
    bad.data = bytes(bad.data)[:-3]
    _feed(node, 'raw', bad)
    level, message, values = _diag(node)
    assert level == _lvl(DiagnosticStatus.WARN) and 'does not match step*height' in message, message
    clock.t += 2.5  # the bad frame left the window; input stopped 2.5 s ago
    level, message, values = _diag(node)
    assert level == _lvl(DiagnosticStatus.OK), message
    assert values['dropped_bad_input'] == '1' and values['dropped_bad_input_window'] == '0'
    assert float(values['rate_hz']) == 0.0 and 'age_ms_p50' not in values
    clock.t += 1.0
    level, message, values = _diag(node)
    assert level == _lvl(DiagnosticStatus.STALE) and 'no frame for 3.5 s' in message, message


def test_stale_before_any_frame(ros_context: Context, monkeypatch: pytest.MonkeyPatch, made: list) -> None:
    node = _make_node(ros_context, monkeypatch, stale_after_s=1.0)
    made.append(node)
    clock, _ = _wire(node)
    assert _diag(node)[0] == _lvl(DiagnosticStatus.OK)
    clock.t += 1.5
    level, message, _ = _diag(node)
    assert level == _lvl(DiagnosticStatus.STALE) and 'since start-up' in message


def test_oversized_frames_dropped_from_the_header(
    ros_context: Context, monkeypatch: pytest.MonkeyPatch, made: list
) -> None:
    node = _make_node(ros_context, monkeypatch, max_frame_pixels=5000)
    made.append(node)
    _, pubs = _wire(node)
    # the header says 100x100 while the data is tiny: refused before any look at the data
    big = Image(height=100, width=100, encoding='rgb8', step=300, data=b'\x00' * 10)
    _feed(node, 'raw', big)
    assert node.stats.bad_input == 1 and 'max_frame_pixels = 5000' in node.stats.last_bad
    calls: list[int] = []
    real = node_mod.compressed_msg_to_rgb.__globals__['cv2'].imdecode
    monkeypatch.setattr(
        node_mod.compressed_msg_to_rgb.__globals__['cv2'], 'imdecode', lambda *a: calls.append(1) or real(*a)
    )
    for fmt in ('png', 'jpeg'):
        msg = CompressedImage(format=fmt, data=encode_compressed(np.zeros((100, 80, 3), np.uint8), fmt))
        _feed(node, 'compressed', msg)
        assert f'{fmt} header announces 80x100 = 8000 pixels' in node.stats.last_bad
    assert node.stats.bad_input == 3 and not calls, 'oversized images must not reach the decoder'
    _feed(node, 'compressed', CompressedImage(format='png', data=encode_compressed(np.zeros((50, 60, 3), np.uint8))))
    assert calls and len(pubs['seg'].msgs) == 1
    assert _diag(node)[0] == _lvl(DiagnosticStatus.WARN)


def test_visualisations_rendered_only_for_subscribers_and_live_switches(
    ros_context: Context, monkeypatch: pytest.MonkeyPatch, made: list
) -> None:
    node = _make_node(ros_context, monkeypatch)
    made.append(node)
    _, pubs = _wire(node)
    pubs['color'].subs = pubs['heat'].subs = 0
    rendered: list[int] = []
    monkeypatch.setattr(outputs_mod, 'heatmap_overlay', lambda *a: rendered.append(1) or np.zeros((8, 10, 3), np.uint8))
    _feed(node, 'raw', _raw(10))
    assert len(pubs['seg'].msgs) == 1 and not pubs['color'].msgs and not pubs['heat'].msgs and not rendered
    pubs['color'].subs = pubs['heat'].subs = 1
    _feed(node, 'raw', _raw(10))
    assert len(pubs['color'].msgs) == 1 and len(pubs['heat'].msgs) == 1 and rendered
    results = node.set_parameters([Parameter('publish_heatmap', value=False), Parameter('heatmap_alpha', value=0.25)])
    assert all(r.successful for r in results), results
    assert node.cfg.heatmap_alpha == 0.25 and not node.cfg.publish_heatmap
    _feed(node, 'raw', _raw(10))
    assert len(pubs['color'].msgs) == 2 and len(pubs['heat'].msgs) == 1


def test_parameter_set_refusals_give_a_reason(
    ros_context: Context, monkeypatch: pytest.MonkeyPatch, made: list
) -> None:
    node = _make_node(ros_context, monkeypatch)
    made.append(node)
    (r,) = node.set_parameters([Parameter('model', value='other')])
    assert not r.successful and 'read-only' in r.reason and node.cfg.model == '/fake'
    (r,) = node.set_parameters([Parameter('heatmap_alpha', value=1.5)])
    assert not r.successful and node.cfg.heatmap_alpha == 0.6
    (r,) = node.set_parameters([Parameter('max_frame_pixels', value=1000)])
    assert r.successful and node.cfg.max_frame_pixels == 1000
    descriptors = node.describe_parameters(['heatmap_alpha', 'diagnostics_period', 'backend'])
    assert descriptors[0].floating_point_range[0].to_value == 1.0 and not descriptors[0].read_only
    assert descriptors[1].floating_point_range[0].from_value == 0.05 and descriptors[1].read_only
    assert descriptors[2].read_only


def test_int_override_for_float_parameter(ros_context: Context, monkeypatch: pytest.MonkeyPatch, made: list) -> None:
    node = _make_node(ros_context, monkeypatch, heatmap_alpha=1, diagnostics_period=2)
    made.append(node)
    assert node.cfg.heatmap_alpha == 1.0 and node.cfg.diagnostics_period == 2.0
    if not hasattr(node, 'add_pre_set_parameters_callback'):
        pytest.skip('this rclpy (Humble) has no pre-set parameter callback: `ros2 param set` needs 0.0, not 0')
    # `ros2 param set /node heatmap_alpha 0` at run time: an integer for a decimal parameter means the same
    (r,) = node.set_parameters([Parameter('heatmap_alpha', value=0)])
    assert r.successful, r.reason
    assert node.cfg.heatmap_alpha == 0.0 and isinstance(node.cfg.heatmap_alpha, float)
    assert node.get_parameter('heatmap_alpha').type_ == Parameter.Type.DOUBLE
    (r,) = node.set_parameters([Parameter('heatmap_alpha', value=3)])  # still range-checked
    assert not r.successful and node.cfg.heatmap_alpha == 0.0
    (r,) = node.set_parameters([Parameter('max_frame_pixels', value=2.5)])  # no float for an int parameter
    assert not r.successful and node.cfg.max_frame_pixels != 2


@pytest.mark.parametrize(
    ('params', 'pattern'),
    [
        ({'modle': 'x'}, "unknown parameter 'modle'"),
        ({'heatmap.alpha': 0.5}, "unknown parameter 'heatmap.alpha'"),
        ({'device': 'banana'}, "'device': 'banana' is not cpu, cuda or cuda:N"),
        ({'diagnostics_period': 1e-6}, "parameter 'diagnostics_period'"),
        ({'output_qos': 'fastest'}, "'output_qos': 'fastest' is not one of"),
    ],
)
def test_bad_parameters_fail_at_startup(
    ros_context: Context, monkeypatch: pytest.MonkeyPatch, params: dict, pattern: str
) -> None:
    with pytest.raises(ConfigError, match=pattern):
        _make_node(ros_context, monkeypatch, **params)


def test_warmup_failure_names_the_model(ros_context: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakePipeline(NonFiniteOutputError("model 'fake': 8 of 8 scores are NaN or inf"))
    with pytest.raises(ConfigError, match=r"model '/fake': warm-up failed.*NonFiniteOutputError.*NaN"):
        _make_node(ros_context, monkeypatch, fake)


# -- the node as a process -------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def env() -> Iterator[dict[str, str]]:
    """The node's environment, also set in this process for the FrameClient (restored afterwards)."""
    env = isolated_ros_env()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope='module')
def nan_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp('nan') / 'nan_model'
    out.mkdir()
    for f in tiny_model.iterdir():
        (out / f.name).write_bytes(f.read_bytes())
    state = torch.load(out / 'model.pt', weights_only=True)
    state['head.1.weight'][0] = float('nan')
    torch.save(state, out / 'model.pt')
    return out


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def _one_line(stderr: str) -> str:
    # ROS log records (the node's start-up INFO, rmw WARNs about the environment) are not the failure report
    lines = [ln for ln in stderr.splitlines() if ln.strip() and not re.match(r'\[(DEBUG|INFO|WARN)\] \[', ln)]
    assert len(lines) == 1 and 'Traceback' not in stderr and 'AttributeError' not in stderr, stderr
    return lines[0]


def test_nan_model_exits_2_naming_the_model(nan_model: Path, env: dict[str, str]) -> None:
    r = _run(
        [sys.executable, '-m', 'anomaly_seg_ros.cli', 'node', '--params', str(PARAMS)]
        + ['--ros-args', '-p', f'model:={nan_model}', '-p', 'backend:=torch'],
        env,
    )
    assert r.returncode == 2, r.stderr
    line = _one_line(r.stderr)
    assert str(nan_model) in line and 'NaN' in line and 'warm-up failed' in line, line


def test_any_startup_exception_exits_2_in_one_line(env: dict[str, str]) -> None:
    code = (
        'import sys; import anomaly_seg_ros.ros.node as n\n'
        'def boom(*a, **k): raise ZeroDivisionError("width 0")\n'
        'n.Pipeline.from_model = boom\n'
        'sys.exit(n.main(["anomaly_seg", "--ros-args", "-p", "model:=x"]))\n'
    )
    r = _run([sys.executable, '-c', code], env)
    assert r.returncode == 2, r.stderr
    assert 'start-up failed: ZeroDivisionError: width 0' in _one_line(r.stderr)


@pytest.mark.parametrize(
    ('override', 'pattern'),
    [
        ('modle:=x', "unknown parameter 'modle'"),
        ('model:=', "cannot parse '-p model:='"),
        ("model:=''", "key 'model': must not be empty"),
    ],
)
def test_bad_overrides_exit_2_in_one_line(override: str, pattern: str, env: dict[str, str]) -> None:
    r = _run([sys.executable, '-m', 'anomaly_seg_ros.ros.node', '--ros-args', '-p', override], env)
    assert r.returncode == 2, r.stderr
    assert pattern in _one_line(r.stderr)


def test_sigterm_while_publishing_exits_0(tiny_model: Path, env: dict[str, str]) -> None:
    ns = f'/t{uuid.uuid4().hex[:8]}'
    params = {'model': str(tiny_model), 'diagnostics_period': 0.05, 'input_qos': 'reliable'}
    with NodeProcess(PARAMS, ns, env, params) as proc:
        client = FrameClient(ns)
        try:
            assert client.wait_connected(90) and client.handshake(60), proc.log()
            assert client.wait_diagnostics('frames_processed', 1, 30), proc.log()
            for i in range(5):
                client.publish(9_000_000_000 + i, np.full((64, 128, 3), 50 + i, np.uint8), 'rgb8')
            assert client.wait_for(9_000_000_004, 30), proc.log()
            for i in range(5, 10):  # frames in flight as the signal lands
                client.publish(9_000_000_000 + i, np.full((64, 128, 3), 50 + i, np.uint8), 'rgb8')
            assert proc.proc is not None
            proc.proc.send_signal(signal.SIGTERM)
            rc = proc.proc.wait(timeout=30)
        finally:
            client.close()
    assert rc == 0, proc.log()
    assert 'Traceback' not in proc.log(), proc.log()


def test_malloc_tuning_applied_by_default_and_reported(
    ros_context: Context, monkeypatch: pytest.MonkeyPatch, made: list
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(node_mod, 'tune_malloc_for_frames', lambda: calls.append(1) or '')
    node = _make_node(ros_context, monkeypatch)
    made.append(node)
    assert calls and _diag(node)[2]['malloc_tuning'] == 'on'
    monkeypatch.setattr(node_mod, 'tune_malloc_for_frames', lambda: calls.append(1) or 'not tuned: no glibc mallopt')
    node = _make_node(ros_context, monkeypatch)
    made.append(node)
    assert _diag(node)[2]['malloc_tuning'] == 'not tuned: no glibc mallopt'  # said, and the node still runs
    calls.clear()
    node = _make_node(ros_context, monkeypatch, tune_malloc=False)
    made.append(node)
    assert _diag(node)[2]['malloc_tuning'].startswith('off') and not calls


def test_outputs_come_from_one_table(ros_context: Context, monkeypatch: pytest.MonkeyPatch, made: list) -> None:
    """A new output is one entry in ros/outputs.py: the node creates its publisher (when its switch is on),
    renders it per frame (only for a subscriber when on demand), and the harness lists it."""
    from anomaly_seg_ros.ros.harness import OUTPUT_TOPICS

    assert list(OUTPUT_TOPICS) == [o.name for o in outputs_mod.OUTPUTS if o.msg_type is Image]
    rendered: list[float] = []

    def render(f: outputs_mod.OutputFrame) -> Image:
        rendered.append(float(f.result.score.mean()))
        return outputs_mod.image_msg(f.header, f.result.labels, 'mono8')

    extra = outputs_mod.Output('extra', Image, 'mono8', render, switch='publish_heatmap', on_demand=True)
    monkeypatch.setattr(node_mod, 'OUTPUTS', (*outputs_mod.OUTPUTS, extra))
    node = _make_node(ros_context, monkeypatch)
    made.append(node)
    assert node.pubs['extra'].topic_name.endswith('/anomaly_seg/extra')
    _, pubs = _wire(node)
    pubs['extra'] = node.pubs['extra'] = Recorder()
    pubs['extra'].subs = 0
    _feed(node, 'raw', _raw(10))
    assert not pubs['extra'].msgs and not rendered  # on demand: nobody listens
    pubs['extra'].subs = 1
    _feed(node, 'raw', _raw(10))
    assert len(pubs['extra'].msgs) == 1 and len(rendered) == 1
    (r,) = node.set_parameters([Parameter('publish_heatmap', value=False)])
    assert r.successful
    _feed(node, 'raw', _raw(10))
    assert len(pubs['extra'].msgs) == 1 and len(pubs['seg'].msgs) == 3  # switched off live; the rest goes on
