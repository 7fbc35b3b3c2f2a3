"""Offline evaluation: the Pipeline over a stream of frames as fast as it can, pooled benchmark metrics,
and a report that says exactly what was evaluated (source, split, count, ignore rule, score range,
model, scorer) and what was not.

Frames are isolated: a frame that cannot be read is 'skipped: <reason>', a frame the Pipeline raises on or
whose scores are not finite is 'failed: <reason>'; both are listed in the report (``skipped``, ``failed``)
and the run goes on with the other frames."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from ..data.sample import Sample
from ..metrics import Curves
from ..pipeline import Pipeline
from ..stamps import STAMP0_NS, frame_stamp
from .accumulate import EvalAccumulator, EvalSettings
from .records import FrameRecord, WorstFrame

__all__ = [
    'IGNORE_RULE',
    'STAMP0_NS',
    'EvalFrame',
    'EvalRun',
    'evaluate_frames',
    'frame_stamp',
    'frames_with_status',
    'samples_as_frames',
]

IGNORE_RULE = (
    'pixels with anomaly GT 255 are excluded from every anomaly metric and pixels with segmentation '
    'GT 255 from mIoU; anomaly metrics pool every evaluated pixel of the run'
)


@dataclass(frozen=True)
class EvalFrame:
    """One frame to evaluate; `sample` is None when it could not be read (`error` says why)."""

    index: int
    name: str
    stamp_ns: int
    sample: Sample | None
    error: str = ''


@dataclass
class EvalRun:
    """What a runner returns: the JSON-able report and the plot data for the HTML page."""

    report: dict[str, Any]
    curves: Curves | None
    frames: list[FrameRecord]
    worst: list[WorstFrame]


def samples_as_frames(samples: Iterable[Sample], rate_hz: float = 10.0) -> Iterator[EvalFrame]:
    """Dataset samples as a frame stream with synthetic stamps (as `bag from-dataset` would write them)."""
    for i, s in enumerate(samples):
        yield EvalFrame(i, s.name or f'frame-{i:06d}', frame_stamp(i, rate_hz), s)


def evaluate_frames(
    pipe: Pipeline,
    frames: Iterable[EvalFrame],
    settings: EvalSettings,
    *,
    total: int | None = None,
    progress: bool = True,
) -> tuple[EvalAccumulator, float]:
    """Run every frame through the Pipeline once; returns the filled accumulator and the wall time."""
    acc = EvalAccumulator(settings)
    t0 = time.perf_counter()
    for f in tqdm(frames, total=total, desc='evaluate offline', disable=not progress, unit='frame'):
        if f.sample is None:
            acc.skip(f.index, f.name, f.stamp_ns, f.error)
            continue
        try:
            r = pipe(f.sample.image)
        except Exception as e:  # noqa: BLE001 - one frame's failure must not end the run; it is reported
            acc.fail(f.index, f.name, f.stamp_ns, f'the Pipeline raised {type(e).__name__}: {e}')
            continue
        acc.add(
            f.index,
            f.name,
            f.stamp_ns,
            f.sample.image,
            r.score,
            r.labels,
            f.sample.anomaly,
            f.sample.labels,
            latency_ms=r.timings['total'],
            stage_ms={k: v for k, v in r.timings.items() if k != 'total'},
        )
    return acc, time.perf_counter() - t0


def describe_pipeline(pipe: Pipeline, backend: str, device: str) -> dict[str, Any]:
    return {
        'model': pipe.model.name,
        'model_dir': str(pipe.model.directory),
        'model_input': f'{pipe.model.input.width}x{pipe.model.input.height}',
        'scorer': pipe.scorer.name,
        'score_range': list(pipe.score_range),
        'backend': pipe.backend.name if backend in ('', 'auto') else backend,
        'backend_request': backend,
        'device': device,
        'precision': getattr(pipe.backend, 'precision', 'fp32'),
    }


def finish_run(acc: EvalAccumulator, evaluated: dict[str, Any], wall_s: float) -> EvalRun:
    result, curves, frames, worst = acc.finish()
    n_ok = sum(1 for f in frames if f.status in ('ok', 'late'))
    evaluated = {
        **evaluated,
        'frames_evaluated': n_ok,
        'ignore_rule': IGNORE_RULE,
        'binning': f'{acc.settings.mode}, {acc.settings.bins} bins over {list(acc.calibrated_range or ())}'
        if acc.settings.mode == 'binned'
        else 'exact',
        'smiyc_protocol': acc.smiyc_protocol(),
        'fixed_threshold': acc.threshold,  # Chan et al. and components.fixed_threshold (score > t)
    }
    result['latency']['wall_s'] = wall_s
    result['latency']['throughput_fps'] = n_ok / wall_s if wall_s > 0 else None
    report = {'evaluated': evaluated, **result}
    report['skipped'] = frames_with_status(frames, 'skipped')
    report['failed'] = frames_with_status(frames, 'failed')
    return EvalRun(report, curves, frames, worst)


def frames_with_status(frames: Iterable[FrameRecord], kind: str) -> list[dict[str, Any]]:
    """``{index, name, reason}`` of every frame whose status is ``'<kind>: <reason>'`` (report.json lists)."""
    prefix = f'{kind}:'
    return [
        {'index': f.index, 'name': f.name, 'reason': f.status[len(prefix) :].strip()}
        for f in frames
        if f.status.startswith(prefix)
    ]
