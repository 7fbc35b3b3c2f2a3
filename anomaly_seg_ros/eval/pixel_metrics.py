"""Pixel-level metrics: anomaly AP / AUROC / FPR95 (exact or binned, streaming) and dataset-wide mIoU.

Every metric is an accumulator with ``update()`` / ``compute()`` / ``reset()`` plus a functional twin
(``pixel_anomaly_metrics``, ``segmentation_iou``). Both run the same private steps, frame by frame
(``_anomaly_pairs`` -> ``_hist_add`` / exact store -> ``_curve_metrics``; ``_confusion_add`` ->
``_iou_from_confusion``), so the class and the function cannot drift apart.

Conventions (see ``anomaly_seg_ros.classes``): anomaly ground truth is uint8 HxW with 0 = in-distribution,
1 = anomaly, 255 = ignore; scores are floating HxW, higher = more anomalous; segmentation labels are
Cityscapes trainIds 0..18 with 255 = ignore. Ignored pixels never count anywhere.

Anomaly metrics (pooled over every evaluated pixel of the run, never averaged per frame)
-------------------------------------------------------------------------------------
The pixels are grouped by score, highest first; all pixels with the same score (exact mode) or in the
same bin (binned mode) form one group, as scikit-learn's ``_binary_clf_curve`` groups tied scores. With
``tps_i`` / ``fps_i`` the cumulative anomaly / in-distribution counts down to the end of group ``i``,
``P`` / ``N`` their totals:

- AP    = sum_i (pos_i / P) * tps_i / (tps_i + fps_i): the step-wise area under the precision-recall
  curve, exactly what ``sklearn.metrics.average_precision_score`` computes and the Fishyscapes benchmark
  reports (Blum et al., sec. "Metrics": AP is the primary metric because the classes are unbalanced).
- AUROC = trapezoidal area under (fps/N, tps/P) from (0, 0); a tie group contributes the trapezoid,
  i.e. tied (anomaly, in-distribution) pairs count 1/2, as ``roc_auc_score``.
- FPR95 = fps_i / N at the first group i -- scanning from high score to low -- with tps_i / P >= 0.95
  (Fishyscapes' "FPR at 95 % recall"). Every distinct threshold is scanned, i.e. the curve of
  ``roc_curve(..., drop_intermediate=False)``; dropping collinear points could skip that first crossing.

Binned mode and its error bound
-------------------------------
Binned mode keeps, per bin, the number of anomaly and in-distribution pixels over the scorer's declared
range [lo, hi] (``Scorer.score_range``): B equal-width bins, bin = floor((s - lo) * B / (hi - lo)). Scores
outside the range are clipped into the end bins AND counted: ``compute().out_of_range`` tells how many.
Binning is a monotone map of the score, so the binned curve is the exact curve with every bin merged
into one tie group; its points are a subset of the exact curve's points (the end of bin b is the exact
point at the lowest score inside b). Hence, with per-bin counts p_b (anomaly), n_b (in-distribution),
m_b = p_b + n_b and M_b the cumulative count from the top through bin b, the following hold and are
reported by ``compute()`` as ``*_error_bound`` (0 in exact mode):

- |AP_binned - AP_exact| <= sum_b (p_b / P) * (m_b - 1) / M_b.
  Each anomaly pixel contributes its precision at the end of its exact tie group, a point (t, n) of the
  exact curve with M_{b-1} < n <= M_b; binned takes the point (T_b, M_b) instead. For t' = t + dt,
  n' = n + dn with 0 <= dt <= dn: |t'/n' - t/n| = |dt*n - t*dn| / (n*n') <= dn / n' <= (m_b - 1) / M_b.
  With the mass spread evenly over the bins it is about ln(B) / B (0.7 % for B = 1024); on the
  overlapping-Gaussian test data it is ~1 % at B = 1024 while the real error is ~0.08 %. It only grows
  where pixels pile into few bins (e.g. many clipped out-of-range scores), which is what it should flag.
- |AUROC_binned - AUROC_exact| <= (1 / 2) * sum_b p_b * n_b / (P * N).
  Pairs in different bins keep their order; a pair inside one bin scores 1/2 instead of 0, 1/2 or 1.
- 0 <= FPR95_binned - FPR95_exact <= n_b* / N, b* the bin where TPR first reaches 0.95: the exact
  crossing lies inside b*, between the end of b*-1 (TPR < 0.95) and the end of b* (binned answer).

Default B = 65536 (2**16): 1 MiB of int64 counters; a per-frame ``np.bincount`` of that length costs
less than the frame's own scan (~20 ms for a 2048x1024 frame in all); a bin width of (hi - lo) / 65536
(1.5e-5 on [0, 1]) is finer than the spacing of a float16 score map (the Fishyscapes / SMIYC submission
format) everywhere above 1/64; and the AP bound is then ~2e-4 (even spread) to ~1e-3 (test Gaussians),
below the precision the benchmarks publish (0.1 percentage point).

mIoU
----
One dataset-wide CxC confusion matrix (one ``np.bincount`` per frame, summed over frames):
IoU_c = TP_c / (TP_c + FP_c + FN_c). This is the Cityscapes protocol, not a per-image average; a class
absent from both ground truth and prediction over the whole run has IoU NaN and is left out of the mean.
Predicted ids outside 0..C-1 (e.g. an extra OoD class 19 as in Chan et al. sec. 6.2, or 255) are legal:
they match no class, so they are a false negative for the ground-truth class and a false positive for
none; ``compute().n_pred_other`` counts them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..classes import ANOMALY_ID, ANOMALY_IGNORE, ANOMALY_IN_DIST, CITYSCAPES_CLASSES, IGNORE_ID, NUM_CLASSES

__all__ = [
    'Curves',
    'DEFAULT_BINS',
    'DEFAULT_MAX_EXACT_PAIRS',
    'FPR95_TPR',
    'IoUResult',
    'PixelAnomalyMetrics',
    'PixelMetricsResult',
    'SegmentationIoU',
    'pixel_anomaly_metrics',
    'segmentation_iou',
]

DEFAULT_BINS = 65536
#: exact mode stores every (score, label) pair; past this many it refuses rather than exhaust memory.
DEFAULT_MAX_EXACT_PAIRS = 50_000_000
FPR95_TPR = 0.95

Mode = Literal['binned', 'exact']
ArrayOrFrames = np.ndarray | Iterable[np.ndarray]

# The label checks below rely on this encoding: valid ids are 0..k-1, and 255 is ignore.
if (ANOMALY_IN_DIST, ANOMALY_ID, ANOMALY_IGNORE) != (0, 1, IGNORE_ID):  # pragma: no cover
    raise ImportError('anomaly ground-truth encoding changed; update eval.pixel_metrics._check_labels')


# ---------------------------------------------------------------------------------------------------
# Input validation, shared with component_metrics.
# ---------------------------------------------------------------------------------------------------


def _check_2d(arr: object, name: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 2:
        raise ValueError(f'{name} must be a 2-D HxW array, got shape {arr.shape}')
    return arr


def _check_labels(arr: object, name: str, n_valid: int, expected: str) -> tuple[np.ndarray, int]:
    """Return ``arr`` as uint8 and its number of ignore (255) pixels; reject bad dtypes and values.

    Legal values are 0..n_valid-1 and 255. Comparisons, not a histogram: a 2048x1024 frame costs ~1 ms.
    """
    arr = _check_2d(arr, name)
    if arr.dtype != np.uint8:
        if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f'{name} must be an integer label map (uint8), got dtype {arr.dtype}')
        if arr.size:
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0 or hi > 255:
                raise ValueError(f'{name} holds invalid value {lo if lo < 0 else hi}; expected {expected}')
        arr = arr.astype(np.uint8)
    bad = (arr >= n_valid) & (arr != IGNORE_ID)
    if bad.any():
        values = np.unique(arr[bad])
        shown = ', '.join(str(v) for v in values[:8])
        raise ValueError(
            f'{name} holds invalid value(s) {shown} ({int(np.count_nonzero(bad))} pixels); expected {expected}'
        )
    return arr, int(np.count_nonzero(arr == IGNORE_ID))


def _check_anomaly_gt(gt: object, name: str = 'gt') -> tuple[np.ndarray, int]:
    return _check_labels(gt, name, ANOMALY_ID + 1, '0 (in-distribution), 1 (anomaly) or 255 (ignore)')


def _check_score(score: object, name: str = 'score') -> np.ndarray:
    score = _check_2d(score, name)
    if not np.issubdtype(score.dtype, np.floating):
        raise ValueError(f'{name} must be a floating-point array, got dtype {score.dtype}')
    n_nan = int(np.count_nonzero(np.isnan(score)))
    if n_nan:
        raise ValueError(f'{name} contains {n_nan} NaN value(s); NaN has no place in a ranking')
    return score


def _check_same_shape(a: np.ndarray, a_name: str, b: np.ndarray, b_name: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f'{a_name} shape {a.shape} does not match {b_name} shape {b.shape}')


def _frames(x: ArrayOrFrames) -> Iterator[np.ndarray]:
    """One HxW array is one frame, an NxHxW array or any iterable of HxW arrays is N frames."""
    if isinstance(x, np.ndarray):
        if x.ndim == 2:
            return iter((x,))
        if x.ndim == 3:
            return iter(x)
        raise ValueError(f'expected an HxW frame or NxHxW frames, got shape {x.shape}')
    return iter(x)


def _paired_frames(
    a: ArrayOrFrames, b: ArrayOrFrames, a_name: str, b_name: str
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (a_i, b_i), raising ValueError with both counts if one side runs out first (streams)."""
    sentinel = object()
    n = 0
    for x, y in itertools.zip_longest(_frames(a), _frames(b), fillvalue=sentinel):
        if x is sentinel or y is sentinel:
            longer, shorter = (a_name, b_name) if y is sentinel else (b_name, a_name)
            raise ValueError(
                f'{a_name} and {b_name} differ in length: {shorter} ends after {n} frame(s), {longer} goes on'
            )
        n += 1
        yield x, y  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------------
# Anomaly metrics: private steps.
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PixelMetricsResult:
    """Pooled pixel-level anomaly metrics of a run.

    ap / auroc / fpr95 are NaN when undefined (no anomaly or no in-distribution pixel); ``note`` says why
    and flags degenerate inputs (all scores tied, out-of-range scores). ``*_error_bound`` bound
    |binned - exact| (see the module docstring); they are 0.0 in exact mode.
    """

    ap: float
    auroc: float
    fpr95: float
    n_pos: int
    n_neg: int
    n_ignored: int
    out_of_range: int
    mode: Mode
    note: str
    ap_error_bound: float
    auroc_error_bound: float
    fpr95_error_bound: float
    bins: int | None
    score_range: tuple[float, float] | None


@dataclass(frozen=True, eq=False)
class Curves:
    """Plot data: curve points from high threshold to low, and a score histogram (counts per edge bin)."""

    thresholds: np.ndarray
    tpr: np.ndarray
    fpr: np.ndarray
    precision: np.ndarray
    hist_edges: np.ndarray
    hist_anomaly: np.ndarray
    hist_in_dist: np.ndarray


def _check_config(mode: str, score_range: tuple[float, float] | None, bins: int) -> tuple[float, float] | None:
    if mode not in ('binned', 'exact'):
        raise ValueError(f"mode must be 'binned' or 'exact', got {mode!r}")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f'bins must be a positive integer, got {bins!r}')
    if score_range is None:
        if mode == 'binned':
            raise ValueError("binned mode needs the scorer's declared score_range=(lo, hi); or use mode='exact'")
        return None
    try:
        lo, hi = (float(v) for v in score_range)
    except (TypeError, ValueError):
        raise ValueError(f'score_range must be a pair (lo, hi), got {score_range!r}') from None
    if mode == 'binned' and not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(
            f'binned mode needs a finite score_range, got ({lo}, {hi}): the scorer is unbounded, so declare '
            "the range you calibrated (scores beyond it are clipped and counted) or use mode='exact'"
        )
    if not lo < hi:
        raise ValueError(f'score_range must have lo < hi, got ({lo}, {hi})')
    return lo, hi


def _anomaly_pairs(score: object, gt: object) -> tuple[np.ndarray, np.ndarray, int]:
    """Validate one frame and return (scores of evaluated pixels, their anomaly labels, n ignored)."""
    score = _check_score(score)
    gt, n_ignored = _check_anomaly_gt(gt)
    _check_same_shape(score, 'score', gt, 'gt')
    if n_ignored:
        valid = gt != ANOMALY_IGNORE
        return score[valid], gt[valid] == ANOMALY_ID, n_ignored
    return score.ravel(), gt.ravel() == ANOMALY_ID, 0


def _count_out_of_range(scores: np.ndarray, score_range: tuple[float, float] | None) -> int:
    if score_range is None:
        return 0
    lo, hi = score_range
    return int(np.count_nonzero(scores < lo)) + int(np.count_nonzero(scores > hi))


def _hist_add(hist: np.ndarray, scores: np.ndarray, labels: np.ndarray, score_range: tuple[float, float]) -> None:
    """Add one frame to ``hist`` (2xB: row 0 in-distribution, row 1 anomaly); clipped into the end bins.

    float16/float32 scores are binned in float32 arithmetic (twice as fast on a 2 Mpixel frame); every
    step is a rounded monotone map, so the binning stays monotone and the documented bounds still hold.
    """
    bins = hist.shape[1]
    lo, hi = score_range
    work = np.float64 if scores.dtype.itemsize > 4 else np.float32
    t: np.ndarray = scores.astype(work)  # float64 or float32, chosen at runtime
    t -= work(lo)
    t *= work(bins / (hi - lo))
    np.clip(t, 0, bins - 1, out=t)  # also maps +-inf to the end bins; truncation below is then floor
    idx = t.astype(np.intp)
    pos = np.bincount(idx[labels], minlength=bins)
    hist[1] += pos
    hist[0] += np.bincount(idx, minlength=bins) - pos


def _exact_counts(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per distinct score, ascending: (anomaly count, in-distribution count)."""
    if scores.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    uniq, inverse = np.unique(scores, return_inverse=True)
    total = np.bincount(inverse, minlength=uniq.size)
    pos = np.bincount(inverse[labels], minlength=uniq.size)
    return pos, total - pos


def _curve_metrics(pos_desc: np.ndarray, neg_desc: np.ndarray, binned: bool) -> dict[str, float]:
    """AP, AUROC, FPR95 and the binned error bounds from per-group counts ordered high score to low.

    Groups with no pixel (empty bins) are dropped first: they add no curve point. P > 0 and N > 0.
    """
    keep = (pos_desc + neg_desc) > 0
    pos = pos_desc[keep].astype(np.int64)
    neg = neg_desc[keep].astype(np.int64)
    tps = np.cumsum(pos)
    fps = np.cumsum(neg)
    n_p, n_n = float(tps[-1]), float(fps[-1])
    seen = (tps + fps).astype(np.float64)
    precision = tps / seen
    ap = float(np.sum(pos * precision) / n_p)
    # Trapezoid on (fps/N, tps/P) from (0, 0): each group adds neg_i * (tps_{i-1} + tps_i) / 2.
    auroc = float(np.sum(neg * (2.0 * tps - pos)) / (2.0 * n_p * n_n))
    cross = int(np.argmax(tps / n_p >= FPR95_TPR))  # the last group has TPR 1, so a crossing exists
    fpr95 = float(fps[cross] / n_n)
    bounds = {'ap_error_bound': 0.0, 'auroc_error_bound': 0.0, 'fpr95_error_bound': 0.0}
    if binned:
        bounds = {
            'ap_error_bound': float(np.sum(pos * ((pos + neg - 1) / seen)) / n_p),
            'auroc_error_bound': float(0.5 * np.sum(pos.astype(np.float64) * neg) / (n_p * n_n)),
            'fpr95_error_bound': float(neg[cross] / n_n),
        }
    return {'ap': ap, 'auroc': auroc, 'fpr95': fpr95, 'n_groups': int(pos.size), **bounds}


def _finalize(
    pos_asc: np.ndarray,
    neg_asc: np.ndarray,
    *,
    mode: Mode,
    n_ignored: int,
    out_of_range: int,
    bins: int | None,
    score_range: tuple[float, float] | None,
) -> PixelMetricsResult:
    n_pos, n_neg = int(pos_asc.sum()), int(neg_asc.sum())
    notes: list[str] = []
    nan = float('nan')
    values = {
        'ap': nan,
        'auroc': nan,
        'fpr95': nan,
        'ap_error_bound': nan,
        'auroc_error_bound': nan,
        'fpr95_error_bound': nan,
    }
    if n_pos + n_neg == 0:
        notes.append('no evaluated pixel (no frame, or every pixel ignored): AP, AUROC and FPR95 undefined')
    elif n_pos == 0:
        notes.append('no anomaly pixel (gt == 1): AP, AUROC and FPR95 undefined')
    elif n_neg == 0:
        notes.append('no in-distribution pixel (gt == 0): AUROC and FPR95 undefined, AP trivially 1, all reported NaN')
    else:
        curve = _curve_metrics(pos_asc[::-1], neg_asc[::-1], binned=mode == 'binned')
        values.update({k: v for k, v in curve.items() if k != 'n_groups'})
        if curve['n_groups'] == 1:
            where = 'fall in one bin' if mode == 'binned' else 'are tied'
            notes.append(
                f'all evaluated scores {where}: the ranking carries no information '
                '(AP = anomaly fraction, AUROC = 0.5, FPR95 = 1)'
            )
    if out_of_range:
        lo, hi = score_range  # type: ignore[misc]
        action = 'clipped into the end bins and counted' if mode == 'binned' else 'counted as they are'
        notes.append(f'{out_of_range} evaluated score(s) outside the declared range [{lo:g}, {hi:g}] were {action}')
    return PixelMetricsResult(
        n_pos=n_pos,
        n_neg=n_neg,
        n_ignored=n_ignored,
        out_of_range=out_of_range,
        mode=mode,
        note='; '.join(notes),
        bins=bins,
        score_range=score_range,
        **values,
    )


# ---------------------------------------------------------------------------------------------------
# Anomaly metrics: public API.
# ---------------------------------------------------------------------------------------------------


class PixelAnomalyMetrics:
    """Streaming pixel-level AP, AUROC and FPR95 pooled over every evaluated pixel of a run.

    mode='binned' (default): fixed memory, 2 x ``bins`` int64 counters over the declared
    ``score_range``; error bounds against exact are reported by ``compute()``. mode='exact': keeps every
    (score, label) pair and matches scikit-learn to float rounding; for checks on small data only, hence
    the ``max_exact_pairs`` guard (None disables it). In exact mode ``score_range`` is optional and only
    used to count out-of-range scores.
    """

    def __init__(
        self,
        mode: Mode = 'binned',
        *,
        score_range: tuple[float, float] | None = None,
        bins: int = DEFAULT_BINS,
        max_exact_pairs: int | None = DEFAULT_MAX_EXACT_PAIRS,
    ) -> None:
        self.score_range = _check_config(mode, score_range, bins)
        self.mode: Mode = mode
        self.bins = int(bins)
        self.max_exact_pairs = max_exact_pairs
        self.reset()

    def reset(self) -> None:
        """Forget every frame seen so far."""
        self._hist = np.zeros((2, self.bins), dtype=np.int64) if self.mode == 'binned' else None
        self._scores: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self._n_exact = 0
        self.n_ignored = 0
        self.out_of_range = 0
        self.n_frames = 0

    def update(self, score: np.ndarray, gt: np.ndarray) -> None:
        """Add one frame: ``score`` floating HxW, ``gt`` uint8 HxW in {0, 1, 255}."""
        scores, labels, n_ignored = _anomaly_pairs(score, gt)
        out_of_range = _count_out_of_range(scores, self.score_range)
        if self._hist is not None:
            _hist_add(self._hist, scores, labels, self.score_range)  # type: ignore[arg-type]
        else:
            if self.max_exact_pairs is not None and self._n_exact + scores.size > self.max_exact_pairs:
                raise ValueError(
                    f'exact mode would hold {self._n_exact + scores.size} pairs, over max_exact_pairs='
                    f"{self.max_exact_pairs}; use mode='binned' for full runs"
                )
            self._scores.append(scores.copy())  # a copy: a view would pin the caller's whole frame
            self._labels.append(labels)
            self._n_exact += scores.size
        self.n_ignored += n_ignored
        self.out_of_range += out_of_range
        self.n_frames += 1

    def _groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per tie group (bin or distinct score), ascending: anomaly counts, in-distribution counts, score."""
        if self._hist is not None:
            lo, hi = self.score_range  # type: ignore[misc]
            edges = lo + (hi - lo) * np.arange(self.bins) / self.bins
            return self._hist[1], self._hist[0], edges
        scores = np.concatenate(self._scores) if self._scores else np.zeros(0, np.float64)
        labels = np.concatenate(self._labels) if self._labels else np.zeros(0, bool)
        pos, neg = _exact_counts(scores, labels)
        return pos, neg, np.unique(scores)

    def compute(self) -> PixelMetricsResult:
        """Metrics over every frame since the last reset (the state is kept; call reset() to clear)."""
        pos, neg, _ = self._groups()
        bins = self.bins if self._hist is not None else None
        return _finalize(
            pos,
            neg,
            mode=self.mode,
            n_ignored=self.n_ignored,
            out_of_range=self.out_of_range,
            bins=bins,
            score_range=self.score_range,
        )

    def curves(self, max_points: int = 400, hist_bins: int = 64) -> Curves:
        """PR and ROC curve points (at most ``max_points``, evenly subsampled, ends kept) and a coarse
        score histogram of anomaly vs in-distribution pixels, for plots. Empty arrays if P or N is 0."""
        pos, neg, score = self._groups()
        keep = (pos + neg) > 0
        pos, neg, score = pos[keep][::-1], neg[keep][::-1], score[keep][::-1]  # high score first
        tps, fps = np.cumsum(pos), np.cumsum(neg)
        if pos.size == 0 or tps[-1] == 0 or fps[-1] == 0:
            empty = np.zeros(0)
            return Curves(empty, empty, empty, empty, empty, empty, empty)
        idx = np.unique(np.linspace(0, pos.size - 1, min(max_points, pos.size)).round().astype(np.intp))
        tpr = tps[idx] / tps[-1]
        fpr = fps[idx] / fps[-1]
        precision = tps[idx] / (tps[idx] + fps[idx])
        lo, hi = float(score[-1]), float(score[0])
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, hist_bins + 1)
        which = np.clip(np.searchsorted(edges, score, side='right') - 1, 0, hist_bins - 1)
        hist_pos = np.bincount(which, weights=pos, minlength=hist_bins)
        hist_neg = np.bincount(which, weights=neg, minlength=hist_bins)
        return Curves(score[idx], tpr, fpr, precision, edges, hist_pos, hist_neg)


def pixel_anomaly_metrics(
    scores: ArrayOrFrames,
    gts: ArrayOrFrames,
    mode: Mode = 'exact',
    *,
    score_range: tuple[float, float] | None = None,
    bins: int = DEFAULT_BINS,
    max_exact_pairs: int | None = DEFAULT_MAX_EXACT_PAIRS,
) -> PixelMetricsResult:
    """One-shot twin of :class:`PixelAnomalyMetrics` (same steps, frame by frame).

    ``scores`` / ``gts``: one HxW frame, NxHxW, or an iterable of HxW frames (consumed lazily). The
    default mode here is 'exact' since one-shot calls are for small data; pass mode='binned' and
    score_range for large runs.
    """
    acc = PixelAnomalyMetrics(mode, score_range=score_range, bins=bins, max_exact_pairs=max_exact_pairs)
    for score, gt in _paired_frames(scores, gts, 'scores', 'gts'):
        acc.update(score, gt)
    return acc.compute()


# ---------------------------------------------------------------------------------------------------
# mIoU from a dataset-wide confusion matrix.
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class IoUResult:
    """Dataset-wide IoU: ``confusion[g, p]`` counts pixels of ground-truth class g predicted as p.

    ``per_class_iou`` is NaN for classes absent from both ground truth and prediction; ``miou`` is the
    mean over the others (NaN if none). ``n_pred_other``: evaluated pixels predicted outside 0..C-1.
    """

    miou: float
    per_class_iou: np.ndarray
    confusion: np.ndarray
    class_names: tuple[str, ...]
    n_pixels: int
    n_ignored: int
    n_pred_other: int
    note: str


def _check_num_classes(num_classes: int) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or not 1 <= num_classes <= 255:
        raise ValueError(f'num_classes must be an integer in 1..255 (255 is the ignore id), got {num_classes!r}')
    return int(num_classes)


def _confusion_add(confusion: np.ndarray, pred: object, gt: object) -> tuple[int, int]:
    """Add one frame to ``confusion`` (C x (C+1); the last column = predicted outside 0..C-1).

    Returns (n ignored, n predicted outside 0..C-1) for the frame.
    """
    n_cls = confusion.shape[0]
    gt, n_ignored = _check_labels(gt, 'gt', n_cls, f'a class id 0..{n_cls - 1} or {IGNORE_ID} (ignore)')
    pred = _check_2d(pred, 'pred')
    if pred.dtype == np.bool_ or not np.issubdtype(pred.dtype, np.integer):
        raise ValueError(f'pred must be an integer class-id map, got dtype {pred.dtype}')
    _check_same_shape(pred, 'pred', gt, 'gt')
    if n_ignored:
        valid = gt != IGNORE_ID
        g, p = gt[valid], pred[valid]
    else:
        g, p = gt.ravel(), pred.ravel()
    p = p.astype(np.int64)
    other = (p < 0) | (p >= n_cls)
    p[other] = n_cls
    confusion += np.bincount(g.astype(np.int64) * (n_cls + 1) + p, minlength=n_cls * (n_cls + 1)).reshape(
        n_cls, n_cls + 1
    )
    return n_ignored, int(np.count_nonzero(other))


def _iou_from_confusion(confusion: np.ndarray, n_ignored: int, class_names: tuple[str, ...]) -> IoUResult:
    n_cls = confusion.shape[0]
    square = confusion[:, :n_cls]
    tp = np.diag(square).astype(np.float64)
    gt_count = confusion.sum(axis=1)  # includes pixels predicted as no class
    pred_count = square.sum(axis=0)
    union = (gt_count + pred_count).astype(np.float64) - tp
    iou = np.full(n_cls, np.nan)
    present = union > 0
    iou[present] = tp[present] / union[present]
    miou = float(iou[present].mean()) if present.any() else float('nan')
    absent = [class_names[i] for i in np.flatnonzero(~present)]
    note = ''
    if not present.any():
        note = 'no evaluated pixel: mIoU undefined'
    elif absent:
        note = f'classes absent from ground truth and prediction (IoU NaN, excluded from the mean): {", ".join(absent)}'
    return IoUResult(
        miou=miou,
        per_class_iou=iou,
        confusion=square.copy(),
        class_names=class_names,
        n_pixels=int(confusion.sum()),
        n_ignored=n_ignored,
        n_pred_other=int(confusion[:, n_cls].sum()),
        note=note,
    )


class SegmentationIoU:
    """Streaming per-class IoU and mIoU over a dataset-wide confusion matrix (Cityscapes trainIds)."""

    def __init__(self, num_classes: int = NUM_CLASSES, class_names: Sequence[str] | None = None) -> None:
        self.num_classes = _check_num_classes(num_classes)
        if class_names is None:
            default = CITYSCAPES_CLASSES if self.num_classes == NUM_CLASSES else None
            class_names = default or [str(i) for i in range(self.num_classes)]
        if len(class_names) != self.num_classes:
            raise ValueError(f'{len(class_names)} class names for num_classes={self.num_classes}')
        self.class_names = tuple(class_names)
        self.reset()

    def reset(self) -> None:
        """Forget every frame seen so far."""
        self._confusion = np.zeros((self.num_classes, self.num_classes + 1), dtype=np.int64)
        self.n_ignored = 0
        self.n_frames = 0

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Add one frame: ``pred`` integer HxW class ids, ``gt`` HxW in 0..C-1 or 255."""
        n_ignored, _ = _confusion_add(self._confusion, pred, gt)
        self.n_ignored += n_ignored
        self.n_frames += 1

    def compute(self) -> IoUResult:
        return _iou_from_confusion(self._confusion, self.n_ignored, self.class_names)


def segmentation_iou(
    preds: ArrayOrFrames,
    gts: ArrayOrFrames,
    num_classes: int = NUM_CLASSES,
    class_names: Sequence[str] | None = None,
) -> IoUResult:
    """One-shot twin of :class:`SegmentationIoU`; frames as in :func:`pixel_anomaly_metrics`."""
    acc = SegmentationIoU(num_classes, class_names)
    for pred, gt in _paired_frames(preds, gts, 'preds', 'gts'):
        acc.update(pred, gt)
    return acc.compute()
