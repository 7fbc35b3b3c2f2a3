"""`anomaly-seg profile`: attach to a running `anomaly_seg` node (never restart it) and measure it in the loop.

A separate ROS node listens to the camera topic the node reads, to the node's outputs and to /diagnostics;
:class:`~anomaly_seg_ros.eval.profile_stats.ProfileStats` matches them by header stamp. Images are taken
as raw CDR bytes and only their 12-byte header stamp is read, so listening costs the profiler little and
does not slow the node. Subscriptions copy each publisher's reliability (a best-effort subscription would
also match a reliable publisher, but could lose frames the node delivered).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from ..errors import ConfigError
from ..eval.profile_stats import ProfileStats, format_header, format_row, stamp_from_cdr, write_plot

__all__ = ['OUTPUTS', 'PROFILE_FILES', 'Profiler', 'resolve_node', 'run_profile']

#: the node's output topics (under its fully qualified name), as `~/...` names in ros/node.py
OUTPUTS = ('segmentation', 'anomaly_score', 'segmentation/color', 'anomaly_heatmap')
PROFILE_FILES = ('profile.json', 'profile.png')
NODE_NAME = 'anomaly_seg'
_HEADER_EVERY = 20  # table rows between repeated headers


def resolve_node(names: Sequence[tuple[str, str]], wanted: str) -> str | None:
    """The fully qualified name of the node meant by `wanted`: the node itself ('/ns/anomaly_seg') or its
    namespace ('/ns', '/' for a node without one); None if neither is among (name, namespace) pairs."""
    full = {f'{ns.rstrip("/")}/{name}' for name, ns in names}
    want = '/' + wanted.strip('/') if wanted.strip('/') else ''
    for candidate in (want, f'{want}/{NODE_NAME}'):
        if candidate in full:
            return candidate
    return None


class Profiler:
    """Subscriptions and the matching state; `with Profiler(...) as p: p.wait_connected(); p.run(10)`."""

    def __init__(
        self,
        image_topic: str,
        node: str = '/',
        outputs: Sequence[str] = OUTPUTS,
        *,
        timeout_s: float = 2.0,
        window_s: float = 5.0,
        future_tol_s: float = 0.5,
        past_limit_s: float = 30.0,
        discovery_s: float = 10.0,
    ) -> None:
        from ..eval.profile_stats import SkewDetector

        unknown = [o for o in outputs if o not in OUTPUTS]
        if unknown:
            raise ConfigError(f'profile: unknown output {unknown[0]!r}; the node publishes {", ".join(OUTPUTS)}')
        self.image_topic = image_topic
        self.wanted_node = node
        self.outputs = tuple(outputs)
        self.discovery_s = discovery_s
        self.stats = ProfileStats(
            self.outputs, timeout_s=timeout_s, window_s=window_s, skew=SkewDetector(future_tol_s, past_limit_s)
        )
        self.lock = threading.Lock()
        self.context = Context()
        self.node: Node | None = None
        self.target = ''
        self.notes: list[str] = []
        self._executor: SingleThreadedExecutor | None = None
        self._spin: threading.Thread | None = None
        self.bad_messages = 0

    @property
    def _node(self) -> Node:
        if self.node is None:
            raise RuntimeError('Profiler used outside its `with` block')
        return self.node

    # -- setup --------------------------------------------------------------------------------------------
    def __enter__(self) -> Profiler:
        rclpy.init(context=self.context)
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _setup(self) -> None:
        node = self.node = Node(f'anomaly_seg_profile_{id(self) & 0xFFFFFF:x}', context=self.context)
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(node)
        self._spin = threading.Thread(target=self._executor.spin, name='anomaly_seg_profile', daemon=True)
        self._spin.start()
        self.target = self._find_node()
        self._check_image_topic()
        kind = CompressedImage if self.image_topic.rstrip('/').endswith('compressed') else Image
        node.create_subscription(kind, self.image_topic, self._on_input, self._qos(self.image_topic), raw=True)
        for suffix in self.outputs:
            topic = f'{self.target}/{suffix}'
            node.create_subscription(
                Image, topic, lambda data, s=suffix: self._on_output(s, data), self._qos(topic), raw=True
            )
        node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)

    def _find_node(self) -> str:
        """Wait (up to discovery_s) for the node to appear in the graph; ConfigError naming what was seen."""
        deadline = time.monotonic() + self.discovery_s
        names: list[tuple[str, str]] = []
        while True:
            names = self._node.get_node_names_and_namespaces()
            found = resolve_node(names, self.wanted_node)
            if found is not None or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        if found is None:
            seen = sorted(f'{ns.rstrip("/")}/{n}' for n, ns in names if not n.startswith('anomaly_seg_profile'))
            raise ConfigError(
                f'profile: no running node {self.wanted_node!r} (nor {self.wanted_node.rstrip("/")}/{NODE_NAME}) '
                f'found in {self.discovery_s:g} s on this ROS domain; nodes seen: {", ".join(seen) or "none"} '
                '(the profiler attaches to a running node, it does not start one)'
            )
        return found

    def _check_image_topic(self) -> None:
        """A note (not an error: the camera may start later) when the node does not read --image."""
        infos = self._node.get_subscriptions_info_by_topic(self.image_topic)
        full = {f'{i.node_namespace.rstrip("/")}/{i.node_name}' for i in infos}
        if self.target not in full:
            ns, _, name = self.target.rpartition('/')
            subs = self._node.get_subscriber_names_and_types_by_node(name, ns or '/')
            images = [t for t, types in subs if any(x.startswith('sensor_msgs/msg/') for x in types)]
            self.notes.append(
                f'note: {self.target} does not subscribe to {self.image_topic} '
                f'(it reads {", ".join(images) or "none"}); outputs will not match these inputs'
            )

    def _qos(self, topic: str) -> QoSProfile:
        infos = self._node.get_publishers_info_by_topic(topic)
        best_effort = any(i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for i in infos)
        reliability = ReliabilityPolicy.BEST_EFFORT if best_effort or not infos else ReliabilityPolicy.RELIABLE
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=reliability)

    # -- callbacks (executor thread) ----------------------------------------------------------------------
    def _stamp(self, data: bytes) -> int | None:
        try:
            return stamp_from_cdr(data)
        except ValueError:
            with self.lock:
                self.bad_messages += 1
            return None

    def _on_input(self, data: bytes) -> None:
        now = time.time_ns()
        stamp = self._stamp(data)
        if stamp is not None:
            with self.lock:
                self.stats.on_input(stamp, now)

    def _on_output(self, suffix: str, data: bytes) -> None:
        now = time.time_ns()
        stamp = self._stamp(data)
        if stamp is not None:
            with self.lock:
                self.stats.on_output(suffix, stamp, now)

    def _on_diag(self, msg: Any) -> None:
        for status in msg.status:
            if status.name == f'{self.target}: pipeline':
                with self.lock:
                    self.stats.on_diagnostics({kv.key: kv.value for kv in status.values})

    # -- running ------------------------------------------------------------------------------------------
    def wait_connected(self, timeout: float) -> bool:
        """True once the image topic and every output we listen to have a publisher matched to our subscription."""
        topics = [self._node.resolve_topic_name(self.image_topic), *(f'{self.target}/{o}' for o in self.outputs)]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            subs = {s.topic_name: s for s in self._node.subscriptions}
            if all((s := subs.get(t)) is not None and s.get_publisher_count() > 0 for t in topics):
                return True
            time.sleep(0.05)
        return False

    def run(self, duration_s: float | None, stream: TextIO = sys.stdout, period_s: float = 1.0) -> None:
        """Print a table row about once a period until duration_s, Ctrl-C or SIGTERM."""
        stop = threading.Event()
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        end = None if duration_s is None else time.monotonic() + duration_s
        warned = False
        rows = 0
        stages: tuple[str, ...] | None = None
        for note in self.notes:
            print(note, file=stream, flush=True)
        try:
            while not stop.is_set():
                left = period_s if end is None else min(period_s, end - time.monotonic())
                if left > 0:
                    stop.wait(left)
                with self.lock:
                    snap = self.stats.snapshot(time.time_ns())
                    warning = self.stats.skew.warning()
                if warning and not warned:
                    print(f'WARNING: {warning}', file=stream, flush=True)
                    warned = True
                if stages != tuple(snap.stages) or rows % _HEADER_EVERY == 0:
                    stages = tuple(snap.stages)
                    print(format_header(stages), file=stream, flush=True)
                print(format_row(snap), file=stream, flush=True)
                rows += 1
                if end is not None and time.monotonic() >= end:
                    break
        except KeyboardInterrupt:
            pass
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def report(self) -> dict[str, Any]:
        with self.lock:
            return self.stats.report(
                time.time_ns(),
                node=self.target,
                image_topic=self.image_topic,
                bad_messages=self.bad_messages,
                notes=self.notes,
            )

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(timeout_sec=2.0)
            self._executor = None
        if self._spin is not None:
            self._spin.join(timeout=2.0)
            self._spin = None
        if self.node is not None:
            self._node.destroy_node()
            self.node = None
        rclpy.try_shutdown(context=self.context)


def write_outputs(profiler: Profiler, out: Path, stream: TextIO = sys.stdout) -> dict[str, Any]:
    """profile.json and profile.png into `out` (an existing folder); the summary lines on `stream`."""
    import json

    report = profiler.report()
    (out / 'profile.json').write_text(json.dumps(report, indent=2, allow_nan=False) + '\n')
    with profiler.lock:
        why = write_plot(profiler.stats, out / 'profile.png', title=profiler.target)
    frames, age, through = report['frames'], report['age_ms'], report['through_node_ms']

    def ms(v: float | None) -> str:
        return '-' if v is None else f'{v:.1f}'

    print(
        f'\n{profiler.target}: {frames["completed"]} frames matched of {frames["inputs_seen"]} inputs seen, '
        f'{frames["dropped"]} dropped, {frames["partial"]} partial, {frames["in_flight_at_exit"]} in flight; '
        f'age p50/p95/max {ms(age["p50"])}/{ms(age["p95"])}/{ms(age["max"])} ms'
        f'{"" if report["ages_reliable"] else " (UNRELIABLE: clock skew)"}, through node p50 {ms(through["p50"])} ms',
        file=stream,
    )
    if report['clock_skew']['warning']:
        print(f'WARNING: {report["clock_skew"]["warning"]}', file=stream)
    print(f'wrote {out / "profile.json"}' + (f'; {why}' if why else f' and {out / "profile.png"}'), file=stream)
    return report


def run_profile(
    image: str,
    node: str,
    out: Path,
    *,
    duration_s: float | None,
    outputs: Sequence[str] = OUTPUTS,
    timeout_s: float = 2.0,
    window_s: float = 5.0,
    future_tol_s: float = 0.5,
    past_limit_s: float = 30.0,
    discovery_s: float = 10.0,
    stream: TextIO = sys.stdout,
) -> dict[str, Any]:
    """Attach, print the live table until duration_s / Ctrl-C / SIGTERM, write the files; returns the report."""
    with Profiler(
        image,
        node,
        outputs,
        timeout_s=timeout_s,
        window_s=window_s,
        future_tol_s=future_tol_s,
        past_limit_s=past_limit_s,
        discovery_s=discovery_s,
    ) as profiler:
        print(
            f'profiling {profiler.target}: input {image}, outputs {", ".join(outputs)}; '
            f'{"until Ctrl-C" if duration_s is None else f"for {duration_s:g} s"}',
            file=stream,
            flush=True,
        )
        profiler.run(duration_s, stream)
        return write_outputs(profiler, out, stream)
