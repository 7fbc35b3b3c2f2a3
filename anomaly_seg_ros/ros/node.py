"""The `anomaly_seg` node: a thin rclpy shell over Pipeline.

Threading: subscription callbacks only park the newest message in a one-slot mailbox; a worker thread
decodes, runs the Pipeline and publishes. A frame that arrives while the worker is busy replaces the
parked one (counted as superseded), so the node always works on the newest frame and never builds a
backlog. Bad frames (unsupported encoding, size/step mismatch, empty) are dropped, counted, and logged
at most once per `log_throttle_s`; the node keeps running. A frame whose scores are NaN or inf is counted
(`non_finite`) and nothing is published for it: a broken model must not look like an empty road.

Diagnostics describe the last `diagnostics_window_s` seconds, not the whole run: ERROR while pipeline failures
or non-finite frames occurred in the window, STALE when no frame arrived for `stale_after_s`, WARN while bad
input was dropped in the window, else OK. Start-up failures of any kind end the process with exit code 2 and
one line on stderr.
"""

from __future__ import annotations

import collections
import dataclasses
import re
import signal
import sys
import threading
import time
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

try:
    from rclpy.event_handler import SubscriptionEventCallbacks, UnsupportedEventTypeError
except ImportError:  # Humble names the module qos_event
    from rclpy.qos_event import SubscriptionEventCallbacks, UnsupportedEventTypeError  # type: ignore[no-redef]
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from ..config import PARAMETER_RANGES, NodeConfig
from ..errors import AnomalySegError, CodecError, ConfigError, NonFiniteOutputError
from ..io.image_codec import compressed_msg_to_rgb, image_msg_to_rgb
from ..pipeline import STAGES, Pipeline
from .malloc_tuning import tune_malloc_for_frames
from .outputs import OUTPUTS, OutputFrame

__all__ = ['AnomalySegNode', 'main']

NODE_NAME = 'anomaly_seg'
_WINDOW = 200  # frames kept for latency percentiles in diagnostics
_EVENTS = 20_000  # bound on the time-stamped events kept for the diagnostics window (200 Hz for 100 s)


def input_qos(kind: str) -> QoSProfile:
    """Keep last 1 either way: a perception node wants the newest frame, not a queue of stale ones.

    A best-effort subscription also connects to a reliable publisher (e.g. `ros2 bag play`), so the
    sensor-data default works for bag replay; 'reliable' is for links where every frame must arrive.
    """
    reliability = ReliabilityPolicy.BEST_EFFORT if kind == 'sensor_data' else ReliabilityPolicy.RELIABLE
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=reliability)


def output_qos(kind: str) -> QoSProfile:
    """Keep last 2: 'reliable' (the default: rviz and recorders get every output) or 'sensor_data' (best effort)."""
    reliability = ReliabilityPolicy.BEST_EFFORT if kind == 'sensor_data' else ReliabilityPolicy.RELIABLE
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2, reliability=reliability)


#: a frame age outside [-1 s, 1 h] means the stamp is not on the node's clock (skew, stamp 0): not counted
_MAX_FUTURE_MS = 1_000.0
_MAX_AGE_MS = 3_600_000.0


class _Stats:
    """All-time counters plus monotonic times of recent events, from which diagnostics take the last window."""

    def __init__(self, now: float) -> None:
        self.lock = threading.Lock()
        self.started = now
        self.received = 0
        self.processed = 0
        self.superseded = 0
        self.bad_input = 0
        self.failed = 0
        self.non_finite = 0
        self.lost = 0  # message-lost events of the RMW: frames dropped in DDS before the node saw them
        self.implausible_stamps = 0  # stamps > 1 s ahead of the node's clock or > 1 h old: left out of the ages
        self.lost_supported = True
        self.last_received: float | None = None
        self.last_bad = ''
        self.last_fault = ''
        self.timings: collections.deque[dict[str, float]] = collections.deque(maxlen=_WINDOW)
        self.ages_ms: collections.deque[tuple[float, float]] = collections.deque(maxlen=_WINDOW)  # (time, age)
        self.done_times: collections.deque[float] = collections.deque(maxlen=_EVENTS)
        self.bad_times: collections.deque[float] = collections.deque(maxlen=_EVENTS)
        self.failed_times: collections.deque[float] = collections.deque(maxlen=_EVENTS)
        self.non_finite_times: collections.deque[float] = collections.deque(maxlen=_EVENTS)


def _in_window(times: collections.deque[float], now: float, window: float) -> int:
    return sum(1 for t in times if now - t <= window)


class AnomalySegNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        try:
            self._start()
        except BaseException:
            self.destroy_node()  # publishers, timers and the worker thread made so far
            raise

    def _start(self) -> None:
        self._now = time.monotonic  # the diagnostics clock; tests replace it
        self.cfg = self._read_parameters()
        # before the first frame-sized allocation: see ros/malloc_tuning.py for what it saves per frame
        self.malloc_tuning = tune_malloc_for_frames() if self.cfg.tune_malloc else 'off (tune_malloc: false)'
        if self.malloc_tuning and self.cfg.tune_malloc:
            self.get_logger().warning(f'tune_malloc: {self.malloc_tuning}')
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
        try:
            self.pipeline.warmup()
        except Exception as e:  # noqa: BLE001 - whatever the backend raises, the reason must name the model
            raise ConfigError(
                f'model {self.cfg.model!r}: warm-up failed, refusing to start: {type(e).__name__}: {e}'
            ) from None
        b = self.pipeline.backend
        self.get_logger().info(
            f'model {self.pipeline.model.name!r} ({self.pipeline.model.directory}), scorer '
            f'{self.pipeline.scorer.name!r}, backend {b.name} ({self.cfg.backend}) on {b.device} '
            f'{b.precision}, input QoS {self.cfg.input_qos}'
        )
        self.stats = _Stats(self._now())
        self._slot: tuple[str, Any] | None = None
        self._cond = threading.Condition()
        self._stop = False
        self._last_log = -float('inf')

        self._out_qos = output_qos(self.cfg.output_qos)
        #: output name -> publisher, for the outputs switched on so far (ros/outputs.py: the table of outputs)
        self.pubs: dict[str, Any] = {}
        self._make_switched_publishers(self.cfg)
        if hasattr(self, 'add_pre_set_parameters_callback'):  # Iron and later; Humble has no pre-set stage
            self.add_pre_set_parameters_callback(self._ints_as_floats)
        self.add_on_set_parameters_callback(self._on_set_parameters)

        qos = input_qos(self.cfg.input_qos)
        self._subscribe(Image, 'image', 'raw', qos)
        if self.cfg.subscribe_compressed:
            self._subscribe(CompressedImage, 'image/compressed', 'compressed', qos)
        self.create_timer(self.cfg.diagnostics_period, self._publish_diagnostics)
        self._worker = threading.Thread(target=self._work, name='anomaly_seg_worker', daemon=True)
        self._worker.start()

    def _subscribe(self, msg_type: Any, topic: str, kind: str, qos: QoSProfile) -> None:
        """Frames the middleware dropped before the node saw them are counted where the RMW reports them."""
        try:
            events = SubscriptionEventCallbacks(message_lost=self._on_message_lost)
            self.create_subscription(msg_type, topic, lambda m: self._park(kind, m), qos, event_callbacks=events)
        except UnsupportedEventTypeError:
            self.stats.lost_supported = False
            self.create_subscription(msg_type, topic, lambda m: self._park(kind, m), qos)

    def _on_message_lost(self, event: Any) -> None:
        with self.stats.lock:
            self.stats.lost += int(event.total_count_change)

    def _make_switched_publishers(self, cfg: NodeConfig) -> None:
        """A switched output's topic exists once switched on; switching it off (live) stops publishing on it."""
        for out in OUTPUTS:
            if out.enabled(cfg) and out.name not in self.pubs:
                self.pubs[out.name] = self.create_publisher(out.msg_type, f'~/{out.name}', self._out_qos)

    # -- parameters ---------------------------------------------------------------------------------------
    def _read_parameters(self) -> NodeConfig:
        defaults = NodeConfig()
        values: dict[str, Any] = {}
        live = NodeConfig.live_parameters()
        for name, text in NodeConfig.descriptions().items():
            default = getattr(defaults, name)
            override = self._parameter_overrides.get(name)
            if isinstance(default, float) and override is not None and override.type_ == Parameter.Type.INTEGER:
                # `-p heatmap_alpha:=1` means 1.0, as it does in a params file checked by NodeConfig.from_dict
                self._parameter_overrides[name] = Parameter(name, Parameter.Type.DOUBLE, float(override.value))
            try:
                param = self.declare_parameter(name, default, _descriptor(name, text, read_only=name not in live))
            except Exception as e:  # noqa: BLE001 - rclpy raises InvalidParameterTypeException and friends
                raise ConfigError(
                    f'node {self.get_name()}: parameter {name!r}: {e} (expected {type(default).__name__})'
                ) from None
            values[name] = param.value
        # rclpy ignores overrides of parameters a node never declares: a typo (`-p modle:=x`) would run defaults.
        unknown = sorted(
            n for n in self._parameter_overrides if n not in self._parameters and not n.startswith('qos_overrides.')
        )
        if unknown:
            raise ConfigError(
                f'node {self.get_name()}: unknown parameter {", ".join(map(repr, unknown))} '
                f'(known: {", ".join(NodeConfig.descriptions())})'
            )
        return NodeConfig.from_dict(values, f'node {self.get_name()} parameters')

    @staticmethod
    def _ints_as_floats(params: list[Parameter]) -> list[Parameter]:
        """`ros2 param set /node heatmap_alpha 1` sends an integer; rclpy would refuse it as the wrong type for a
        decimal parameter. It means 1.0, as at start-up and in a params file."""
        defaults = NodeConfig()
        return [
            Parameter(p.name, Parameter.Type.DOUBLE, float(p.value))
            if p.type_ == Parameter.Type.INTEGER and isinstance(getattr(defaults, p.name, None), float)
            else p
            for p in params
        ]

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """`ros2 param set`: live parameters are validated as a whole config and applied; read-only ones are
        refused by rclpy (descriptor read_only) before this runs; anything else not ours is refused here."""
        live = NodeConfig.live_parameters()
        changes: dict[str, Any] = {}
        for p in params:
            if p.name not in live:
                if p.name in NodeConfig.descriptions():
                    return SetParametersResult(successful=False, reason=f'{p.name} needs a restart of the node')
                continue  # use_sim_time and other parameters rclpy declares itself
            changes[p.name] = p.value
        if not changes:
            return SetParametersResult(successful=True)
        try:
            cfg = NodeConfig.from_dict({**dataclasses.asdict(self.cfg), **changes}, 'parameter set')
        except ConfigError as e:
            return SetParametersResult(successful=False, reason=str(e))
        self._make_switched_publishers(cfg)
        self.cfg = cfg
        self.get_logger().info(f'parameters set: {", ".join(f"{k}={v!r}" for k, v in changes.items())}')
        return SetParametersResult(successful=True)

    # -- input --------------------------------------------------------------------------------------------
    def _park(self, kind: str, msg: Any) -> None:
        with self._cond:
            self.stats.received += 1
            self.stats.last_received = self._now()
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
        cfg = self.cfg
        what = (
            f'{kind} frame (stamp {msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}, '
            f'frame_id {msg.header.frame_id!r})'
        )
        try:
            if kind == 'compressed':
                rgb = compressed_msg_to_rgb(msg, cfg.max_frame_pixels)
            else:
                pixels = int(msg.width) * int(msg.height)
                if pixels > cfg.max_frame_pixels:
                    raise CodecError(
                        f'{msg.width}x{msg.height} = {pixels} pixels, more than max_frame_pixels = '
                        f'{cfg.max_frame_pixels}; not decoded'
                    )
                rgb = image_msg_to_rgb(msg)
        except CodecError as e:
            with self.stats.lock:
                self.stats.bad_input += 1
                self.stats.bad_times.append(self._now())
                self.stats.last_bad = str(e)
            self._log(f'dropped a {what}: {e}')
            return
        t1 = time.perf_counter()
        try:
            result = self.pipeline(rgb)
            t2 = time.perf_counter()
            self._publish(msg.header, rgb, result, cfg)
        except NonFiniteOutputError as e:
            with self.stats.lock:
                self.stats.non_finite += 1
                self.stats.non_finite_times.append(self._now())
                self.stats.last_fault = str(e)
            self._log(f'{what} not published: {e}', error=True)
            return
        except Exception as e:  # noqa: BLE001 - one bad frame must not take the node down
            if not self.context.ok():
                return  # shutting down (SIGTERM/SIGINT): publishers are gone, not a pipeline failure
            with self.stats.lock:
                self.stats.failed += 1
                self.stats.failed_times.append(self._now())
                self.stats.last_fault = f'{type(e).__name__}: {e}'
            self._log(f'{what} failed in the pipeline: {type(e).__name__}: {e}', error=True)
            return
        # The node's own stages around the Pipeline: message decoding, and rendering + publishing outputs.
        timings = {'decode': (t1 - t0) * 1e3, **result.timings, 'publish': (time.perf_counter() - t2) * 1e3}
        # camera-to-output latency: the figure a vehicle cares about (ROS clock, so sim time works too)
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        age_ms = (self.get_clock().now().nanoseconds - stamp_ns) / 1e6
        now = self._now()
        with self.stats.lock:
            self.stats.processed += 1
            self.stats.timings.append(timings)
            if -_MAX_FUTURE_MS <= age_ms <= _MAX_AGE_MS:
                self.stats.ages_ms.append((now, age_ms))
            else:  # clock skew, sim time without /clock, or a camera that stamps 0: never a latency figure
                self.stats.implausible_stamps += 1
            self.stats.done_times.append(now)

    def _publish(self, header: Any, rgb: np.ndarray, result: Any, cfg: NodeConfig) -> None:
        frame = OutputFrame(header, rgb, result, cfg)
        for out in OUTPUTS:
            pub = self.pubs.get(out.name)
            if pub is None or not out.enabled(cfg):
                continue
            if out.on_demand and pub.get_subscription_count() == 0:
                continue  # a visualisation nobody looks at is not rendered
            pub.publish(out.render(frame))

    def _log(self, text: str, error: bool = False) -> None:
        """Throttled: at most one line per log_throttle_s, with the counters so far."""
        now = time.monotonic()
        if now - self._last_log >= self.cfg.log_throttle_s:
            self._last_log = now
            with self.stats.lock:
                s = self.stats
                counts = f'bad_input={s.bad_input} failed={s.failed} non_finite={s.non_finite}'
            log = self.get_logger()
            (log.error if error else log.warning)(f'{text} [{counts}]')

    # -- diagnostics --------------------------------------------------------------------------------------
    def diagnostics(self) -> DiagnosticStatus:
        cfg = self.cfg
        window = cfg.diagnostics_window_s
        now = self._now()
        with self.stats.lock, self._cond:
            s = self.stats
            timings = list(s.timings)
            ages = [a for t, a in s.ages_ms if now - t <= window]
            counts = {
                'frames_received': s.received,
                'frames_processed': s.processed,
                'dropped_superseded': s.superseded,
                'dropped_bad_input': s.bad_input,
                'failed': s.failed,
                'non_finite': s.non_finite,
                'dropped_dds_lost': s.lost if s.lost_supported else 'n/a (not reported by this RMW)',
            }
            recent = {
                'processed_window': _in_window(s.done_times, now, window),
                'dropped_bad_input_window': _in_window(s.bad_times, now, window),
                'failed_window': _in_window(s.failed_times, now, window),
                'non_finite_window': _in_window(s.non_finite_times, now, window),
            }
            last_received, started, last_bad, last_fault = s.last_received, s.started, s.last_bad, s.last_fault
        # frames in the window over the window (or the time since start-up when shorter): 0 when input stops
        span = min(window, now - started)
        rate = recent['processed_window'] / span if span > 0 else 0.0
        silent = now - (last_received if last_received is not None else started)
        values = [KeyValue(key=k, value=str(v)) for k, v in {**counts, **recent}.items()]
        values.append(KeyValue(key='window_s', value=f'{window:g}'))
        values.append(KeyValue(key='since_last_frame_s', value=f'{silent:.2f}' if last_received is not None else ''))
        b = self.pipeline.backend
        values.append(KeyValue(key='backend', value=f'{b.name} {b.device} {b.precision}'))
        backend_status = getattr(b, 'status', '')
        if backend_status:
            values.append(KeyValue(key='backend_status', value=str(backend_status)))
        resized = getattr(b, 'resized_frames', None)
        if resized is not None:  # frames of a size with no engine, resized on the host (tensorrt)
            values.append(KeyValue(key='frames_resized_on_host', value=str(resized)))
        values.append(KeyValue(key='rate_hz', value=f'{rate:.2f}'))
        values.append(KeyValue(key='malloc_tuning', value=self.malloc_tuning or 'on'))
        with self.stats.lock:
            values.append(KeyValue(key='implausible_stamps', value=str(self.stats.implausible_stamps)))
        if ages:  # publish time minus header stamp, frames published in the window
            p50, p95 = np.percentile(ages, [50, 95])
            values += [
                KeyValue(key='age_ms_p50', value=f'{p50:.2f}'),
                KeyValue(key='age_ms_p95', value=f'{p95:.2f}'),
                KeyValue(key='age_ms_max', value=f'{max(ages):.2f}'),
            ]
        for stage in ('decode', *STAGES, 'total', 'publish'):
            xs = [t[stage] for t in timings if stage in t]
            if xs:
                p50, p95 = np.percentile(xs, [50, 95])
                values.append(KeyValue(key=f'{stage}_ms_p50', value=f'{p50:.2f}'))
                values.append(KeyValue(key=f'{stage}_ms_p95', value=f'{p95:.2f}'))
        status = DiagnosticStatus(
            name=f'{self.get_fully_qualified_name()}: pipeline', hardware_id=cfg.device, values=values
        )
        status.level, status.message = self._level(recent, window, silent, last_received is None, last_bad, last_fault)
        return status

    def _level(
        self, recent: dict[str, int], window: float, silent: float, never: bool, last_bad: str, last_fault: str
    ) -> tuple[bytes, str]:
        """ERROR (outputs withheld or failing) > STALE (no input) > WARN (bad input dropped) > OK, over the window."""
        w = f'{window:g} s'
        if recent['non_finite_window'] or recent['failed_window']:
            return DiagnosticStatus.ERROR, (
                f'no outputs for {recent["non_finite_window"]} non-finite and {recent["failed_window"]} failed '
                f'frames in the last {w}: {last_fault}'
            )
        if silent > self.cfg.stale_after_s:
            what = 'no frame received since start-up' if never else 'no frame'
            return DiagnosticStatus.STALE, f'{what} for {silent:.1f} s (stale_after_s {self.cfg.stale_after_s:g})'
        if recent['dropped_bad_input_window']:
            return DiagnosticStatus.WARN, (
                f'{recent["dropped_bad_input_window"]} bad input frames dropped in the last {w}: {last_bad}'
            )
        return DiagnosticStatus.OK, 'running'

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
        try:
            self.pub_diag.publish(arr)
        except Exception:  # noqa: BLE001 - a signal shut the context down between the timer firing and here
            if self.context.ok():
                raise

    def destroy_node(self) -> None:
        """Safe on a node whose start-up failed half-way: only what was made is torn down."""
        cond, worker = getattr(self, '_cond', None), getattr(self, '_worker', None)
        if cond is not None:
            with cond:
                self._stop = True
                cond.notify()
        if worker is not None:
            worker.join(timeout=5.0)
        super().destroy_node()


def _descriptor(name: str, text: str, read_only: bool) -> ParameterDescriptor:
    d = ParameterDescriptor(description=text, read_only=read_only)
    if name in PARAMETER_RANGES:
        low, high = PARAMETER_RANGES[name]
        if isinstance(low, int) and isinstance(high, int):
            d.integer_range = [IntegerRange(from_value=low, to_value=high, step=0)]
        else:
            d.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)]
    return d


def _fatal(text: str, code: int = 2) -> int:
    print(f'[{NODE_NAME}] fatal: {text}', file=sys.stderr, flush=True)
    return code


def _init_error(e: Exception) -> str:
    """rcl's refusal of a command line (e.g. `-p model:=`), as one line saying what to write instead."""
    m = re.search(r"parameter override rule: '([^']*)'", str(e))
    if m:
        return (
            f'cannot parse {m.group(1)!r}: a parameter override is -p NAME:=VALUE '
            '(an empty string is written -p NAME:="\'\'")'
        )
    return f'ROS initialisation failed: {type(e).__name__}: {" ".join(str(e).split())}'


def _bad_override(argv: list[str]) -> str | None:
    """The first `-p RULE` that rcl would refuse with an error log and a traceback: no `:=`, or nothing after it."""
    for flag, rule in zip(argv, argv[1:], strict=False):
        if flag in ('-p', '--param'):
            name, sep, value = rule.partition(':=')
            if not sep or not name or not value:
                return _init_error(Exception(f"parameter override rule: '{flag} {rule}'"))
    return None


class _Termination:
    """SIGTERM (systemd, launch, docker stop) ends the node like Ctrl-C. While the node starts (loading a model or
    building an engine can take minutes) the handler raises KeyboardInterrupt, so start-up stops at once; once the
    node spins it only sets a flag that the spin loop reads every 0.1 s. An exception raised from a signal handler
    at an arbitrary bytecode inside rclpy's executor left half-built Tasks behind (an 'Exception ignored ...
    Traceback' on stderr), and rclpy's own handler let the signal kill the process under load (exit -15)."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.spinning = False

    def __call__(self, signum: int, frame: object) -> None:
        self.requested.set()
        if not self.spinning:
            raise KeyboardInterrupt


def _spin(node: Node, stop: _Termination) -> None:
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    try:
        stop.spinning = True
        while not stop.requested.is_set() and node.context.ok():
            executor.spin_once(timeout_sec=0.1)
    finally:
        executor.remove_node(node)
        executor.shutdown(timeout_sec=1.0)


def main(args: list[str] | None = None) -> int:
    """Exit 0 on SIGINT/SIGTERM, 2 with one line on stderr when start-up fails (whatever the cause), 1 with one
    line when the running node stops on an unexpected error."""
    argv = sys.argv if args is None else args
    bad = _bad_override(argv[argv.index('--ros-args') + 1 :] if '--ros-args' in argv else [])
    if bad:
        return _fatal(bad)
    try:
        rclpy.init(args=args)
    except Exception as e:  # noqa: BLE001 - rcl raises RCLError for a command line it cannot parse
        return _fatal(_init_error(e))
    stop = _Termination()
    signal.signal(signal.SIGTERM, stop)
    node = None
    try:
        try:
            node = AnomalySegNode()
        except (KeyboardInterrupt, ExternalShutdownException):
            return 0
        except AnomalySegError as e:
            # Start-up failures (bad parameter, missing model, broken weights) end with the reason, not a traceback.
            return _fatal(str(e))
        except Exception as e:  # noqa: BLE001 - any other start-up failure: still one line, still exit 2
            return _fatal(f'start-up failed: {type(e).__name__}: {" ".join(str(e).split())}')
        try:
            _spin(node, stop)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except Exception as e:  # noqa: BLE001 - a callback that raced the shutdown is not a failure
            if node.context.ok():
                return _fatal(f'stopped: {type(e).__name__}: {" ".join(str(e).split())}', 1)
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
