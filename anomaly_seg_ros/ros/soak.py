"""`anomaly-seg bench --soak N --overload K`: the running node over many frames, then past what it can sustain.

Phase 1 (soak) publishes N frames at the nominal rate; phase 2 (overload) publishes a bounded number of frames at
K times the rate the node can sustain, taken from its own per-frame work p50 (decode + pipeline + publish, from
its /diagnostics) in phase 1. Per phase: frame age (output arrival minus the frame's header stamp, which is its
publish time on this machine's clock) p50/p95/p99, and every published frame accounted for: answered, superseded
in the node's one-frame slot (its /diagnostics `dropped_superseded`), or otherwise never answered (lost before
the node saw it, failed, or its outputs lost). Across both phases: the node process's resident memory (VmRSS from
/proc/PID/status) sampled periodically, start/end and the least-squares slope in MB per 1000 frames.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import default_params_file
from ..errors import AnomalySegError
from .harness import FrameClient, NodeProcess, isolated_ros_env

__all__ = ['PhaseFigures', 'SoakReport', 'print_soak', 'rss_mb', 'rss_slope', 'run_soak']

#: outputs the soak subscribes to: the ones a vehicle consumes (visualisation is rendered only while subscribed)
_OUTPUTS = ('segmentation', 'anomaly_score')
_COUNTERS = ('frames_received', 'frames_processed', 'dropped_superseded', 'dropped_bad_input', 'failed')
#: the node's per-frame work in its diagnostics: decoding, the Pipeline, rendering and publishing
_WORK_KEYS = ('decode_ms_p50', 'total_ms_p50', 'publish_ms_p50')
#: diagnostics period asked of the node: counters are read between phases
_DIAG_PERIOD_S = 0.5


def rss_mb(pid: int) -> float:
    """Resident set size of process `pid` in MB (VmRSS of /proc/PID/status)."""
    status = Path(f'/proc/{pid}/status')
    try:
        text = status.read_text()
    except OSError as e:
        raise AnomalySegError(f'soak: cannot read {status} (the node process is gone?): {e}') from None
    for line in text.splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024.0  # kB
    raise AnomalySegError(f'soak: no VmRSS line in {status} (not Linux?)')


def rss_slope(samples: list[tuple[int, float]]) -> float:
    """Least-squares slope of (frames published, RSS MB) samples, in MB per 1000 frames (0 with < 2 samples)."""
    if len(samples) < 2 or len({n for n, _ in samples}) < 2:
        return 0.0
    x = np.asarray([n for n, _ in samples], np.float64)
    y = np.asarray([mb for _, mb in samples], np.float64)
    return float(np.polyfit(x, y, 1)[0] * 1000.0)


@dataclass
class PhaseFigures:
    """One phase: rate, ages of answered frames and every published frame's fate."""

    name: str
    rate_hz: float  # asked for
    achieved_hz: float  # published frames over the publishing time
    sent: int = 0
    answered: int = 0
    dropped_superseded: int = 0  # node diagnostics, this phase
    never_answered: int = 0  # sent - answered - dropped_superseded: lost before the node, failed, outputs lost
    not_received_by_node: int = 0  # sent - the node's frames_received this phase (lost in DDS before the node)
    failed: int = 0  # node diagnostics dropped_bad_input + failed, this phase
    age_ms: dict[str, float] = field(default_factory=dict)  # p50 / p95 / p99 / max of answered frames


@dataclass
class SoakReport:
    size: tuple[int, int]
    sustainable_hz: float
    overload_factor: float
    phases: list[PhaseFigures]
    rss_start_mb: float
    rss_end_mb: float
    rss_slope_mb_per_1000: float
    rss_samples: list[tuple[int, float]]
    node_alive_at_end: bool
    diagnostics: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out['size'] = f'{self.size[0]}x{self.size[1]}'
        return out


def _counters(client: FrameClient) -> dict[str, int]:
    with client._lock:
        diag = dict(client.diagnostics)
    return {k: int(diag.get(k, '0') or 0) for k in _COUNTERS}


def _handled(c: dict[str, int]) -> int:
    return c['frames_processed'] + c['dropped_superseded'] + c['dropped_bad_input'] + c['failed']


def _fresh(client: FrameClient, deadline: float) -> bool:
    """Wait for the next diagnostics message of the node (True) or the deadline (False)."""
    with client._lock:
        client.diagnostics = {}
    while time.monotonic() < deadline:
        with client._lock:
            if client.diagnostics:
                return True
        time.sleep(0.02)
    return False


def _settled(client: FrameClient, timeout: float) -> dict[str, int]:
    """The node's counters once it has dealt with every frame it received (received = processed + dropped) and
    two diagnostics messages in a row agree; the last counters seen when `timeout` runs out."""
    deadline = time.monotonic() + timeout
    last: dict[str, int] | None = None
    while _fresh(client, deadline):
        counts = _counters(client)
        if counts == last and _handled(counts) == counts['frames_received']:
            return counts
        last = counts
    return _counters(client)


class _Run:
    """Publishing, collecting answers and sampling RSS over both phases."""

    def __init__(self, client: FrameClient, pid: int, frames: list[np.ndarray], sample_every: int) -> None:
        self.client, self.pid, self.frames, self.sample_every = client, pid, frames, sample_every
        self.published = 0
        self.rss: list[tuple[int, float]] = []
        self.pending: dict[int, float] = {}  # stamp -> deadline (monotonic)
        self.settle_s = 10 * _DIAG_PERIOD_S

    def sample(self) -> None:
        self.rss.append((self.published, rss_mb(self.pid)))

    def _collect(self, ages: list[float], expire: bool) -> None:
        now = time.monotonic()
        for stamp in list(self.pending):
            got = self.client.take(stamp)
            if got is not None:
                sent = self.client.sent.pop(stamp)
                ages.append((max(t for _, t in got.values()) - sent) * 1e3)
                del self.pending[stamp]
            elif expire and now > self.pending[stamp]:
                self.client.sent.pop(stamp, None)
                del self.pending[stamp]

    def phase(self, name: str, n: int, rate_hz: float, answer_timeout: float) -> PhaseFigures:
        before = _settled(self.client, self.settle_s)
        ages: list[float] = []
        period = 1.0 / rate_hz
        t0 = time.monotonic()
        for i in range(n):
            due = t0 + i * period
            while True:
                self._collect(ages, expire=True)
                left = due - time.monotonic()
                if left <= 0:
                    break
                time.sleep(min(left, 0.002))
            stamp = time.time_ns()  # the header stamp is the publish time: age = arrival - stamp
            self.client.publish(stamp, self.frames[self.published % len(self.frames)], 'rgb8', frame_id='soak')
            self.pending[stamp] = time.monotonic() + answer_timeout
            self.published += 1
            if self.published % self.sample_every == 0:
                self.sample()
        t_pub = time.monotonic() - t0
        deadline = time.monotonic() + answer_timeout
        while self.pending and time.monotonic() < deadline:
            self._collect(ages, expire=False)
            time.sleep(0.005)
        self._collect(ages, expire=False)
        for stamp in list(self.pending):  # never answered
            self.client.sent.pop(stamp, None)
        self.pending.clear()
        after = _settled(self.client, self.settle_s)
        delta = {k: after[k] - before[k] for k in _COUNTERS}
        fig = PhaseFigures(name, rate_hz, (n - 1) / t_pub if n > 1 and t_pub > 0 else 0.0, sent=n, answered=len(ages))
        fig.dropped_superseded = min(delta['dropped_superseded'], n - fig.answered)
        fig.never_answered = n - fig.answered - fig.dropped_superseded
        fig.not_received_by_node = max(0, n - delta['frames_received'])
        fig.failed = delta['dropped_bad_input'] + delta['failed']
        if ages:
            a = np.asarray(ages)
            p50, p95, p99 = np.percentile(a, [50, 95, 99])
            fig.age_ms = {'p50': float(p50), 'p95': float(p95), 'p99': float(p99), 'max': float(a.max())}
        return fig


def sustainable_rate(diag: dict[str, str], nominal: PhaseFigures) -> float:
    """Frames per second the node can keep up with: 1000 / its per-frame work p50 (decode + Pipeline + publish,
    from its diagnostics); the nominal phase's age p50 when the node reports no stage times."""
    work = sum(float(diag[k]) for k in _WORK_KEYS if diag.get(k))
    if work <= 0:
        work = nominal.age_ms.get('p50', 0.0)
    if work <= 0:
        raise AnomalySegError('soak: no frame was answered in the nominal phase, so no sustainable rate is known')
    return 1000.0 / work


def run_soak(
    model: str,
    frames: int,
    overload: float,
    rate_hz: float,
    size: tuple[int, int],
    *,
    overload_frames: int | None = None,
    device: str = 'cpu',
    backend: str = 'auto',
    scorer: str = '',
    samples: int = 50,
) -> SoakReport:
    """`frames` at `rate_hz`, then `overload_frames` (default: `frames`) at `overload` x the sustainable rate."""
    from ..bench import bench_frames  # noqa: PLC0415 - imports torch

    if frames < 1 or rate_hz <= 0 or overload <= 0:
        raise AnomalySegError(
            f'soak: need frames >= 1, rate > 0 and overload > 0 (got {frames}, {rate_hz}, {overload})'
        )
    n_over = frames if overload_frames is None else overload_frames
    images = bench_frames(size)
    env = isolated_ros_env()
    ns = f'/soak_{uuid.uuid4().hex[:6]}'
    params = {'model': model, 'device': device, 'backend': backend, 'diagnostics_period': _DIAG_PERIOD_S}
    if scorer:
        params['scorer'] = scorer
    with NodeProcess(default_params_file(), ns, env, params) as proc:
        client = FrameClient(ns, outputs=_OUTPUTS, reliable=True, env=env)
        try:
            if not (client.wait_connected(120) and client.handshake(60, size=(size[1], size[0]))):
                raise AnomalySegError(f'soak: the node did not come up; its log:\n{proc.log()}')
            assert proc.proc is not None
            run = _Run(client, proc.proc.pid, images, max(1, (frames + n_over) // samples))
            run.sample()
            timeout = max(2.0, 20.0 / rate_hz)
            nominal = run.phase('soak', frames, rate_hz, timeout)
            diag = dict(client.diagnostics) or {}
            sustainable = sustainable_rate(diag, nominal)
            phases = [nominal]
            if n_over > 0:
                phases.append(run.phase('overload', n_over, overload * sustainable, max(2.0, 20.0 / sustainable)))
            run.sample()
            diag = dict(client.diagnostics)
            alive = proc.alive()
        finally:
            client.close()
    return SoakReport(
        size=size,
        sustainable_hz=sustainable,
        overload_factor=overload,
        phases=phases,
        rss_start_mb=run.rss[0][1],
        rss_end_mb=run.rss[-1][1],
        rss_slope_mb_per_1000=rss_slope(run.rss),
        rss_samples=run.rss,
        node_alive_at_end=alive,
        diagnostics=diag,
    )


def print_soak(report: SoakReport, model: str) -> None:
    w, h = report.size
    print(
        f'Soak of the node ({model}, {w}x{h}; subscribed: {", ".join(_OUTPUTS)}): sustainable '
        f'{report.sustainable_hz:.1f} Hz (1000 / node per-frame work p50), overload {report.overload_factor:g}x'
    )
    print()
    print('| phase | frames | Hz asked / got | age p50 ms | p95 | p99 | answered | superseded | never answered |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|---:|')
    for p in report.phases:
        a = p.age_ms
        ages = ' | '.join(f'{a[k]:.1f}' if k in a else '-' for k in ('p50', 'p95', 'p99'))
        print(
            f'| {p.name} | {p.sent} | {p.rate_hz:.1f} / {p.achieved_hz:.1f} | {ages} | {p.answered} | '
            f'{p.dropped_superseded} | {p.never_answered} |'
        )
    print()
    total = sum(p.sent for p in report.phases)
    print(
        f'node RSS: {report.rss_start_mb:.1f} MB at start, {report.rss_end_mb:.1f} MB after {total} frames; '
        f'slope {report.rss_slope_mb_per_1000:+.2f} MB per 1000 frames (least squares, {len(report.rss_samples)} '
        'samples of VmRSS)'
    )
    lost = sum(p.not_received_by_node for p in report.phases)
    failed = sum(p.failed for p in report.phases)
    print(
        f'never answered: {lost} never reached the node (DDS), {failed} failed or bad input in the node; '
        f'node alive at end: {report.node_alive_at_end}'
    )
