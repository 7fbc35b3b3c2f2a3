"""Drive a real `anomaly_seg` node process from Python: shared by the demo, the benchmark and the node test.

`NodeProcess` starts the node in its own process on an isolated ROS domain (random ROS_DOMAIN_ID,
localhost-only discovery); `FrameClient` publishes frames into it and records every output with its
arrival time, keyed by header stamp. Readiness is awaited on graph events (publisher/subscriber
matching), never on fixed sleeps.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from ..config import shipped_config_file
from ..io.image_codec import rgb_to_image
from .malloc_tuning import tune_malloc_for_frames
from .messages import uint8_array
from .outputs import OUTPUTS

__all__ = [
    'FrameClient',
    'NodeProcess',
    'OUTPUT_TOPICS',
    'ROS_ENV_KEYS',
    'Received',
    'isolated_ros_env',
    'ros_env_applied',
]

#: output topic suffix under the node's namespace -> expected encoding: the node's own table (ros/outputs.py)
OUTPUT_TOPICS = {o.name: o.encoding for o in OUTPUTS if o.msg_type is Image}


def ros_distro() -> str:
    """The ROS 2 distribution rclpy here belongs to ('humble', 'iron', 'jazzy', 'kilted', ...), '' when unknown:
    ROS_DISTRO (set by a sourced setup.bash), else the version of the rclpy package (PyPI wheels)."""
    name = os.environ.get('ROS_DISTRO', '').strip().lower()
    if name:
        return name
    for dist in ('ros-rclpy', 'rclpy'):
        try:
            major = int(importlib.metadata.version(dist).split('.')[0])
        except (importlib.metadata.PackageNotFoundError, ValueError):
            continue
        # rclpy major versions: Humble 3, Iron 4, Jazzy 7, Kilted 9, Rolling 10 and up
        return 'humble' if major < 4 else 'iron' if major < 7 else 'jazzy' if major < 9 else 'kilted'
    return ''


#: distributions whose rcl reads ROS_LOCALHOST_ONLY only (no ROS_AUTOMATIC_DISCOVERY_RANGE)
_LOCALHOST_ONLY_DISTROS = ('foxy', 'galactic', 'humble')
#: distributions on Fast DDS 3, which reads FASTDDS_DEFAULT_PROFILES_FILE only (their rmw warns about the old name)
_FASTDDS3_DISTROS = ('kilted', 'lyrical', 'rolling')


def isolated_ros_env(domain_id: int | None = None, distro: str | None = None) -> dict[str, str]:
    """Environment for a ROS process that can only see peers on this machine in its own domain.

    Returned as a new mapping for subprocesses (`NodeProcess(env=...)`) and this process's client
    (`FrameClient(env=...)`); os.environ is left as it was.

    Both naming generations are set where the distribution (`distro`, default: :func:`ros_distro`) reads them:
    discovery is limited to this machine by ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (Iron and later) and, on
    Humble or an unknown distribution, ROS_LOCALHOST_ONLY=1 as well (Jazzy honours it too but logs two
    deprecation warnings per process, so there it is removed); the Fast DDS profile goes in
    FASTDDS_DEFAULT_PROFILES_FILE (Fast DDS 3: Kilted and later) and FASTRTPS_DEFAULT_PROFILES_FILE (Fast DDS 2:
    Humble, Jazzy; on Kilted the rmw warns that the old name is deprecated, so there it is not set).

    Unless the caller chose a Fast DDS profile (under either name: it then applies under both), the shipped
    config/fastdds_large_images.xml is used: with Fast DDS's default transports, best-effort frames of
    1024x512 rgb8 and up never arrive over loopback (measured here), which would make the demo and the
    benchmark measure lost frames.
    """
    distro = ros_distro() if distro is None else distro.strip().lower()
    env = dict(os.environ)
    profile = (
        env.get('FASTDDS_DEFAULT_PROFILES_FILE')
        or env.get('FASTRTPS_DEFAULT_PROFILES_FILE')
        or str(shipped_config_file('fastdds_large_images.xml'))
    )
    env['FASTDDS_DEFAULT_PROFILES_FILE'] = profile
    if distro in _FASTDDS3_DISTROS:
        env.pop('FASTRTPS_DEFAULT_PROFILES_FILE', None)
    else:
        env['FASTRTPS_DEFAULT_PROFILES_FILE'] = profile
    env['ROS_DOMAIN_ID'] = str(domain_id if domain_id is not None else random.randint(1, 101))
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    if distro in _LOCALHOST_ONLY_DISTROS or not distro:
        env['ROS_LOCALHOST_ONLY'] = '1'
    else:
        env.pop('ROS_LOCALHOST_ONLY', None)
    env['PYTHONUNBUFFERED'] = '1'
    return env


#: variables rcl and Fast DDS read in this process when a context starts and its first node is created
ROS_ENV_KEYS = (
    'ROS_DOMAIN_ID',
    'ROS_AUTOMATIC_DISCOVERY_RANGE',
    'ROS_LOCALHOST_ONLY',
    'FASTDDS_DEFAULT_PROFILES_FILE',
    'FASTRTPS_DEFAULT_PROFILES_FILE',
)


@contextlib.contextmanager
def ros_env_applied(env: Mapping[str, str]) -> Iterator[None]:
    """Set `env`'s ROS and Fast DDS variables (ROS_ENV_KEYS) in this process, and restore the previous values
    (unset ones unset again) on leaving, also on an exception.

    rclpy in this process reads them only while a context is initialised and its first node (the DDS
    participant) is created, so that is all that needs to run inside; the client keeps working afterwards.
    """
    saved = {k: os.environ.get(k) for k in ROS_ENV_KEYS}
    try:
        for k in ROS_ENV_KEYS:
            if k in env:
                os.environ[k] = env[k]
            else:
                os.environ.pop(k, None)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class NodeProcess:
    """The node in a subprocess: `with NodeProcess(params, ns='/t1', env=env) as proc: ...`."""

    def __init__(self, params: Path, namespace: str, env: dict[str, str], extra_params: dict[str, Any] | None = None):
        self.namespace = namespace
        self.log_path = Path(tempfile.mkstemp(prefix='anomaly_seg_node_', suffix='.log')[1])
        cmd = [
            sys.executable,
            '-m',
            'anomaly_seg_ros.ros.node',
            '--ros-args',
            '--params-file',
            str(params),
            '-r',
            f'__ns:={namespace}',
        ]
        for k, v in (extra_params or {}).items():
            cmd += ['-p', f'{k}:={v}']
        self.cmd = cmd
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> NodeProcess:
        self._log = open(self.log_path, 'wb')
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors='replace')

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(2)  # SIGINT: the node's main() shuts down cleanly
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@dataclass
class Received:
    """Outputs by topic suffix -> {stamp_ns: (message, arrival monotonic seconds)}."""

    by_topic: dict[str, dict[int, tuple[Any, float]]] = field(default_factory=lambda: defaultdict(dict))


class FrameClient:
    """Publishes frames to `<ns>/image` and collects `<ns>/anomaly_seg/<output>` in a background executor."""

    def __init__(
        self,
        namespace: str,
        outputs: tuple[str, ...] = tuple(OUTPUT_TOPICS),
        reliable: bool = True,
        env: Mapping[str, str] | None = None,
        tune_malloc: bool = True,
    ):
        """`env` (from isolated_ros_env) applies to this client only: set while rclpy starts, then restored.
        `tune_malloc` tunes this process's glibc malloc for frame-sized buffers, as the node does (see
        ros/malloc_tuning.py): without it this process's own copies would dominate what the benchmark measures."""
        if tune_malloc:
            tune_malloc_for_frames()
        self.context = Context()
        with ros_env_applied(env) if env is not None else contextlib.nullcontext():
            rclpy.init(context=self.context)
            self.node = Node('anomaly_seg_client', namespace=namespace, context=self.context)
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=10,
            reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        )
        self.pub = self.node.create_publisher(Image, 'image', qos)
        self.pub_compressed = self.node.create_publisher(CompressedImage, 'image/compressed', qos)
        self.received = Received()
        self._lock = threading.Lock()
        self._event = threading.Condition(self._lock)
        # the node names its diagnostics status '<fully qualified node name>: pipeline'
        self.diagnostics_name = f'{namespace.rstrip("/")}/anomaly_seg: pipeline'
        self.output_topics = {o: f'{namespace.rstrip("/")}/anomaly_seg/{o}' for o in outputs}
        for suffix, topic in self.output_topics.items():
            self.node.create_subscription(Image, topic, lambda m, s=suffix: self._on_output(s, m), 10)
        self.diagnostics: dict[str, str] = {}
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spin = threading.Thread(target=self.executor.spin, daemon=True)
        self._spin.start()
        self.sent: dict[int, float] = {}

    def _on_output(self, suffix: str, msg: Any) -> None:
        now = time.monotonic()
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        with self._event:
            self.received.by_topic[suffix][stamp] = (msg, now)
            self._event.notify_all()

    def _on_diag(self, msg: Any) -> None:
        for status in msg.status:
            if status.name == self.diagnostics_name:
                with self._event:
                    self.diagnostics = {kv.key: kv.value for kv in status.values}
                    self._event.notify_all()

    def wait_diagnostics(self, key: str, at_least: int, timeout: float) -> bool:
        """Wait until the node's diagnostics report counter `key` >= at_least."""
        deadline = time.monotonic() + timeout
        with self._event:
            while int(self.diagnostics.get(key, '-1')) < at_least:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._event.wait(left)
        return True

    def wait_connected(self, timeout: float = 60.0, compressed: bool = False) -> bool:
        """True once the node subscribes to our input and publishes every output we listen to."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pub = self.pub_compressed if compressed else self.pub
            if pub.get_subscription_count() > 0 and all(
                self.node.count_publishers(t) > 0 for t in self.output_topics.values()
            ):
                return True
            time.sleep(0.05)
        return False

    def handshake(self, timeout: float = 60.0, size: tuple[int, int] = (32, 64)) -> bool:
        """Publish small probe frames until the node answers one; then forget the probes.

        Graph matching (wait_connected) is not delivery: a best-effort link can drop what is sent in the
        first instants after matching. A frame that made the round trip proves the whole path works.
        """
        deadline = time.monotonic() + timeout
        probe = np.zeros((*size, 3), np.uint8)
        stamp = 1  # probe stamps sit far below any real stamp (1 ns after the epoch)
        while time.monotonic() < deadline:
            self.publish(stamp, probe, 'rgb8', frame_id='handshake')
            if self.wait_for(stamp, 0.5):
                time.sleep(0.2)  # let outputs of earlier probes that are still in flight arrive
                with self._lock:
                    for topic in self.received.by_topic.values():
                        for k in [k for k in topic if k < 1_000_000]:
                            del topic[k]
                    for k in [k for k in self.sent if k < 1_000_000]:
                        del self.sent[k]
                return True
            stamp += 1
        return False

    def publish(
        self,
        stamp_ns: int,
        rgb: np.ndarray | None = None,
        encoding: str = 'rgb8',
        *,
        raw: tuple[int, int, int, bytes] | None = None,
        frame_id: str = 'camera',
    ) -> None:
        """Publish a frame; `raw=(height, width, step, data)` sends arbitrary (even corrupt) bytes."""
        msg = Image()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        msg.header.frame_id = frame_id
        msg.encoding = encoding
        if raw is not None:
            msg.height, msg.width, msg.step, msg.data = raw[0], raw[1], raw[2], uint8_array(raw[3])
        else:
            if rgb is None:
                raise ValueError('publish: give rgb or raw')
            msg.height, msg.width = rgb.shape[:2]
            msg.step, data = rgb_to_image(rgb, encoding)
            msg.data = uint8_array(data)
        self.sent[stamp_ns] = time.monotonic()
        self.pub.publish(msg)

    def publish_compressed(self, stamp_ns: int, data: bytes, fmt: str, frame_id: str = 'camera') -> None:
        msg = CompressedImage()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        msg.header.frame_id = frame_id
        msg.format = fmt
        msg.data = uint8_array(data)
        self.sent[stamp_ns] = time.monotonic()
        self.pub_compressed.publish(msg)

    def wait_for(self, stamp_ns: int, timeout: float) -> bool:
        """Wait until every output topic has delivered the frame with this stamp."""
        deadline = time.monotonic() + timeout
        with self._event:
            while not all(stamp_ns in self.received.by_topic[s] for s in self.output_topics):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._event.wait(left)
        return True

    def take(self, stamp_ns: int) -> dict[str, tuple[Any, float]] | None:
        """Remove and return every output of this frame once all have arrived (None until then); bounds memory
        on long replays."""
        with self._lock:
            if not all(stamp_ns in self.received.by_topic[s] for s in self.output_topics):
                return None
            return {s: self.received.by_topic[s].pop(stamp_ns) for s in self.output_topics}

    def latency_s(self, stamp_ns: int) -> float:
        """Publish-to-last-output time of one frame (same process, one monotonic clock)."""
        with self._lock:
            last = max(self.received.by_topic[s][stamp_ns][1] for s in self.output_topics)
        return last - self.sent[stamp_ns]

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
