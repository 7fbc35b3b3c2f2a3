"""The arithmetic of `anomaly-seg profile`, without ROS: match a node's inputs and outputs by header stamp,
rates and frame ages over a sliding window, drops after a timeout, per-stage times from diagnostics, and
clock-skew detection.

All times are integer nanoseconds. Receive times come from the profiler's wall clock (the clock header
stamps are normally taken from), so ``age = output receive time - header stamp`` is the camera-to-output
latency a vehicle sees, and it is only meaningful while the stamping clock and this machine's agree:
:class:`SkewDetector` flags stamps in the future or wildly in the past (sim time, a replay with old stamps).
``through_node`` (last output receive - input receive, both seen here) needs no clock agreement.
"""

from __future__ import annotations

import collections
import math
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    'FrameTiming',
    'ProfileStats',
    'SkewDetector',
    'Snapshot',
    'format_row',
    'format_header',
    'parse_stage_times',
    'stamp_from_cdr',
    'summarize',
    'write_plot',
]

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
_STAGE_KEY = re.compile(r'^(?P<stage>[a-z0-9_]+?)_ms_(?P<stat>p50|p95|p99|max)$')
_MAX_SAMPLES = 1_000_000  # per series kept for profile.json: ~2 days at 5 Hz, bounded memory beyond that
_RECENT_DONE = 4096  # stamps of finished frames remembered, so a late duplicate does not open a new frame


def stamp_from_cdr(data: bytes) -> int:
    """Header stamp (ns) of a serialized message whose first field is a std_msgs/Header (Image, CompressedImage).

    CDR: a 4-byte encapsulation header (byte 1: 0 big endian, 1 little endian), then ``int32 sec`` and
    ``uint32 nanosec``. Reading only these 12 bytes spares deserializing megabytes of pixels per frame.
    """
    if len(data) < 12:
        raise ValueError(f'serialized message of {len(data)} bytes is too short to hold a header stamp')
    kind = data[1]
    if data[0] != 0 or kind not in (0, 1, 2, 3):
        raise ValueError(f'unknown CDR encapsulation {bytes(data[:2]).hex()} (expected 0000..0003)')
    sec, nanosec = struct.unpack_from('<iI' if kind in (1, 3) else '>iI', data, 4)
    return int(sec) * NS_PER_S + int(nanosec)


def summarize(values_ms: Iterable[float]) -> dict[str, float | int | None]:
    """{'n', 'p50', 'p95', 'max'} of a series in ms; the statistics are None for an empty series."""
    xs = np.asarray(list(values_ms), dtype=np.float64)
    if xs.size == 0:
        return {'n': 0, 'p50': None, 'p95': None, 'max': None}
    p50, p95 = np.percentile(xs, [50, 95])
    return {'n': int(xs.size), 'p50': float(p50), 'p95': float(p95), 'max': float(xs.max())}


def parse_stage_times(values: Mapping[str, str]) -> dict[str, dict[str, float]]:
    """'<stage>_ms_<p50|p95|p99|max>' diagnostics key-values -> {stage: {stat: ms}}, in the node's order.

    Values that are not finite numbers are skipped (a node prints what it has; the table shows '-').
    """
    stages: dict[str, dict[str, float]] = {}
    for key, text in values.items():
        m = _STAGE_KEY.match(key)
        if m is None:
            continue
        try:
            value = float(text)
        except ValueError:
            continue
        if math.isfinite(value):
            stages.setdefault(m['stage'], {})[m['stat']] = value
    return stages


class SkewDetector:
    """Stamps more than ``future_tol_s`` ahead of the receive time, or more than ``past_limit_s`` behind it.

    A frame cannot arrive before it was taken, so a stamp in the future means the stamping clock runs
    ahead of this machine's. A stamp minutes to decades old is a sim clock (``use_sim_time``) or a replay
    that kept its recorded stamps. Either way ages computed from stamps are not latencies.
    """

    def __init__(self, future_tol_s: float = 0.5, past_limit_s: float = 30.0) -> None:
        if future_tol_s < 0 or past_limit_s <= 0:
            raise ValueError(f'skew tolerances must be >= 0 and > 0, got {future_tol_s}, {past_limit_s}')
        self.future_tol_ns = round(future_tol_s * NS_PER_S)
        self.past_limit_ns = round(past_limit_s * NS_PER_S)
        self.checked = 0
        self.future = 0
        self.past = 0
        self.worst_future_ns = 0
        self.worst_past_ns = 0

    def check(self, stamp_ns: int, recv_ns: int) -> str | None:
        """Count one (stamp, receive time) pair; 'future', 'past' or None (plausible)."""
        self.checked += 1
        delta = recv_ns - stamp_ns
        if delta < -self.future_tol_ns:
            self.future += 1
            self.worst_future_ns = max(self.worst_future_ns, -delta)
            return 'future'
        if delta > self.past_limit_ns:
            self.past += 1
            self.worst_past_ns = max(self.worst_past_ns, delta)
            return 'past'
        return None

    @property
    def reliable(self) -> bool:
        return self.future == 0 and self.past == 0

    def warning(self) -> str | None:
        """One line naming what is wrong, or None while every stamp was plausible."""
        parts = []
        if self.future:
            parts.append(
                f'{self.future} of {self.checked} stamps are in the future (up to {self.worst_future_ns / 1e9:.3f} s '
                f'ahead of this machine, tolerance {self.future_tol_ns / 1e9:g} s): the camera clock and this '
                "machine's disagree (check chrony/PTP)"
            )
        if self.past:
            parts.append(
                f'{self.past} of {self.checked} stamps are {self.worst_past_ns / 1e9:.1f} s or more in the past '
                f'(limit {self.past_limit_ns / 1e9:g} s): sim time (use_sim_time) or a replay with its recorded stamps'
            )
        if not parts:
            return None
        return 'clock skew: ' + '; '.join(parts) + '. Frame ages are unreliable; through-node times are not affected.'

    def to_json(self) -> dict[str, Any]:
        return {
            'reliable': self.reliable,
            'checked': self.checked,
            'future': self.future,
            'past': self.past,
            'worst_future_s': self.worst_future_ns / 1e9,
            'worst_past_s': self.worst_past_ns / 1e9,
            'future_tolerance_s': self.future_tol_ns / 1e9,
            'past_limit_s': self.past_limit_ns / 1e9,
            'warning': self.warning(),
        }


@dataclass
class FrameTiming:
    """One frame in flight: its stamp, when its input was seen here (if it was) and when each output arrived."""

    stamp_ns: int
    first_seen_ns: int
    input_ns: int | None = None
    outputs: dict[str, int] = field(default_factory=dict)


@dataclass
class Snapshot:
    """One row of the live table: figures over the last window, counters since the start."""

    t_s: float
    in_hz: float
    out_hz: float
    age_ms: dict[str, float | int | None]
    through_ms: dict[str, float | int | None]
    inputs: int
    completed: int
    dropped: int
    partial: int
    stages: dict[str, dict[str, float]]
    skew: bool

    def to_json(self) -> dict[str, Any]:
        return {
            't_s': round(self.t_s, 3),
            'in_hz': self.in_hz,
            'out_hz': self.out_hz,
            'age_ms': self.age_ms,
            'through_node_ms': self.through_ms,
            'inputs': self.inputs,
            'completed': self.completed,
            'dropped': self.dropped,
            'partial': self.partial,
            'stages_ms_p50': {s: v['p50'] for s, v in self.stages.items() if 'p50' in v},
            'clock_skew': self.skew,
        }


class ProfileStats:
    """Inputs and outputs matched by header stamp.

    A frame is complete once every output in ``outputs`` has arrived with its stamp; its age is the last
    output's receive time minus the stamp. A frame still incomplete ``timeout_s`` after it was first seen
    is a drop (no output at all) or partial (some outputs). Live figures cover the last ``window_s``.
    """

    def __init__(
        self,
        outputs: Sequence[str],
        *,
        timeout_s: float = 2.0,
        window_s: float = 5.0,
        skew: SkewDetector | None = None,
    ) -> None:
        if not outputs:
            raise ValueError('profile: at least one output topic is needed to match frames')
        if timeout_s <= 0 or window_s <= 0:
            raise ValueError(f'timeout_s and window_s must be > 0, got {timeout_s}, {window_s}')
        self.outputs = tuple(outputs)
        self.timeout_ns = round(timeout_s * NS_PER_S)
        self.window_ns = round(window_s * NS_PER_S)
        self.skew = skew or SkewDetector()
        self.pending: dict[int, FrameTiming] = {}
        self._done: collections.OrderedDict[int, None] = collections.OrderedDict()
        self.start_ns: int | None = None
        self.inputs = 0
        self.completed = 0
        self.dropped = 0
        self.partial = 0
        self.completed_without_input = 0
        self.ages_ms: collections.deque[float] = collections.deque(maxlen=_MAX_SAMPLES)
        self.topic_ages_ms: dict[str, collections.deque[float]] = {
            t: collections.deque(maxlen=_MAX_SAMPLES) for t in self.outputs
        }
        self.through_ms: collections.deque[float] = collections.deque(maxlen=_MAX_SAMPLES)
        self.frames: collections.deque[tuple[float, float, float | None]] = collections.deque(maxlen=_MAX_SAMPLES)
        self._in_times: collections.deque[int] = collections.deque()
        self._out_window: collections.deque[tuple[int, float, float | None]] = collections.deque()
        self.stages: dict[str, dict[str, float]] = {}
        self.diagnostics: dict[str, str] = {}
        self.timeline: list[Snapshot] = []

    # -- events -------------------------------------------------------------------------------------------
    def _frame(self, stamp_ns: int, recv_ns: int) -> FrameTiming | None:
        if self.start_ns is None:
            self.start_ns = recv_ns
        if stamp_ns in self._done:
            return None
        frame = self.pending.get(stamp_ns)
        if frame is None:
            frame = self.pending[stamp_ns] = FrameTiming(stamp_ns, recv_ns)
        return frame

    def on_input(self, stamp_ns: int, recv_ns: int) -> None:
        self.skew.check(stamp_ns, recv_ns)
        self.inputs += 1
        self._in_times.append(recv_ns)
        frame = self._frame(stamp_ns, recv_ns)
        if frame is not None and frame.input_ns is None:
            frame.input_ns = recv_ns

    def on_output(self, topic: str, stamp_ns: int, recv_ns: int) -> None:
        if topic not in self.outputs:
            raise ValueError(f'profile: unknown output {topic!r} (expected one of {", ".join(self.outputs)})')
        self.skew.check(stamp_ns, recv_ns)
        frame = self._frame(stamp_ns, recv_ns)
        if frame is None:
            return
        frame.outputs.setdefault(topic, recv_ns)
        if len(frame.outputs) == len(self.outputs):
            self._complete(frame)

    def on_diagnostics(self, values: Mapping[str, str]) -> None:
        self.diagnostics = dict(values)
        stages = parse_stage_times(values)
        if stages:
            self.stages = stages

    def _complete(self, frame: FrameTiming) -> None:
        del self.pending[frame.stamp_ns]
        self._remember(frame.stamp_ns)
        last = max(frame.outputs.values())
        age = (last - frame.stamp_ns) / NS_PER_MS
        for topic, t in frame.outputs.items():
            self.topic_ages_ms[topic].append((t - frame.stamp_ns) / NS_PER_MS)
        through = None if frame.input_ns is None else (last - frame.input_ns) / NS_PER_MS
        self.completed += 1
        self.ages_ms.append(age)
        if through is None:
            self.completed_without_input += 1
        else:
            self.through_ms.append(through)
        self.frames.append(((last - (self.start_ns or last)) / NS_PER_S, age, through))
        self._out_window.append((last, age, through))

    def _remember(self, stamp_ns: int) -> None:
        self._done[stamp_ns] = None
        while len(self._done) > _RECENT_DONE:
            self._done.popitem(last=False)

    def expire(self, now_ns: int) -> list[FrameTiming]:
        """Frames first seen more than the timeout ago and still incomplete: counted, forgotten, returned."""
        gone = [f for f in self.pending.values() if now_ns - f.first_seen_ns > self.timeout_ns]
        for f in gone:
            del self.pending[f.stamp_ns]
            self._remember(f.stamp_ns)
            if f.outputs:
                self.partial += 1
            elif f.input_ns is not None:
                self.dropped += 1
        return gone

    # -- figures ------------------------------------------------------------------------------------------
    def _trim(self, now_ns: int) -> None:
        edge = now_ns - self.window_ns
        while self._in_times and self._in_times[0] < edge:
            self._in_times.popleft()
        while self._out_window and self._out_window[0][0] < edge:
            self._out_window.popleft()

    def _span_s(self, now_ns: int) -> float:
        elapsed = now_ns - (self.start_ns if self.start_ns is not None else now_ns)
        return max(min(self.window_ns, elapsed), 1) / NS_PER_S

    def snapshot(self, now_ns: int, record: bool = True) -> Snapshot:
        """Expire overdue frames, then the figures of the last window (appended to the timeline if record, once a
        message was seen)."""
        self.expire(now_ns)
        self._trim(now_ns)
        span = self._span_s(now_ns)
        snap = Snapshot(
            t_s=(now_ns - (self.start_ns or now_ns)) / NS_PER_S,
            in_hz=len(self._in_times) / span,
            out_hz=len(self._out_window) / span,
            age_ms=summarize(a for _, a, _ in self._out_window),
            through_ms=summarize(t for _, _, t in self._out_window if t is not None),
            inputs=self.inputs,
            completed=self.completed,
            dropped=self.dropped,
            partial=self.partial,
            stages={s: dict(v) for s, v in self.stages.items()},
            skew=not self.skew.reliable,
        )
        if record and self.start_ns is not None:  # rows before the first message would plot a false 0 Hz
            self.timeline.append(snap)
        return snap

    def report(self, now_ns: int, **context: Any) -> dict[str, Any]:
        """Everything for profile.json. Frames still in flight (younger than the timeout) are reported as such,
        not as drops."""
        self.expire(now_ns)
        duration = (now_ns - self.start_ns) / NS_PER_S if self.start_ns is not None else 0.0
        return {
            **context,
            'duration_s': duration,
            'outputs': list(self.outputs),
            'timeout_s': self.timeout_ns / NS_PER_S,
            'frames': {
                'inputs_seen': self.inputs,
                'completed': self.completed,
                'completed_without_input_seen': self.completed_without_input,
                'dropped': self.dropped,
                'partial': self.partial,
                'in_flight_at_exit': len(self.pending),
            },
            'rates_hz': {
                'input': self.inputs / duration if duration > 0 else 0.0,
                'output': self.completed / duration if duration > 0 else 0.0,
            },
            'age_ms': summarize(self.ages_ms),
            'age_ms_by_output': {t: summarize(v) for t, v in self.topic_ages_ms.items()},
            'ages_reliable': self.skew.reliable,
            'through_node_ms': summarize(self.through_ms),
            'clock_skew': self.skew.to_json(),
            'stages_ms': self.stages,
            'diagnostics': self.diagnostics,
            'timeline': [s.to_json() for s in self.timeline],
        }


# -- the live table ---------------------------------------------------------------------------------------
def _ms(value: float | int | None) -> str:
    return '-' if value is None else f'{value:.1f}'


def format_header(stages: Iterable[str]) -> str:
    stage_cols = ''.join(f' {s[:9]:>9}' for s in stages)
    head = (
        f'{"t[s]":>6} {"in Hz":>6} {"out Hz":>6} {"age p50":>8} {"p95":>8} {"max":>8} {"node p50":>8} '
        f'{"drops":>6} {"partial":>7}'
    )
    return head + (f' | stage p50 ms:{stage_cols}' if stage_cols else '')


def format_row(snap: Snapshot) -> str:
    """One line; a '!' after the ages marks them unreliable (clock skew)."""
    flag = '!' if snap.skew else ' '
    age = snap.age_ms
    row = (
        f'{snap.t_s:6.1f} {snap.in_hz:6.1f} {snap.out_hz:6.1f} {_ms(age["p50"]):>8} {_ms(age["p95"]):>8} '
        f'{_ms(age["max"]):>8}{flag}{_ms(snap.through_ms["p50"]):>8} {snap.dropped:6d} {snap.partial:7d}'
    )
    if snap.stages:
        row += ' |              ' + ''.join(f' {_ms(v.get("p50")):>9}' for v in snap.stages.values())
    return row


# -- the plot ---------------------------------------------------------------------------------------------
def write_plot(stats: ProfileStats, path: Path, title: str = '') -> str | None:
    """Frame age and through-node time per frame, and the rates per table row, as a PNG.

    Returns None when written, else the sentence saying why not (matplotlib missing, nothing to draw).
    """
    if not stats.frames and not stats.timeline:
        return 'no plot: no frame was profiled'
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        return f'no plot: matplotlib is not installed ({e}); pip install matplotlib'
    fig = Figure(figsize=(8.0, 6.0), dpi=100, constrained_layout=True)
    FigureCanvasAgg(fig)
    ax_age, ax_rate = fig.subplots(2, 1, sharex=True)
    if stats.frames:
        t = [f[0] for f in stats.frames]
        ax_age.plot(t, [f[1] for f in stats.frames], '.', ms=3, label='age (output receive - stamp)')
        through = [(f[0], f[2]) for f in stats.frames if f[2] is not None]
        if through:
            ax_age.plot([x for x, _ in through], [y for _, y in through], '.', ms=3, label='through node')
    ax_age.set_ylabel('ms')
    ax_age.set_title((title + ': ' if title else '') + ('' if stats.skew.reliable else 'CLOCK SKEW, ages unreliable'))
    ax_age.legend(loc='upper right', fontsize='small')
    ax_age.grid(alpha=0.3)
    if stats.timeline:
        ts = [s.t_s for s in stats.timeline]
        ax_rate.plot(ts, [s.in_hz for s in stats.timeline], label='input Hz')
        ax_rate.plot(ts, [s.out_hz for s in stats.timeline], label='output Hz')
        ax_rate.plot(ts, [s.dropped for s in stats.timeline], label='drops (total)')
        ax_rate.legend(loc='upper right', fontsize='small')
    ax_rate.set_xlabel('s since the first message')
    ax_rate.grid(alpha=0.3)
    fig.savefig(path, format='png', metadata={'Software': None})
    return None
