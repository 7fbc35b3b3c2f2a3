"""The `anomaly_seg` node: a thin rclpy shell over Pipeline.

Threading: subscription callbacks only park the newest message in a one-slot mailbox; a worker thread
decodes, runs the Pipeline and publishes. A frame that arrives while the worker is busy replaces the
parked one (counted as superseded), so the node always works on the newest frame and never builds a
backlog. Bad frames (unsupported encoding, size/step mismatch, empty) are dropped, counted, and logged
at most once per `log_throttle_s`; the node keeps running.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from ..classes import colorize
from ..config import NodeConfig
from ..errors import AnomalySegError, CodecError, ConfigError
from ..io.image_codec import compressed_msg_to_rgb, image_msg_to_rgb
from ..pipeline import STAGES, Pipeline
from ..viz import heatmap_overlay
from .messages import image_msg

__all__ = ['AnomalySegNode', 'main']

NODE_NAME = 'anomaly_seg'
_WINDOW = 200  # frames kept for latency percentiles in diagnostics


def input_qos(kind: str) -> QoSProfile:
    """Keep last 1 either way: a perception node wants the newest frame, not a queue of stale ones.

    A best-effort subscription also connects to a reliable publisher (e.g. `ros2 bag play`), so the
    sensor-data default works for bag replay; 'reliable' is for links where every frame must arrive.
    """
    reliability = ReliabilityPolicy.BEST_EFFORT if kind == 'sensor_data' else ReliabilityPolicy.RELIABLE
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=reliability)


class _Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received = 0
        self.processed = 0
        self.superseded = 0
        self.bad_input = 0
        self.failed = 0
        self.timings: collections.deque[dict[str, float]] = collections.deque(maxlen=_WINDOW)
        self.done_times: collections.deque[float] = collections.deque(maxlen=_WINDOW)


class AnomalySegNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.cfg = self._read_parameters()
        # up before the model loads: a TensorRT engine build takes minutes, and the vehicle must see why
        self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._startup_status(
            f'loading model {self.cfg.model!r} with backend {self.cfg.backend} on {self.cfg.device} '
            '(a first run may export a graph or build a TensorRT engine: seconds to minutes)'
        )
        self.pipeline = Pipeline.from_model(
            self.cfg.model,
            self.cfg.scorer,
            self.cfg.backend,
            self.cfg.device,
            self.cfg.precision,
            **self._backend_options(),
        )
        self.pipeline.warmup()
        b = self.pipeline.backend
        self.get_logger().info(
            f'model {self.pipeline.model.name!r} ({self.pipeline.model.directory}), scorer '
            f'{self.pipeline.scorer.name!r}, backend {b.name} ({self.cfg.backend}) on {b.device} '
            f'{b.precision}, input QoS {self.cfg.input_qos}'
        )
        self.stats = _Stats()
        self._slot: tuple[str, Any] | None = None
        self._cond = threading.Condition()
        self._stop = False
        self._last_warn = -float('inf')

        out_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2, reliability=ReliabilityPolicy.RELIABLE)
        self.pub_seg = self.create_publisher(Image, '~/segmentation', out_qos)
        self.pub_color = (
            self.create_publisher(Image, '~/segmentation/color', out_qos) if self.cfg.publish_color else None
        )
        self.pub_score = self.create_publisher(Image, '~/anomaly_score', out_qos)
        self.pub_heat = self.create_publisher(Image, '~/anomaly_heatmap', out_qos) if self.cfg.publish_heatmap else None

        qos = input_qos(self.cfg.input_qos)
        self.create_subscription(Image, 'image', lambda m: self._park('raw', m), qos)
        if self.cfg.subscribe_compressed:
            self.create_subscription(CompressedImage, 'image/compressed', lambda m: self._park('compressed', m), qos)
        self.create_timer(self.cfg.diagnostics_period, self._publish_diagnostics)
        self._worker = threading.Thread(target=self._work, name='anomaly_seg_worker', daemon=True)
        self._worker.start()

    # -- parameters ---------------------------------------------------------------------------------------
    def _read_parameters(self) -> NodeConfig:
        defaults = NodeConfig()
        values: dict[str, Any] = {}
        for name, text in NodeConfig.descriptions().items():
            default = getattr(defaults, name)
            try:
                param = self.declare_parameter(name, default, ParameterDescriptor(description=text))
            except Exception as e:  # noqa: BLE001 - rclpy raises InvalidParameterTypeException and friends
                raise ConfigError(
                    f'node {self.get_name()}: parameter {name!r}: {e} (expected {type(default).__name__})'
                ) from None
            values[name] = param.value
        return NodeConfig.from_dict(values, f'node {self.get_name()} parameters')

    # -- input --------------------------------------------------------------------------------------------
    def _park(self, kind: str, msg: Any) -> None:
        with self._cond:
            self.stats.received += 1
            if self._slot is not None:
                self.stats.superseded += 1
            self._slot = (kind, msg)
            self._cond.notify()

    def _work(self) -> None:
        while True:
            with self._cond:
                while self._slot is None and not self._stop:
                    self._cond.wait(timeout=0.5)
                if self._stop:
                    return
                item, self._slot = self._slot, None
            if item is not None:
                self._process(*item)

    def _process(self, kind: str, msg: Any) -> None:
        t0 = time.perf_counter()
        try:
            rgb = compressed_msg_to_rgb(msg) if kind == 'compressed' else image_msg_to_rgb(msg)
        except CodecError as e:
            with self.stats.lock:
                self.stats.bad_input += 1
            self._warn(
                f'dropped a {kind} frame (stamp {msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}, '
                f'frame_id {msg.header.frame_id!r}): {e}'
            )
            return
        t1 = time.perf_counter()
        try:
            result = self.pipeline(rgb)
            t2 = time.perf_counter()
            self._publish(msg.header, rgb, result)
        except Exception as e:  # noqa: BLE001 - one bad frame must not take the node down
            with self.stats.lock:
                self.stats.failed += 1
            self._warn(f'frame failed in the pipeline: {type(e).__name__}: {e}')
            return
        # The node's own stages around the Pipeline: message decoding, and rendering + publishing outputs.
        timings = {'decode': (t1 - t0) * 1e3, **result.timings, 'publish': (time.perf_counter() - t2) * 1e3}
        with self.stats.lock:
            self.stats.processed += 1
            self.stats.timings.append(timings)
            self.stats.done_times.append(time.monotonic())

    def _publish(self, header: Any, rgb: np.ndarray, result: Any) -> None:
        self.pub_seg.publish(image_msg(header, result.labels, 'mono8'))
        self.pub_score.publish(image_msg(header, result.score.astype(np.float32, copy=False), '32FC1'))
        if self.pub_color is not None:
            self.pub_color.publish(image_msg(header, colorize(result.labels), 'rgb8'))
        if self.pub_heat is not None:
            heat = heatmap_overlay(rgb, result.score, result.score_range, self.cfg.heatmap_alpha)
            self.pub_heat.publish(image_msg(header, heat, 'bgr8'))

    def _warn(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last_warn >= self.cfg.log_throttle_s:
            self._last_warn = now
            with self.stats.lock:
                counts = f'bad_input={self.stats.bad_input} failed={self.stats.failed}'
            self.get_logger().warning(f'{text} [{counts}]')

    # -- diagnostics --------------------------------------------------------------------------------------
    def diagnostics(self) -> DiagnosticStatus:
        with self.stats.lock, self._cond:
            s = self.stats
            timings = list(s.timings)
            done = list(s.done_times)
            counts = {
                'frames_received': s.received,
                'frames_processed': s.processed,
                'dropped_superseded': s.superseded,
                'dropped_bad_input': s.bad_input,
                'failed': s.failed,
            }
        rate = (len(done) - 1) / (done[-1] - done[0]) if len(done) > 1 and done[-1] > done[0] else 0.0
        values = [KeyValue(key=k, value=str(v)) for k, v in counts.items()]
        b = self.pipeline.backend
        values.append(KeyValue(key='backend', value=f'{b.name} {b.device} {b.precision}'))
        backend_status = getattr(b, 'status', '')
        if backend_status:
            values.append(KeyValue(key='backend_status', value=str(backend_status)))
        resized = getattr(b, 'resized_frames', None)
        if resized is not None:  # frames of a size with no engine, resized on the host (tensorrt)
            values.append(KeyValue(key='frames_resized_on_host', value=str(resized)))
        values.append(KeyValue(key='rate_hz', value=f'{rate:.2f}'))
        for stage in ('decode', *STAGES, 'total', 'publish'):
            xs = [t[stage] for t in timings if stage in t]
            if xs:
                p50, p95 = np.percentile(xs, [50, 95])
                values.append(KeyValue(key=f'{stage}_ms_p50', value=f'{p50:.2f}'))
                values.append(KeyValue(key=f'{stage}_ms_p95', value=f'{p95:.2f}'))
        status = DiagnosticStatus(
            name=f'{self.get_fully_qualified_name()}: pipeline', hardware_id=self.cfg.device, values=values
        )
        if counts['dropped_bad_input'] or counts['failed']:
            status.level, status.message = DiagnosticStatus.WARN, 'frames dropped: bad input or pipeline failure'
        else:
            status.level, status.message = DiagnosticStatus.OK, 'running'
        return status

    def _backend_options(self) -> dict[str, Any]:
        """Backend-specific options: a TensorRT engine build reports its progress in the log and diagnostics."""
        options: dict[str, Any] = {}
        if self.cfg.backend in ('tensorrt', 'auto'):
            options['on_status'] = lambda text: self._startup_status(f'tensorrt: {text}')
        if self.cfg.cuda_graphs and self.cfg.backend in ('torch', 'auto'):
            options['cuda_graphs'] = True
        return options

    def _startup_status(self, text: str) -> None:
        """Log a start-up step and publish it as a WARN diagnostic (the node is not processing frames yet)."""
        self.get_logger().info(text)
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = [
            DiagnosticStatus(
                name=f'{self.get_fully_qualified_name()}: pipeline',
                hardware_id=self.cfg.device,
                level=DiagnosticStatus.WARN,
                message=f'starting: {text}',
            )
        ]
        self.pub_diag.publish(arr)

    def _publish_diagnostics(self) -> None:
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = [self.diagnostics()]
        self.pub_diag.publish(arr)

    def destroy_node(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._worker.join(timeout=5.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args)
    node = None
    try:
        node = AnomalySegNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except AnomalySegError as e:
        # Start-up failures (bad parameter, missing model) end the process with the reason, not a traceback.
        print(f'[{NODE_NAME}] fatal: {e}', file=sys.stderr, flush=True)
        return 2
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
