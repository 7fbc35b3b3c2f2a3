"""Live evaluation: start the real node, play frames into it at the recorded rate (x `rate_scale`),
record what it publishes, match outputs to ground truth by header stamp, and count frames the node
dropped or answered late.

Latency here is end to end through ROS: the time the node's last output of a frame (segmentation and
anomaly score) arrived minus the time the frame was published, both on this process's monotonic clock.
The recorded stamps of a bag lie in the past, so "output publish time minus input stamp" is measured
against the moment the frame was replayed.

Outputs are matched to frames by header stamp, so a stamp may be in flight once only: a frame whose
stamp an earlier frame of the run already had is not played and is recorded as skipped ('duplicate
stamp'). :class:`LiveLedger` keeps that accounting (every frame read ends ok, late, dropped or skipped);
it imports no ROS, so it is tested without a node. The ROS harness is imported when a run starts.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import yaml

from ..config import NodeConfig, load_model_config, resolve_model_dir
from ..data.sample import Sample
from ..errors import AnomalySegError
from ..eval.accumulate import EvalAccumulator, EvalSettings
from ..eval.offline import EvalFrame, EvalRun
from ..evaluate import EvaluateOptions, run_evaluate
from ..scoring import build_scorer

if TYPE_CHECKING:
    from .harness import FrameClient

__all__ = ['LiveLedger', 'evaluate_live', 'run_live']

_OUTPUTS = ('segmentation', 'anomaly_score')


def _params_file(cfg: NodeConfig) -> Path:
    """The node gets exactly the evaluated configuration, written as a ROS 2 params file."""
    fd, name = tempfile.mkstemp(prefix='anomaly_seg_eval_', suffix='.yaml')
    with os.fdopen(fd, 'w') as f:
        yaml.safe_dump({'/**/anomaly_seg': {'ros__parameters': dict(cfg.__dict__)}}, f)
    return Path(name)


class LiveLedger:
    """Which played frames still wait for the node's answer, and what became of every frame read.

    Each frame given to :meth:`admit` ends in the accumulator exactly once: skipped (no sample, or a stamp an
    earlier frame of the run had), or, once published, answered (ok / late) or dropped (no answer by its
    deadline, or never).
    """

    def __init__(self, acc: EvalAccumulator, bar: Any = None) -> None:
        self.acc = acc
        self.bar = bar
        self.pending: dict[int, tuple[EvalFrame, float]] = {}  # stamp -> (frame, deadline)
        self._first_with: dict[int, int] = {}  # stamp -> index of the frame that was played with it
        self.read = self.ok = self.late = self.dropped = self.skipped = 0

    def _done(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def admit(self, f: EvalFrame) -> bool:
        """True when ``f`` is to be played; otherwise it is recorded as skipped (why: in its status)."""
        self.read += 1
        if f.sample is None:
            self.acc.skip(f.index, f.name, f.stamp_ns, f.error)
        elif (first := self._first_with.get(f.stamp_ns)) is not None:
            self.acc.skip(
                f.index,
                f.name,
                f.stamp_ns,
                f'duplicate stamp {f.stamp_ns} (frame {first} has it; outputs are matched to frames by stamp)',
            )
        else:
            self._first_with[f.stamp_ns] = f.index
            return True
        self.skipped += 1
        self._done()
        return False

    def published(self, f: EvalFrame, deadline: float) -> None:
        """``f`` (admitted) was sent to the node; without an answer by ``deadline`` it counts as dropped."""
        self.pending[f.stamp_ns] = (f, deadline)

    def answered(
        self, stamp: int, latency_ms: float, score: np.ndarray, labels: np.ndarray, late_ms: float | None
    ) -> None:
        """The node's outputs for the pending frame with ``stamp`` arrived ``latency_ms`` after it was sent."""
        f, _ = self.pending.pop(stamp)
        late = late_ms is not None and latency_ms > late_ms
        self.late += int(late)
        self.ok += int(not late)
        sample = cast(Sample, f.sample)  # only admitted frames, which have a sample, are pending
        self.acc.add(
            f.index,
            f.name,
            stamp,
            sample.image,
            score,
            labels,
            sample.anomaly,
            sample.labels,
            latency_ms=latency_ms,
            status='late' if late else 'ok',
        )
        self._done()

    def drop(self, stamp: int) -> None:
        """The pending frame with ``stamp`` got no answer from the node."""
        f, _ = self.pending.pop(stamp)
        self.acc.skip(f.index, f.name, stamp, 'no output from the node', status='dropped')
        self.dropped += 1
        self._done()

    def expired(self, now: float) -> list[int]:
        """Stamps of pending frames whose deadline has passed."""
        return [stamp for stamp, (_, deadline) in self.pending.items() if now > deadline]

    def drop_all(self) -> None:
        for stamp in list(self.pending):
            self.drop(stamp)

    @property
    def accounted(self) -> int:
        """Frames that reached an end: equals ``read`` once nothing is pending."""
        return self.ok + self.late + self.dropped + self.skipped


def evaluate_live(
    cfg: NodeConfig, opts: Any, frames: Iterable[EvalFrame], total: int | None, settings_kw: dict[str, Any]
) -> tuple[EvalAccumulator, float, dict[str, Any]]:
    model = load_model_config(resolve_model_dir(cfg.model))
    scorer = build_scorer(cfg.scorer or model.scorer, model)
    from .harness import FrameClient, NodeProcess, isolated_ros_env  # noqa: PLC0415 - imports rclpy

    acc = EvalAccumulator(EvalSettings(score_range=scorer.score_range, **settings_kw))
    env = isolated_ros_env()
    ns = f'/eval_{uuid.uuid4().hex[:6]}'
    params = _params_file(cfg)
    period_s: float | None = None
    drop_after_s = 0.0
    late_ms = opts.late_ms
    t_start = time.perf_counter()
    try:
        with NodeProcess(params, ns, env) as proc:
            client = FrameClient(ns, outputs=_OUTPUTS, reliable=True, env=env)
            try:
                if not (client.wait_connected(120) and client.handshake(60)):
                    raise AnomalySegError(f'evaluate live: the node did not come up; its log:\n{proc.log()}')
                from tqdm import tqdm  # noqa: PLC0415

                bar = tqdm(total=total, desc='evaluate live', unit='frame', disable=not opts.progress)
                ledger = LiveLedger(acc, bar)
                first_stamp: int | None = None
                t0 = 0.0
                prev_stamp: int | None = None
                for f in frames:
                    if not ledger.admit(f):
                        continue
                    if first_stamp is None:
                        first_stamp, t0 = f.stamp_ns, time.monotonic()
                    elif period_s is None and prev_stamp is not None and f.stamp_ns > prev_stamp:
                        period_s = (f.stamp_ns - prev_stamp) / 1e9 / opts.rate_scale
                        drop_after_s = max(2.0, 10 * period_s)
                        if late_ms is None:
                            late_ms = 2000.0 * period_s
                    prev_stamp = f.stamp_ns
                    # Play at the recorded rate: wait until this frame's time, collecting outputs meanwhile.
                    due = t0 + max(0, f.stamp_ns - first_stamp) / 1e9 / opts.rate_scale
                    while True:
                        _collect(client, ledger, late_ms)
                        left = due - time.monotonic()
                        if left <= 0:
                            break
                        time.sleep(min(left, 0.005))
                    client.publish(f.stamp_ns, cast(Sample, f.sample).image, 'rgb8', frame_id='camera')
                    ledger.published(f, time.monotonic() + (drop_after_s or 5.0))
                deadline = time.monotonic() + max(drop_after_s, 5.0)
                while ledger.pending and time.monotonic() < deadline:
                    _collect(client, ledger, late_ms)
                    time.sleep(0.01)
                ledger.drop_all()  # never answered
                bar.close()
                client.wait_diagnostics('frames_processed', 0, 2.0)
                diag = dict(client.diagnostics)
            finally:
                client.close()
            alive = proc.alive()
    finally:
        params.unlink(missing_ok=True)
    wall = time.perf_counter() - t_start
    evaluated = {
        'model': model.name,
        'model_dir': str(model.directory),
        'scorer': scorer.name,
        'score_range': list(scorer.score_range),
        'backend': cfg.backend,
        'device': cfg.device,
        'rate_scale': opts.rate_scale,
        'frame_period_s': period_s,
        'late_threshold_ms': late_ms,
        'frames_read': ledger.read,
        'dropped_frames': ledger.dropped,
        'late_frames': ledger.late,
        'skipped_frames': ledger.skipped,
        'node_alive_at_end': alive,
        'node_diagnostics': diag,
    }
    return acc, wall, evaluated


def _collect(client: FrameClient, ledger: LiveLedger, late_ms: float | None) -> None:
    """Take the node's complete answers for pending frames; drop those past their deadline."""
    for stamp in list(ledger.pending):
        got = client.take(stamp)
        if got is None:
            continue
        sent = client.sent.pop(stamp)
        latency_ms = (max(t for _, t in got.values()) - sent) * 1e3
        score_msg, seg_msg = got['anomaly_score'][0], got['segmentation'][0]
        h, w = score_msg.height, score_msg.width
        score = np.frombuffer(bytes(score_msg.data), np.float32).reshape(h, w)
        labels = np.frombuffer(bytes(seg_msg.data), np.uint8).reshape(h, w)
        ledger.answered(stamp, latency_ms, score, labels, late_ms)
    for stamp in ledger.expired(time.monotonic()):
        client.sent.pop(stamp, None)
        ledger.drop(stamp)


def run_live(opts: EvaluateOptions) -> EvalRun:
    """`anomaly-seg evaluate --mode live`: the evaluator with this module's node runner plugged in."""
    return run_evaluate(opts, live_runner=evaluate_live)
