"""Everything an evaluation run accumulates, fed frame by frame by the offline and the live runner alike.

Memory is bounded: metric state is fixed-size (binned pixel metrics, confusion matrix, per-component
values), the per-frame table holds a few numbers per frame, and only the K worst frames keep
(downscaled) images for the report.

SegmentMeIfYouCan threshold policy. The benchmark scores components at the pixel-F1-optimal threshold of
the same run, which is known only after the last frame. Options weighed:

- keeping every score map until the end: exact, but memory grows with the run (a bag of 10k frames at
  1 MPx is 40 GB of float32) -- refused;
- two passes over the frames: exact, but a bag (or a live replay, or a dataset) is read and the network
  run twice -- refused as the default;
- chosen: one pass with a threshold sweep. The first ``calibration_frames`` frames with ground truth are
  buffered (as unbounded scorers already needed for their binning range); from their pixel curve,
  ``component_thresholds`` candidate thresholds are chosen (the warm-up's pixel-F1 optimum, levels spaced
  in warm-up recall and in flagged-pixel fraction; every tie group when there are fewer groups than
  candidates). From then on every frame feeds one SMIYC metric per candidate
  (:class:`~anomaly_seg_ros.metrics.components.SmiycThresholdSweep`; memory: components x candidates).
  At the end the run's pixel curve picks the candidate with the best pixel F1; report.json records it,
  the run's true optimum and both pixel F1 values, so any gap is visible (``threshold_is_optimal``).
  The candidates are the pixel curve's own tie-group levels and the rule is the curve's ``score >= t``,
  so when the optimum is a candidate the component prediction is exactly the pixel prediction at it.

A fixed ``threshold`` (``--threshold``) is also scored, as ``components.fixed_threshold``, never as the
headline SMIYC mean F1. Chan et al.'s segment errors use that fixed threshold (default: mid-range).
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
from ..metrics.components import SMIYC_TRACKS, SmiycResult, SmiycThresholdSweep
from ..metrics.pixel import Mode
from .records import FrameRecord, WorstFrame

__all__ = [
    'SMIYC_TRACK_CHOICES',
    'EvalAccumulator',
    'EvalSettings',
    'candidate_thresholds',
    'latency_summary',
    'nonfinite_scores',
    'pixel_f1_at',
    'pixel_f1_optimum',
    'track_sizes',
]

#: --track: the benchmark's presets, or 'none' for explicit size filters
SMIYC_TRACK_CHOICES: tuple[str, ...] = (*SMIYC_TRACKS, 'none')
#: default number of candidate thresholds of the SMIYC sweep
DEFAULT_COMPONENT_THRESHOLDS = 16

_FRAME_AP_BINS = 4096
_WORST_MAX_WIDTH = 640


@dataclass(frozen=True)
class EvalSettings:
    score_range: tuple[float, float]
    mode: Mode = 'binned'  # 'binned' | 'exact'
    bins: int = DEFAULT_BINS
    threshold: float | None = None  # fixed threshold (score > t): Chan, components.fixed_threshold; None: mid-range
    track: str = 'anomaly'  # SMIYC size filters: 'anomaly' | 'obstacle' | 'none' (min_*_size as given)
    min_gt_size: int = 0  # track 'none' only
    min_pred_size: int = 0  # track 'none' only
    component_thresholds: int = DEFAULT_COMPONENT_THRESHOLDS  # candidates of the SMIYC threshold sweep
    worst_k: int = 4
    calibration_frames: int = 8  # frames buffered to fix the binning range (unbounded) and the SMIYC candidates

    def component_threshold(self) -> float:
        """The fixed threshold of the Chan metric (and of ``components.fixed_threshold``)."""
        if self.threshold is not None:
            return self.threshold
        lo, hi = self.score_range
        return 0.5 * (lo + hi)

    def sizes(self) -> tuple[int, int]:
        """(min_pred_size, min_gt_size) of the track."""
        return track_sizes(self.track, self.min_pred_size, self.min_gt_size)


def track_sizes(track: str, min_pred_size: int = 0, min_gt_size: int = 0) -> tuple[int, int]:
    """(min_pred_size, min_gt_size): the benchmark preset of ``track``, or the given sizes for 'none'.

    A preset with non-zero explicit sizes is refused: silently overriding either would mislabel the run.
    """
    if track == 'none':
        return min_pred_size, min_gt_size
    if track not in SMIYC_TRACKS:
        raise ValueError(f'track must be one of {", ".join(SMIYC_TRACK_CHOICES)}, got {track!r}')
    if min_pred_size or min_gt_size:
        pred, gt = SMIYC_TRACKS[track]
        raise ValueError(
            f'track {track!r} fixes the size filters (predicted {pred} px, ground truth {gt} px); '
            'explicit sizes need track none'
        )
    return SMIYC_TRACKS[track]


def _desc_groups(pos_asc: np.ndarray, neg_asc: np.ndarray, level_asc: np.ndarray) -> tuple[np.ndarray, ...]:
    """Non-empty tie groups from high score to low: (levels, cumulative anomaly, cumulative in-dist)."""
    keep = (pos_asc + neg_asc) > 0
    level = level_asc[keep][::-1]
    return level, np.cumsum(pos_asc[keep][::-1]), np.cumsum(neg_asc[keep][::-1])


def pixel_f1_optimum(
    pos_asc: np.ndarray, neg_asc: np.ndarray, level_asc: np.ndarray
) -> tuple[float | None, float | None]:
    """(threshold, F1) of the best pixel F1 over the curve's tie groups, rule score >= threshold.

    F1 at a group = 2 TP / (TP + FP + P) (= 2 PR / (P + R)). Ties go to the highest threshold. (None, None)
    without anomaly pixels, where F1 is undefined.
    """
    level, tps, fps = _desc_groups(pos_asc, neg_asc, level_asc)
    if level.size == 0 or tps[-1] == 0:
        return None, None
    f1 = 2.0 * tps / (tps + fps + tps[-1])
    best = int(np.argmax(f1))
    return float(level[best]), float(f1[best])


def pixel_f1_at(pos_asc: np.ndarray, neg_asc: np.ndarray, level_asc: np.ndarray, threshold: float) -> float | None:
    """Pixel F1 of the prediction score >= threshold (``threshold`` a group level), None without anomalies."""
    level, tps, fps = _desc_groups(pos_asc, neg_asc, level_asc)
    if level.size == 0 or tps[-1] == 0:
        return None
    i = int(np.searchsorted(-level, -threshold, side='right')) - 1  # last group with level >= threshold
    if i < 0:
        return 0.0
    return float(2.0 * tps[i] / (tps[i] + fps[i] + tps[-1]))


def candidate_thresholds(pos_asc: np.ndarray, neg_asc: np.ndarray, level_asc: np.ndarray, k: int) -> list[float]:
    """Up to ``k`` group levels of a (warm-up) pixel curve where the run's F1 optimum is likely to be.

    Every level when there are at most ``k``; otherwise the warm-up optimum, levels at evenly spaced
    recall (when the warm-up has anomaly pixels) and at geometrically spaced fractions of flagged pixels
    (1e-4 .. 0.5: anomalies are rare, so the optimum flags few pixels).
    """
    level, tps, fps = _desc_groups(pos_asc, neg_asc, level_asc)
    if level.size <= k:
        return sorted(float(v) for v in level)
    picks: set[int] = set()
    flagged = tps + fps
    n_rest = k
    if tps[-1] > 0:
        f1 = 2.0 * tps / (tps + fps + tps[-1])
        picks.add(int(np.argmax(f1)))
        n_recall = (k - 1) // 2
        for r in np.linspace(0.0, 1.0, n_recall + 2)[1:-1]:
            picks.add(int(np.searchsorted(tps, r * tps[-1], side='left')))
        n_rest = k - len(picks)
    for frac in np.geomspace(1e-4, 0.5, max(n_rest, 1)):
        picks.add(min(int(np.searchsorted(flagged, frac * flagged[-1], side='left')), level.size - 1))
    return sorted(float(level[i]) for i in picks)


@dataclass
class _RunMetrics:
    """The streaming metrics that need a fixed score range; created together once the range is known."""

    pixel: PixelAnomalyMetrics
    fixed: SmiycComponentMetrics | None  # SMIYC at the fixed --threshold, when one was given
    chan: ChanSegmentMetrics

    def update(self, score: np.ndarray, gt: np.ndarray) -> None:
        self.pixel.update(score, gt)
        if self.fixed is not None:
            self.fixed.update(score, gt)
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
        self.sweep: SmiycThresholdSweep | None = None
        self._sweep_pending: list[tuple[np.ndarray, np.ndarray]] = []  # warm-up frames for the SMIYC candidates
        self.min_pred_size, self.min_gt_size = settings.sizes()
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
            SmiycComponentMetrics(self.threshold, min_gt_size=self.min_gt_size, min_pred_size=self.min_pred_size)
            if s.threshold is not None
            else None,
            ChanSegmentMetrics(self.threshold),
        )
        return self.metrics

    def _feed_components(self, score: np.ndarray, gt: np.ndarray) -> None:
        """The SMIYC sweep: buffer the warm-up frames, then feed every candidate threshold."""
        if self.sweep is not None:
            self.sweep.update(score, gt)
            return
        self._sweep_pending.append((score, gt))
        if len(self._sweep_pending) >= self.settings.calibration_frames:
            self._start_sweep()

    def _start_sweep(self) -> None:
        """Candidates from the pixel curve of the warm-up frames (all the pixel metric has seen so far)."""
        assert self.metrics is not None
        groups = self.metrics.pixel._groups()  # the curve's own tie groups: candidates are its levels
        cands = candidate_thresholds(*groups, self.settings.component_thresholds)
        if not cands:  # no evaluated pixel so far: these frames hold no component either
            self._sweep_pending.clear()
            return
        self.sweep = SmiycThresholdSweep(cands, min_gt_size=self.min_gt_size, min_pred_size=self.min_pred_size)
        for score, gt in self._sweep_pending:
            self.sweep.update(score, gt)
        self._sweep_pending.clear()

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
            self._feed_components(score, gt)
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
        for score, gt in self._pending:
            self._feed_components(score, gt)
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
        if self.metrics is not None and self.sweep is None and self._sweep_pending:
            self._start_sweep()
        result: dict[str, Any] = {}
        curves = None
        if self.metrics is not None:
            result['pixel'] = asdict(self.metrics.pixel.compute())
            curves = self.metrics.pixel.curves()
            result['components'] = self._components()
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

    def smiyc_protocol(self) -> str:
        """One line for the report's 'evaluated' block: track, size filters and threshold policy."""
        return (
            f'track {self.settings.track}: predicted components < {self.min_pred_size} px dropped, ground-truth '
            f'components < {self.min_gt_size} px void; threshold: pixel-F1-optimal of this run '
            f'(one pass, best of {self.settings.component_thresholds} candidates)'
        )

    def _components(self) -> dict[str, Any]:
        """report['components']: SMIYC at the pixel-F1-optimal candidate, the fixed threshold, Chan."""
        assert self.metrics is not None
        groups = self.metrics.pixel._groups()
        best_t, best_f1 = pixel_f1_optimum(*groups)
        out: dict[str, Any] = {
            'track': self.settings.track,
            'min_pred_size': self.min_pred_size,
            'min_gt_size': self.min_gt_size,
            'threshold_policy': 'pixel-F1-optimal',
            'threshold_rule': 'score >= threshold',
            'threshold': None,
            'pixel_f1_at_threshold': None,
            'pixel_f1_optimal_threshold': best_t,
            'pixel_f1_optimal': best_f1,
            'threshold_is_optimal': None,
            'threshold_candidates': list(self.sweep.thresholds) if self.sweep is not None else [],
        }
        sweep = self.sweep
        if sweep is None or best_t is None:
            out['smiyc'] = {'mean_f1': None, 'note': 'no anomaly pixel: the pixel-F1-optimal threshold is undefined'}
        else:
            f1s = [pixel_f1_at(*groups, t) or 0.0 for t in sweep.thresholds]
            pick = max(range(len(f1s)), key=lambda i: (f1s[i], sweep.thresholds[i]))  # ties: highest threshold
            chosen = sweep.thresholds[pick]
            out |= {
                'threshold': chosen,
                'pixel_f1_at_threshold': f1s[pick],
                'threshold_is_optimal': chosen == best_t,
            }
            out['smiyc'] = _smiyc_summary(sweep.metrics[pick].compute())
        if self.metrics.fixed is not None:
            out['fixed_threshold'] = {
                'threshold': self.settings.threshold,
                'threshold_rule': 'score > threshold',
                'smiyc': _smiyc_summary(self.metrics.fixed.compute()),
            }
        out['chan'] = asdict(self.metrics.chan.compute())
        return out


def _smiyc_summary(res: SmiycResult) -> dict[str, Any]:
    keys = ('mean_f1', 'mean_siou', 'mean_ppv', 'n_gt_components', 'n_pred_components', 'note')
    per_tau = dict(zip((f'{t:.2f}' for t in res.taus), np.asarray(res.f1).tolist(), strict=True))
    return {k: getattr(res, k) for k in keys} | {'f1_per_tau': per_tau}


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
