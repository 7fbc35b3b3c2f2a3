"""Everything an evaluation run accumulates, fed frame by frame by the offline and the live runner alike.

Memory is bounded: metric state is fixed-size (binned pixel metrics, confusion matrix, per-component
values), the per-frame table holds a few numbers per frame, and only the K worst frames keep
(downscaled) images for the report.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

from ..classes import NUM_CLASSES
from ..metrics import (
    DEFAULT_BINS,
    ChanSegmentMetrics,
    Curves,
    PixelAnomalyMetrics,
    SegmentationIoU,
    SmiycComponentMetrics,
)
from ..metrics.pixel import Mode
from .records import FrameRecord, WorstFrame

__all__ = ['EvalAccumulator', 'EvalSettings', 'latency_summary', 'nonfinite_scores']

_FRAME_AP_BINS = 4096
_WORST_MAX_WIDTH = 640


@dataclass(frozen=True)
class EvalSettings:
    score_range: tuple[float, float]
    mode: Mode = 'binned'  # 'binned' | 'exact'
    bins: int = DEFAULT_BINS
    threshold: float | None = None  # component metrics: anomaly where score > threshold; None: mid-range
    min_gt_size: int = 0
    min_pred_size: int = 0
    worst_k: int = 4
    calibration_frames: int = 8  # unbounded scorers: frames used to fix the binning range

    def component_threshold(self) -> float:
        if self.threshold is not None:
            return self.threshold
        lo, hi = self.score_range
        return 0.5 * (lo + hi)


@dataclass
class _RunMetrics:
    """The streaming metrics that need a fixed score range; created together once the range is known."""

    pixel: PixelAnomalyMetrics
    smiyc: SmiycComponentMetrics
    chan: ChanSegmentMetrics

    def update(self, score: np.ndarray, gt: np.ndarray) -> None:
        self.pixel.update(score, gt)
        self.smiyc.update(score, gt)
        self.chan.update(score, gt)


@dataclass(order=True)
class _Ranked:
    key: float
    seq: int
    frame: WorstFrame = field(compare=False)


class EvalAccumulator:
    def __init__(self, settings: EvalSettings) -> None:
        self.settings = settings
        self.frames: list[FrameRecord] = []
        self.iou = SegmentationIoU(NUM_CLASSES)
        self.n_labelled = 0
        self._seq = 0
        self._worst_ap: list[_Ranked] = []  # min-heap on -key: keeps the K lowest frame APs
        self._worst_fp: list[_Ranked] = []  # keeps the K highest in-distribution score maxima
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []  # unbounded scorer: frames before calibration
        lo, hi = settings.score_range
        self.bounded = math.isfinite(lo) and math.isfinite(hi)
        self.calibrated_range: tuple[float, float] | None = (lo, hi) if self.bounded else None
        self.metrics: _RunMetrics | None = None
        self.threshold = settings.component_threshold() if self.bounded or settings.threshold is not None else None
        if self.calibrated_range is not None:
            self._start_metrics(self.calibrated_range)

    def _start_metrics(self, score_range: tuple[float, float]) -> _RunMetrics:
        s = self.settings
        if self.threshold is None:
            self.threshold = 0.5 * (score_range[0] + score_range[1])
        self.metrics = _RunMetrics(
            PixelAnomalyMetrics(
                s.mode,
                score_range=score_range,
                bins=s.bins,  # type: ignore[arg-type]
                max_exact_pairs=None if s.mode == 'exact' else 50_000_000,
            ),
            SmiycComponentMetrics(self.threshold, min_gt_size=s.min_gt_size, min_pred_size=s.min_pred_size),
            ChanSegmentMetrics(self.threshold),
        )
        return self.metrics

    def skip(self, index: int, name: str, stamp_ns: int, reason: str, status: str | None = None) -> None:
        """A frame that could not be read (or, with ``status``, was dropped): recorded, not evaluated."""
        self.frames.append(
            FrameRecord(index=index, name=name, stamp_ns=stamp_ns, status=status or f'skipped: {reason}')
        )

    def fail(self, index: int, name: str, stamp_ns: int, reason: str, latency_ms: float | None = None) -> None:
        """A frame that was read but gave no usable output (the Pipeline raised, scores not finite): recorded,
        kept out of every metric, and the run goes on."""
        self.frames.append(
            FrameRecord(index=index, name=name, stamp_ns=stamp_ns, status=f'failed: {reason}', latency_ms=latency_ms)
        )

    def add(
        self,
        index: int,
        name: str,
        stamp_ns: int,
        image: np.ndarray,
        score: np.ndarray,
        labels: np.ndarray | None,
        gt_anomaly: np.ndarray | None,
        gt_labels: np.ndarray | None,
        latency_ms: float | None,
        stage_ms: dict[str, float] | None = None,
        status: str = 'ok',
    ) -> None:
        """One frame's output against its ground truth; a score map with NaN or inf fails the frame instead
        (see :meth:`fail`): one bad frame must not abort the run nor poison the pooled metrics."""
        bad = nonfinite_scores(score)
        if bad:
            self.fail(index, name, stamp_ns, bad, latency_ms=latency_ms)
            return
        rec = FrameRecord(
            index=index,
            name=name,
            stamp_ns=stamp_ns,
            status=status,
            latency_ms=latency_ms,
            stage_ms=dict(stage_ms or {}),
        )
        if gt_labels is not None and labels is not None:
            self.iou.update(labels, gt_labels)
            self.n_labelled += 1
        if gt_anomaly is not None:
            self._anomaly(rec, image, score, gt_anomaly)
        self.frames.append(rec)

    def _anomaly(self, rec: FrameRecord, image: np.ndarray, score: np.ndarray, gt: np.ndarray) -> None:
        anomalous, in_dist = gt == 1, gt == 0
        rec.n_anomaly_px, rec.n_in_dist_px = int(anomalous.sum()), int(in_dist.sum())
        if rec.n_anomaly_px:
            rec.mean_score_anomaly = float(score[anomalous].mean())
        if rec.n_in_dist_px:
            rec.mean_score_in_dist = float(score[in_dist].mean())
        if self.metrics is None:
            self._pending.append((score, gt))
            if len(self._pending) >= self.settings.calibration_frames:
                self._calibrate()
        else:
            self.metrics.update(score, gt)
        if rec.n_anomaly_px and rec.n_in_dist_px:
            lo, hi = self.calibrated_range or (float(score.min()), float(score.max()) + 1e-6)
            frame_metric = PixelAnomalyMetrics('binned', score_range=(lo, hi), bins=_FRAME_AP_BINS)
            frame_metric.update(score, gt)
            rec.ap = frame_metric.compute().ap
            self._keep_worst(self._worst_ap, -rec.ap, f'lowest frame AP {rec.ap:.3f}', rec, image, score, gt)
        if rec.n_in_dist_px:
            peak = float(score[in_dist].max())
            self._keep_worst(self._worst_fp, peak, f'highest in-distribution score {peak:.3g}', rec, image, score, gt)

    def _calibrate(self) -> None:
        """Unbounded scorer: fix the binning range from the first frames, widened by 25 % on each side.

        Later scores outside it are clipped into the end bins and counted (`out_of_range` in the report).
        """
        lo = min(float(s[np.isfinite(s)].min()) for s, _ in self._pending)
        hi = max(float(s[np.isfinite(s)].max()) for s, _ in self._pending)
        pad = 0.25 * (hi - lo if hi > lo else 1.0)
        self.calibrated_range = (lo - pad, hi + pad)
        metrics = self._start_metrics(self.calibrated_range)
        for score, gt in self._pending:
            metrics.update(score, gt)
        self._pending.clear()

    def _keep_worst(
        self,
        heap: list[_Ranked],
        key: float,
        why: str,
        rec: FrameRecord,
        image: np.ndarray,
        score: np.ndarray,
        gt: np.ndarray,
    ) -> None:
        k = self.settings.worst_k
        if k <= 0 or (len(heap) >= k and key <= heap[0].key):
            return
        self._seq += 1
        frame = WorstFrame(
            name=rec.name,
            why=why,
            image=_shrink(image, cv2.INTER_AREA),
            anomaly_gt=_shrink(gt, cv2.INTER_NEAREST),
            score=_shrink(score, cv2.INTER_LINEAR),
            score_range=self.calibrated_range or self.settings.score_range,
        )
        item = _Ranked(key, self._seq, frame)
        if len(heap) < k:
            heapq.heappush(heap, item)
        else:
            heapq.heapreplace(heap, item)

    def finish(self) -> tuple[dict[str, Any], Curves | None, list[FrameRecord], list[WorstFrame]]:
        if self.metrics is None and self._pending:
            self._calibrate()
        result: dict[str, Any] = {}
        curves = None
        if self.metrics is not None:
            result['pixel'] = asdict(self.metrics.pixel.compute())
            curves = self.metrics.pixel.curves()
            smiyc = self.metrics.smiyc.compute()
            chan = self.metrics.chan.compute()
            result['components'] = {
                'threshold': self.threshold,
                'smiyc': {
                    k: getattr(smiyc, k)
                    for k in ('mean_f1', 'mean_siou', 'mean_ppv', 'n_gt_components', 'n_pred_components', 'note')
                }
                | {
                    'f1_per_tau': dict(
                        zip((f'{t:.2f}' for t in smiyc.taus), np.asarray(smiyc.f1).tolist(), strict=True)
                    )
                },
                'chan': asdict(chan),
            }
        if self.n_labelled:
            seg = self.iou.compute()
            result['segmentation'] = {
                'miou': seg.miou,
                'frames': self.n_labelled,
                'n_pixels': seg.n_pixels,
                'n_ignored': seg.n_ignored,
                'per_class_iou': dict(zip(seg.class_names, seg.per_class_iou.tolist(), strict=True)),
            }
        result['latency'] = latency_summary(self.frames)
        worst = [r.frame for r in sorted(self._worst_ap, reverse=True)]
        worst += [r.frame for r in sorted(self._worst_fp, reverse=True)]
        return result, curves, self.frames, worst


def nonfinite_scores(score: np.ndarray) -> str:
    """Why a score map is unusable ('' when every value is finite), e.g. 'score map has 12 NaN, 0 inf of 8192'."""
    arr = np.asarray(score)
    finite_mask = np.isfinite(arr)
    if finite_mask.all():
        return ''
    n_nan = int(np.count_nonzero(np.isnan(arr)))
    n_inf = int(arr.size - np.count_nonzero(finite_mask) - n_nan)
    return f'score map has {n_nan} NaN, {n_inf} inf of {arr.size} values'


def latency_summary(frames: list[FrameRecord]) -> dict[str, Any]:
    """p50/p95/p99/max per stage and end to end, plus counts by status."""
    out: dict[str, Any] = {}
    total = [f.latency_ms for f in frames if f.latency_ms is not None]
    stages = sorted({k for f in frames for k in f.stage_ms})
    for name, values in [
        ('end_to_end', total),
        *[(s, [f.stage_ms[s] for f in frames if s in f.stage_ms]) for s in stages],
    ]:
        if values:
            p50, p95, p99 = np.percentile(values, [50, 95, 99])
            out[name] = {'p50_ms': float(p50), 'p95_ms': float(p95), 'p99_ms': float(p99), 'max_ms': float(max(values))}
    counts: dict[str, int] = {}
    for f in frames:
        key = f.status.split(':')[0]
        counts[key] = counts.get(key, 0) + 1
    out['frames_by_status'] = counts
    return out


def _shrink(arr: np.ndarray, interpolation: int) -> np.ndarray:
    h, w = arr.shape[:2]
    if w <= _WORST_MAX_WIDTH:
        return arr.copy()
    size = (_WORST_MAX_WIDTH, max(1, round(h * _WORST_MAX_WIDTH / w)))
    return cv2.resize(arr, size, interpolation=interpolation)
