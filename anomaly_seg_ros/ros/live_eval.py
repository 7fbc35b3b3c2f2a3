"""Live evaluation: start the real node, play frames into it at the recorded rate (x `rate_scale`),
record what it publishes, match outputs to ground truth by header stamp, and count frames the node
dropped or answered late.

Latency here is end to end through ROS: the time the node's last output of a frame (segmentation and
anomaly score) arrived minus the time the frame was published, both on this process's monotonic clock.
The recorded stamps of a bag lie in the past, so "output publish time minus input stamp" is measured
against the moment the frame was replayed.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import numpy as np
import yaml

from ..config import NodeConfig, load_model_config, resolve_model_dir
from ..data.sample import Sample
from ..errors import AnomalySegError
from ..eval.accumulate import EvalAccumulator, EvalSettings
from ..eval.offline import EvalFrame, EvalRun
from ..evaluate import EvaluateOptions, run_evaluate
from ..scoring import build_scorer
from .harness import FrameClient, NodeProcess, isolated_ros_env

__all__ = ['evaluate_live', 'run_live']

_OUTPUTS = ('segmentation', 'anomaly_score')


def _params_file(cfg: NodeConfig) -> Path:
    """The node gets exactly the evaluated configuration, written as a ROS 2 params file."""
    fd, name = tempfile.mkstemp(prefix='anomaly_seg_eval_', suffix='.yaml')
    with os.fdopen(fd, 'w') as f:
        yaml.safe_dump({'/**/anomaly_seg': {'ros__parameters': dict(cfg.__dict__)}}, f)
    return Path(name)


def evaluate_live(
    cfg: NodeConfig, opts: Any, frames: Iterable[EvalFrame], total: int | None, settings_kw: dict[str, Any]
) -> tuple[EvalAccumulator, float, dict[str, Any]]:
    model = load_model_config(resolve_model_dir(cfg.model))
    scorer = build_scorer(cfg.scorer or model.scorer, model.num_classes, model.void_channel)
    acc = EvalAccumulator(EvalSettings(score_range=scorer.score_range, **settings_kw))
    env = isolated_ros_env()
    os.environ.update(env)
    ns = f'/eval_{uuid.uuid4().hex[:6]}'
    params = _params_file(cfg)
    pending: dict[int, tuple[EvalFrame, float]] = {}  # stamp -> (frame, deadline)
    n_late = n_dropped = 0
    period_s: float | None = None
    drop_after_s = 0.0
    late_ms = opts.late_ms
    t_start = time.perf_counter()
    try:
        with NodeProcess(params, ns, env) as proc:
            client = FrameClient(ns, outputs=_OUTPUTS, reliable=True)
            try:
                if not (client.wait_connected(120) and client.handshake(60)):
                    raise AnomalySegError(f'evaluate live: the node did not come up; its log:\n{proc.log()}')
                from tqdm import tqdm

                bar = tqdm(total=total, desc='evaluate live', unit='frame', disable=not opts.progress)
                first_stamp: int | None = None
                t0 = 0.0
                prev_stamp: int | None = None
                for f in frames:
                    if f.sample is None:
                        acc.skip(f.index, f.name, f.stamp_ns, f.error)
                        bar.update(1)
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
                        n_late, n_dropped = _collect(client, acc, pending, late_ms, n_late, n_dropped, bar)
                        left = due - time.monotonic()
                        if left <= 0:
                            break
                        time.sleep(min(left, 0.005))
                    client.publish(f.stamp_ns, f.sample.image, 'rgb8', frame_id='camera')
                    pending[f.stamp_ns] = (f, time.monotonic() + (drop_after_s or 5.0))
                deadline = time.monotonic() + max(drop_after_s, 5.0)
                while pending and time.monotonic() < deadline:
                    n_late, n_dropped = _collect(client, acc, pending, late_ms, n_late, n_dropped, bar)
                    time.sleep(0.01)
                for stamp, (f, _) in list(pending.items()):  # never answered
                    acc.skip(f.index, f.name, stamp, 'no output from the node', status='dropped')
                    n_dropped += 1
                    bar.update(1)
                pending.clear()
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
        'dropped_frames': n_dropped,
        'late_frames': n_late,
        'node_alive_at_end': alive,
        'node_diagnostics': diag,
    }
    return acc, wall, evaluated


def _collect(
    client: FrameClient,
    acc: EvalAccumulator,
    pending: dict[int, tuple[EvalFrame, float]],
    late_ms: float | None,
    n_late: int,
    n_dropped: int,
    bar: Any,
) -> tuple[int, int]:
    now = time.monotonic()
    for stamp in list(pending):
        f, deadline = pending[stamp]
        got = client.take(stamp)
        if got is None:
            if now > deadline:
                del pending[stamp]
                client.sent.pop(stamp, None)
                acc.skip(f.index, f.name, stamp, 'no output from the node', status='dropped')
                n_dropped += 1
                bar.update(1)
            continue
        del pending[stamp]
        sent = client.sent.pop(stamp)
        latency_ms = (max(t for _, t in got.values()) - sent) * 1e3
        score_msg, seg_msg = got['anomaly_score'][0], got['segmentation'][0]
        h, w = score_msg.height, score_msg.width
        score = np.frombuffer(bytes(score_msg.data), np.float32).reshape(h, w)
        labels = np.frombuffer(bytes(seg_msg.data), np.uint8).reshape(h, w)
        late = late_ms is not None and latency_ms > late_ms
        n_late += int(late)
        sample = cast(Sample, f.sample)  # only frames with a sample are published and pending
        acc.add(
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
        bar.update(1)
    return n_late, n_dropped


def run_live(opts: EvaluateOptions) -> EvalRun:
    """`anomaly-seg evaluate --mode live`: the evaluator with this module's node runner plugged in."""
    return run_evaluate(opts, live_runner=evaluate_live)
