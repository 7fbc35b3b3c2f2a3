"""Component-level anomaly metrics: SegmentMeIfYouCan (sIoU, PPV, mean F1) and Chan et al. segment errors.

Both stream: ``update(score or bool mask, gt)`` per frame keeps only per-component numbers (SMIYC) or
counts (Chan), so memory grows with the number of components, never with pixels. Each has a functional
twin running the same private per-frame step (``_smiyc_frame`` / ``_chan_frame``) and finaliser.
Components are 8-connected (``scipy.ndimage.label`` with a 3x3 structure) in both, as in the reference
implementations (SMIYC: the same call; meta-ood: 8-neighbour search). Both have a mergeable state:
``merge(other)``, ``state_dict()`` / ``load_state_dict()`` (see the end of this docstring).

Ground truth: uint8 HxW, 0 in-distribution, 1 anomaly, 255 ignore. A prediction is either a bool HxW
mask or a floating HxW score plus the accumulator's ``threshold``.

SegmentMeIfYouCan (Chan, Lis, Uhlemeyer, Blum, Honari, Siegwart, Fua, Salzmann, Rottmann, NeurIPS 2021
Datasets & Benchmarks, sec. 4 "component-level metrics")
-----------------------------------------------------------------------------------------------------
Let K be the ground-truth anomaly components (8-connected components of gt == 1), K^ the predicted
components (8-connected components of the prediction), all restricted to the region of interest
(ROI, see below).

- sIoU(k) = |k ∩ K^(k)| / |(k ∪ K^(k)) \\ A(k)| for k in K, where K^(k) is the union of the predicted
  components that intersect k and A(k) the union of all *other* ground-truth components: a prediction
  covering two adjacent objects is not penalised, in the union of one, for the pixels of the other.
- PPV(k^) = |k^ ∩ K(k^)| / |k^| for k^ in K^, K(k^) the union of the ground-truth components that
  intersect k^ (i.e. the share of k^'s ROI pixels that are anomaly pixels).
- For a threshold τ: TP(τ) = #{k : sIoU(k) >= τ}, FN(τ) = #{k : sIoU(k) < τ}, FP(τ) = #{k^ : PPV(k^) < τ},
  F1(τ) = 2 TP / (2 TP + FN + FP); mean F1 = average of F1(τ) over τ = 0.25, 0.30, ..., 0.75 (11 values).
  Counts are summed over all frames before F1 is formed. mean sIoU / mean PPV average over all
  components of the run (the benchmark's "sIoU gt" and "PPV" columns).
- Prediction from a score: score > threshold (strict, as the benchmark's instancer), or score >= threshold
  with ``inclusive=True`` -- what the evaluator uses at a pixel-curve threshold, whose rule is ">=" (a
  strict comparison at a tied score level would drop the whole level the pixel F1 was computed with).

These follow the official code (github.com/SegmentMeIfYouCan/road-anomaly-benchmark,
``road_anomaly_benchmark/metrics/instance_segmentation.py``: ``default_instancer`` and
``segment_metrics``; the comparisons are ``sIoU_gt >= t`` and ``prec_pred < t``), also where the paper is
silent:

- Ignore: predicted pixels on gt == 255 are dropped *before* components are formed, so they count in no
  PPV denominator and no sIoU union (a prediction crossing an ignore strip can become two components).
- ``min_pred_size``: predicted components with fewer pixels (after the ignore removal, before the small
  ground-truth components are voided) are discarded.
- ``min_gt_size``: ground-truth components with fewer pixels become ignore: they count neither as TP nor
  FN, and prediction pixels on them leave the ROI (they do not enter PPV). The benchmark uses
  (min_gt_size, min_pred_size) = (100, 500) for the anomaly track, (10, 50) for the obstacle track
  (:data:`SMIYC_TRACKS`); the defaults of this class are 0 (no filtering), the evaluator's ``--track``
  picks a preset.
- Not reproduced: the benchmark also reports a mean "sIoU of the predictions" (``sIoU_pred``), used by no
  F1; it is left out here.
- The threshold on the score is not part of this metric: the benchmark takes the pixel-F1-optimal
  threshold of the same run (an oracle). :class:`SmiycThresholdSweep` keeps one metric per candidate
  threshold so that a single pass over the frames can report it; ``eval.accumulate`` picks the candidate.

Chan, Rottmann, Gottschalk, "Entropy Maximization and Meta Classification for Out-of-Distribution
Detection in Semantic Segmentation" (ICCV 2021), sections 3.2, 4 and 7
-----------------------------------------------------------------------------------------------------
- OoD prediction, eq. (5): pixel z is predicted OoD if score(z) >= t (non-strict). A connected
  component of predicted-OoD pixels is an OoD segment (sec. 3.2).
- TP / FP, eq. (6)-(7): a predicted segment k is TP if IoU(k, Z_out) > 0, i.e. it contains at least one
  ground-truth OoD pixel; otherwise (IoU = 0) it is FP. "We treat every single pixel as a potential road
  hazard" (sec. 4): no higher IoU threshold.
- FN (sec. 7, "numbers of FPs and FNs with respect to an OoD object prediction, cf. eq. (6)"): a
  ground-truth OoD component (8-connected component of gt == 1) that no predicted OoD pixel touches --
  the paper gives no formula; this is what its code (github.com/robin-chan/meta-ood,
  ``meta_classification.py``, ``remove()``) counts.
- F1 = 2 TP / (2 TP + FP + FN) (sec. 7) with TP counted over *predicted* segments as in eq. (7). (Counting
  TP as detected ground-truth objects instead cannot reproduce Table 2: with FN = 1511 and F1 = 0.16 at
  t = 0.7 there would be ~1650 objects, giving F1 ~0.48, not 0.69, at t = 0.6.) The number of detected
  ground-truth components is reported too (``n_gt_detected``).
- Road miss rate, eq. (8): ε = 1 - |∪ (Ẑ_in ∩ Z_in)| / |∪ Z_in| over the whole dataset, i.e. the share
  of ground-truth in-distribution pixels (gt == 0) predicted OoD. On LostAndFound / SMIYC-obstacle the
  in-distribution label is the road, hence the name; on other data it is the in-distribution miss rate.
- Ignore: OoD predictions on gt == 255 are removed before segments are formed ("OoD predictions in the
  background according to the ground truth are ignored", fig. 7; meta-ood: ``seg[gt == 255] = 0``).

Merging and state
-----------------
``merge(other)`` combines metrics fed disjoint frames: SMIYC appends the per-component sIoU / PPV / sizes,
Chan adds its six counts; thresholds, size filters and τ must match. ``state_dict()`` holds plain values
and numpy arrays (``np.savez``, Ray), ``load_state_dict()`` checks keys, shapes and configuration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from ..classes import ANOMALY_ID, ANOMALY_IGNORE, ANOMALY_IN_DIST
from .checks import (
    STATE_VERSION,
    ArrayOrFrames,
    check_2d,
    check_anomaly_gt,
    check_same_shape,
    merge_mismatch,
    optional_float,
    paired_frames,
    state_array,
    state_floats,
    state_int,
    state_keys,
)

__all__ = [
    'SMIYC_TAUS',
    'SMIYC_TRACKS',
    'ChanSegmentMetrics',
    'ChanSegmentResult',
    'SmiycComponentMetrics',
    'SmiycResult',
    'SmiycThresholdSweep',
    'chan_segment_metrics',
    'smiyc_component_metrics',
]

#: τ = 0.25, 0.30, ..., 0.75, rounded so that e.g. 0.3 is the same float as a ratio 3/10.
SMIYC_TAUS: tuple[float, ...] = tuple(round(0.25 + 0.05 * i, 2) for i in range(11))
#: the benchmark's size filters per track: (min_pred_size, min_gt_size) in pixels (``MetricSegment.configs``).
SMIYC_TRACKS: dict[str, tuple[int, int]] = {'anomaly': (500, 100), 'obstacle': (50, 10)}
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


# ---------------------------------------------------------------------------------------------------
# Shared steps.
# ---------------------------------------------------------------------------------------------------


def _check_threshold(threshold: float | None) -> float | None:
    if threshold is None:
        return None
    threshold = float(threshold)
    if np.isnan(threshold):
        raise ValueError('threshold must not be NaN')
    return threshold


def _check_min_size(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f'{name} must be a non-negative integer, got {value!r}')
    return int(value)


def _prediction_and_gt(
    pred: object, gt: object, threshold: float | None, strict: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Validate one frame; return (bool prediction mask with ignore pixels removed, uint8 gt)."""
    pred = check_2d(pred, 'pred')
    gt, _ = check_anomaly_gt(gt)
    check_same_shape(pred, 'pred', gt, 'gt')
    if pred.dtype == np.bool_:
        mask = pred
    elif np.issubdtype(pred.dtype, np.floating):
        if threshold is None:
            raise ValueError('pred is a float score but the metric has no threshold; pass threshold= or a bool mask')
        n_nan = int(np.count_nonzero(np.isnan(pred)))
        if n_nan:
            raise ValueError(f'pred contains {n_nan} NaN value(s)')
        mask = pred > threshold if strict else pred >= threshold
    else:
        raise ValueError(f'pred must be a bool mask or a floating-point score, got dtype {pred.dtype}')
    return mask & (gt != ANOMALY_IGNORE), gt


def _components(mask: np.ndarray) -> tuple[int, np.ndarray]:
    """8-connected components: (number of labels incl. background 0, int32 label map)."""
    labels, n = ndimage.label(mask, structure=_EIGHT_CONNECTED)
    return int(n) + 1, labels


def _drop_labels(labels: np.ndarray, drop: np.ndarray) -> np.ndarray:
    """Relabel the components flagged in ``drop`` (indexed by label, drop[0] ignored) to background."""
    lut = np.arange(drop.size, dtype=labels.dtype)
    lut[drop] = 0
    return lut[labels]


# ---------------------------------------------------------------------------------------------------
# SegmentMeIfYouCan.
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SmiycResult:
    """SMIYC component metrics of a run; per-τ arrays are aligned with ``taus``.

    f1 / mean_f1 are NaN when a run has neither ground-truth nor predicted components; mean_siou
    (mean_ppv) is NaN without ground-truth (predicted) components; ``note`` says which.
    """

    mean_f1: float
    mean_siou: float
    mean_ppv: float
    taus: tuple[float, ...]
    tp: np.ndarray
    fn: np.ndarray
    fp: np.ndarray
    f1: np.ndarray
    siou: np.ndarray
    ppv: np.ndarray
    gt_sizes: np.ndarray
    pred_sizes: np.ndarray
    n_gt_components: int
    n_pred_components: int
    n_frames: int
    note: str

    def f1_at(self, tau: float) -> float:
        """F1 at one of ``taus`` (e.g. 0.5)."""
        for t, f in zip(self.taus, self.f1, strict=True):
            if abs(t - tau) < 1e-9:
                return float(f)
        raise ValueError(f'tau {tau} is not one of {self.taus}')


@dataclass(frozen=True, eq=False)
class _GtFrame:
    """One frame's ground-truth side, shared by every threshold of a sweep: labels, ROI and ROI labels."""

    n_gt: int
    roi: np.ndarray  # bool HxW: not ignore and not on a too-small GT component
    g: np.ndarray  # GT label of each ROI pixel (0: in-distribution)
    gt_size: np.ndarray  # ROI pixels per GT label


def _gt_frame(gt: np.ndarray, min_gt_size: int) -> _GtFrame:
    n_gt, gt_lab = _components(gt == ANOMALY_ID)
    roi = gt != ANOMALY_IGNORE
    if min_gt_size and n_gt > 1:
        small = np.bincount(gt_lab.ravel(), minlength=n_gt) < min_gt_size
        small[0] = False
        if small.any():
            roi &= ~small[gt_lab]
            gt_lab = _drop_labels(gt_lab, small)
    g = gt_lab[roi]
    return _GtFrame(n_gt, roi, g, np.bincount(g, minlength=n_gt))


def _smiyc_frame(
    mask: np.ndarray, gt: np.ndarray | _GtFrame, min_gt_size: int, min_pred_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(sIoU per GT component, PPV per predicted component, their ROI sizes) for one frame.

    ``mask`` already has the ignore pixels removed; ``gt`` is the uint8 map or its prepared
    :class:`_GtFrame` (a sweep labels the ground truth once for all its thresholds). All per-component
    sums come from bincounts over the ROI and from the list of overlapping (GT, prediction) pairs, so the
    cost is O(pixels + pairs).
    """
    prep = gt if isinstance(gt, _GtFrame) else _gt_frame(gt, min_gt_size)
    n_gt, g, gt_size = prep.n_gt, prep.g, prep.gt_size
    n_pr, pr_lab = _components(mask)
    if min_pred_size and n_pr > 1:
        small = np.bincount(pr_lab.ravel(), minlength=n_pr) < min_pred_size
        small[0] = False
        if small.any():
            pr_lab = _drop_labels(pr_lab, small)
    p = pr_lab[prep.roi]
    pr_size = np.bincount(p, minlength=n_pr)
    in_gt = g > 0
    pr_in_gt = np.bincount(p[in_gt], minlength=n_pr)  # |k^ ∩ K(k^)|: every GT pixel of k^ is in K(k^)
    both = in_gt & (p > 0)
    pairs, overlap = np.unique(g[both].astype(np.int64) * n_pr + p[both], return_counts=True)
    pg, pp = pairs // n_pr, pairs % n_pr
    # Per GT component k: |k ∩ K^(k)|, |K^(k)| and |K^(k) ∩ A(k)| summed over the predictions touching k.
    inter = np.bincount(pg, weights=overlap, minlength=n_gt)
    pred_union = np.bincount(pg, weights=pr_size[pp], minlength=n_gt)
    other_gt = np.bincount(pg, weights=pr_in_gt[pp] - overlap, minlength=n_gt)
    keep_gt = np.flatnonzero(gt_size > 0)
    keep_gt = keep_gt[keep_gt > 0]
    union = gt_size[keep_gt] + pred_union[keep_gt] - inter[keep_gt] - other_gt[keep_gt]
    siou = inter[keep_gt] / union
    keep_pr = np.flatnonzero(pr_size > 0)
    keep_pr = keep_pr[keep_pr > 0]  # a prediction lying wholly on small GT components left the ROI
    ppv = pr_in_gt[keep_pr] / pr_size[keep_pr]
    return siou, ppv, gt_size[keep_gt], pr_size[keep_pr]


def _smiyc_finalize(
    sious: list[np.ndarray],
    ppvs: list[np.ndarray],
    gt_sizes: list[np.ndarray],
    pred_sizes: list[np.ndarray],
    taus: tuple[float, ...],
    n_frames: int,
) -> SmiycResult:
    siou = np.concatenate(sious) if sious else np.zeros(0)
    ppv = np.concatenate(ppvs) if ppvs else np.zeros(0)
    t = np.asarray(taus, dtype=np.float64)[:, None]
    tp = np.count_nonzero(siou[None, :] >= t, axis=1)  # the benchmark: sIoU_gt >= t
    fn = siou.size - tp
    fp = np.count_nonzero(ppv[None, :] < t, axis=1)  # the benchmark: prec_pred < t
    denom = 2 * tp + fn + fp
    f1 = np.full(len(taus), np.nan)
    f1[denom > 0] = 2 * tp[denom > 0] / denom[denom > 0]
    notes = []
    if siou.size == 0 and ppv.size == 0:
        notes.append('no ground-truth and no predicted component: F1 undefined')
    elif siou.size == 0:
        notes.append('no ground-truth component: mean sIoU undefined, every prediction is FP')
    elif ppv.size == 0:
        notes.append('no predicted component: mean PPV undefined, every ground-truth component is FN')
    return SmiycResult(
        mean_f1=float(f1.mean()) if denom.all() else float('nan'),
        mean_siou=float(siou.mean()) if siou.size else float('nan'),
        mean_ppv=float(ppv.mean()) if ppv.size else float('nan'),
        taus=taus,
        tp=tp,
        fn=fn,
        fp=fp,
        f1=f1,
        siou=siou,
        ppv=ppv,
        gt_sizes=np.concatenate(gt_sizes) if gt_sizes else np.zeros(0, np.int64),
        pred_sizes=np.concatenate(pred_sizes) if pred_sizes else np.zeros(0, np.int64),
        n_gt_components=int(siou.size),
        n_pred_components=int(ppv.size),
        n_frames=n_frames,
        note='; '.join(notes),
    )


class SmiycComponentMetrics:
    """Streaming SegmentMeIfYouCan component metrics (sIoU, PPV, F1 per τ, mean F1); see module docstring.

    ``threshold``: predicted anomaly where score > threshold (float inputs), score >= threshold with
    ``inclusive``; bool masks are used as given.
    """

    def __init__(
        self,
        threshold: float | None = None,
        *,
        min_gt_size: int = 0,
        min_pred_size: int = 0,
        taus: Sequence[float] = SMIYC_TAUS,
        inclusive: bool = False,
    ) -> None:
        self.threshold = _check_threshold(threshold)
        if not isinstance(inclusive, bool):
            raise ValueError(f'inclusive must be True or False, got {inclusive!r}')
        self.inclusive = inclusive
        self.min_gt_size = _check_min_size(min_gt_size, 'min_gt_size')
        self.min_pred_size = _check_min_size(min_pred_size, 'min_pred_size')
        self.taus = tuple(float(t) for t in taus)
        if not self.taus or not all(0.0 <= t < 1.0 for t in self.taus):
            raise ValueError(f'taus must be a non-empty sequence in [0, 1), got {taus!r}')
        self.reset()

    def reset(self) -> None:
        """Forget every frame seen so far."""
        self._siou: list[np.ndarray] = []
        self._ppv: list[np.ndarray] = []
        self._gt_sizes: list[np.ndarray] = []
        self._pred_sizes: list[np.ndarray] = []
        self.n_frames = 0

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Add one frame: ``pred`` bool mask or float score (needs ``threshold``), ``gt`` in {0, 1, 255}."""
        mask, gt = _prediction_and_gt(pred, gt, self.threshold, strict=not self.inclusive)
        self._add(_smiyc_frame(mask, gt, self.min_gt_size, self.min_pred_size))

    def _add(self, frame: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> None:
        siou, ppv, gt_size, pred_size = frame
        self._siou.append(siou)
        self._ppv.append(ppv)
        self._gt_sizes.append(gt_size)
        self._pred_sizes.append(pred_size)
        self.n_frames += 1

    def compute(self) -> SmiycResult:
        return _smiyc_finalize(self._siou, self._ppv, self._gt_sizes, self._pred_sizes, self.taus, self.n_frames)

    # -- merge and state -------------------------------------------------------------------------------

    _STATE_KEYS = (
        'metric',
        'version',
        'threshold',
        'inclusive',
        'min_gt_size',
        'min_pred_size',
        'taus',
        'siou',
        'ppv',
        'gt_sizes',
        'pred_sizes',
        'n_frames',
    )

    def _config(self) -> dict[str, Any]:
        return {
            'threshold': self.threshold,
            'inclusive': self.inclusive,
            'min_gt_size': self.min_gt_size,
            'min_pred_size': self.min_pred_size,
            'taus': self.taus,
        }

    def _check_compatible(self, config: Mapping[str, Any]) -> None:
        for key, mine in self._config().items():
            if config[key] != mine:
                raise merge_mismatch('SmiycComponentMetrics', key, mine, config[key])

    def merge(self, other: SmiycComponentMetrics) -> None:
        """Append ``other``'s components to this metric, in place (``other`` is left as it is).

        Per-component arrays keep merge order: merge parts in frame order to reproduce one pass bit for
        bit (the TP / FN / FP counts and F1 do not depend on the order; the means may differ in the
        last bit).
        """
        if not isinstance(other, SmiycComponentMetrics):
            raise ValueError(f'cannot merge a {type(other).__name__} into a SmiycComponentMetrics')
        self._check_compatible(other._config())
        self._siou.extend(other._siou)
        self._ppv.extend(other._ppv)
        self._gt_sizes.extend(other._gt_sizes)
        self._pred_sizes.extend(other._pred_sizes)
        self.n_frames += other.n_frames

    def state_dict(self) -> dict[str, Any]:
        """Configuration and per-component values as plain values and 1-D numpy arrays (np.savez-safe).

        ``threshold`` is [t], or [] for a metric fed bool masks only; ``inclusive`` 1 for the >= rule.
        """
        return {
            'metric': 'SmiycComponentMetrics',
            'version': STATE_VERSION,
            'threshold': optional_float(self.threshold),
            'inclusive': int(self.inclusive),  # 0 / 1: a plain int survives np.savez and JSON alike
            'min_gt_size': self.min_gt_size,
            'min_pred_size': self.min_pred_size,
            'taus': list(self.taus),
            'siou': np.concatenate(self._siou) if self._siou else np.zeros(0, np.float64),
            'ppv': np.concatenate(self._ppv) if self._ppv else np.zeros(0, np.float64),
            'gt_sizes': np.concatenate(self._gt_sizes) if self._gt_sizes else np.zeros(0, np.int64),
            'pred_sizes': np.concatenate(self._pred_sizes) if self._pred_sizes else np.zeros(0, np.int64),
            'n_frames': self.n_frames,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace this metric's state by ``state`` (from :meth:`state_dict`) after checking it all."""
        name = 'SmiycComponentMetrics'
        state_keys(state, self._STATE_KEYS, name)
        threshold = state_floats(state, 'threshold', name, (0, 1))
        inclusive = state_int(state, 'inclusive', name)
        if inclusive not in (0, 1):
            raise ValueError(f"{name} state: 'inclusive' must be 0 or 1, got {inclusive!r}")
        self._check_compatible(
            {
                'threshold': threshold[0] if threshold else None,
                'inclusive': bool(inclusive),
                'min_gt_size': state_int(state, 'min_gt_size', name),
                'min_pred_size': state_int(state, 'min_pred_size', name),
                'taus': state_floats(state, 'taus', name),
            }
        )
        siou = state_array(state, 'siou', name, (None,), 'f')
        ppv = state_array(state, 'ppv', name, (None,), 'f')
        gt_sizes = state_array(state, 'gt_sizes', name, (siou.size,), 'i')
        pred_sizes = state_array(state, 'pred_sizes', name, (ppv.size,), 'i')
        n_frames = state_int(state, 'n_frames', name)
        self.reset()
        if siou.size or ppv.size:
            self._siou.append(siou.copy())
            self._ppv.append(ppv.copy())
            self._gt_sizes.append(gt_sizes.copy())
            self._pred_sizes.append(pred_sizes.copy())
        self.n_frames = n_frames


def smiyc_component_metrics(
    preds: ArrayOrFrames,
    gts: ArrayOrFrames,
    threshold: float | None = None,
    *,
    min_gt_size: int = 0,
    min_pred_size: int = 0,
    taus: Sequence[float] = SMIYC_TAUS,
) -> SmiycResult:
    """One-shot twin of :class:`SmiycComponentMetrics`; one HxW frame, NxHxW, or an iterable of frames."""
    acc = SmiycComponentMetrics(threshold, min_gt_size=min_gt_size, min_pred_size=min_pred_size, taus=taus)
    for pred, gt in paired_frames(preds, gts, 'preds', 'gts'):
        acc.update(pred, gt)
    return acc.compute()


class SmiycThresholdSweep:
    """One :class:`SmiycComponentMetrics` per candidate threshold (rule score >= t), fed in one pass.

    Why: the benchmark scores components at the pixel-F1-optimal threshold of the same run, known only
    after the last frame. Keeping the score maps until then would grow with the run; keeping per-component
    values at a few candidate thresholds stays bounded (components x candidates), and the caller picks
    the candidate afterwards. The ground truth is labelled once per frame for all candidates. Each
    candidate's metric equals ``SmiycComponentMetrics(t, inclusive=True, ...)`` fed the same frames.
    """

    def __init__(
        self,
        thresholds: Sequence[float],
        *,
        min_gt_size: int = 0,
        min_pred_size: int = 0,
        taus: Sequence[float] = SMIYC_TAUS,
    ) -> None:
        values = [_check_threshold(t) for t in thresholds]
        if not values:
            raise ValueError('SmiycThresholdSweep needs at least one threshold')
        self.thresholds = tuple(sorted({float(t) for t in values if t is not None}))
        self.metrics = [
            SmiycComponentMetrics(t, min_gt_size=min_gt_size, min_pred_size=min_pred_size, taus=taus, inclusive=True)
            for t in self.thresholds
        ]
        self.min_gt_size = self.metrics[0].min_gt_size
        self.min_pred_size = self.metrics[0].min_pred_size

    def update(self, score: np.ndarray, gt: np.ndarray) -> None:
        """Add one frame (float ``score``, ``gt`` in {0, 1, 255}) to every candidate."""
        check_2d(score, 'score')
        if not np.issubdtype(np.asarray(score).dtype, np.floating):
            raise ValueError(f'score must be floating-point, got dtype {np.asarray(score).dtype}')
        _, gt = _prediction_and_gt(score, gt, self.thresholds[0], strict=False)  # validates score and gt
        prep = _gt_frame(gt, self.min_gt_size)
        keep = gt != ANOMALY_IGNORE
        for t, metric in zip(self.thresholds, self.metrics, strict=True):
            metric._add(_smiyc_frame((score >= t) & keep, prep, self.min_gt_size, self.min_pred_size))
            metric.n_frames += 1

    def compute(self) -> list[SmiycResult]:
        """One result per threshold, aligned with ``thresholds``."""
        return [m.compute() for m in self.metrics]

    def merge(self, other: SmiycThresholdSweep) -> None:
        """Add ``other``'s frames (same thresholds and filters) to this sweep, in place."""
        if not isinstance(other, SmiycThresholdSweep):
            raise ValueError(f'cannot merge a {type(other).__name__} into a SmiycThresholdSweep')
        if other.thresholds != self.thresholds:
            raise merge_mismatch('SmiycThresholdSweep', 'thresholds', self.thresholds, other.thresholds)
        for mine, theirs in zip(self.metrics, other.metrics, strict=True):
            mine.merge(theirs)


# ---------------------------------------------------------------------------------------------------
# Chan et al. (ICCV 2021) segment-wise errors.
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ChanSegmentResult:
    """Chan et al. segment-wise evaluation of a run (sec. 7, Table 2 columns FP, FN, F1, ε).

    tp / fp: predicted OoD segments that do / do not touch a ground-truth OoD pixel (eq. 7).
    fn: ground-truth OoD components touched by no predicted OoD pixel. road_miss_rate: eq. (8).
    f1 is NaN with no segment at all; road_miss_rate NaN with no gt == 0 pixel (``note`` says so).
    """

    tp: int
    fp: int
    fn: int
    f1: float
    road_miss_rate: float
    n_pred_segments: int
    n_gt_segments: int
    n_gt_detected: int
    n_in_dist_pixels: int
    n_in_dist_flagged: int
    n_frames: int
    threshold: float | None
    note: str


def _chan_frame(mask: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Counts for one frame: [tp, fp, n_gt, n_gt_detected, n_in_dist, n_in_dist_flagged]."""
    anomaly = gt == ANOMALY_ID
    n_pr, pr_lab = _components(mask)
    n_gt, gt_lab = _components(anomaly)
    hits = np.bincount(pr_lab[anomaly], minlength=n_pr)[1:]  # GT OoD pixels inside each prediction
    tp = int(np.count_nonzero(hits))
    detected = int(np.count_nonzero(np.bincount(gt_lab[mask], minlength=n_gt)[1:]))
    in_dist = gt == ANOMALY_IN_DIST
    return np.array(
        [
            tp,
            (n_pr - 1) - tp,
            n_gt - 1,
            detected,
            int(np.count_nonzero(in_dist)),
            int(np.count_nonzero(mask & in_dist)),
        ],
        dtype=np.int64,
    )


def _chan_finalize(counts: np.ndarray, n_frames: int, threshold: float | None) -> ChanSegmentResult:
    tp, fp, n_gt, detected, n_in, n_flagged = (int(c) for c in counts)
    fn = n_gt - detected
    notes = []
    denom = 2 * tp + fp + fn
    if denom == 0:
        notes.append('no predicted and no ground-truth OoD segment: F1 undefined')
    if n_in == 0:
        notes.append('no in-distribution (gt == 0) pixel: road miss rate undefined')
    return ChanSegmentResult(
        tp=tp,
        fp=fp,
        fn=fn,
        f1=2 * tp / denom if denom else float('nan'),
        road_miss_rate=n_flagged / n_in if n_in else float('nan'),
        n_pred_segments=tp + fp,
        n_gt_segments=n_gt,
        n_gt_detected=detected,
        n_in_dist_pixels=n_in,
        n_in_dist_flagged=n_flagged,
        n_frames=n_frames,
        threshold=threshold,
        note='; '.join(notes),
    )


class ChanSegmentMetrics:
    """Streaming segment-wise TP/FP/FN, F1 and road miss rate of Chan et al. (ICCV 2021).

    ``threshold`` t: predicted OoD where score >= t (eq. 5); bool masks (e.g. after meta-classification
    removed segments) are used as given.
    """

    def __init__(self, threshold: float | None = None) -> None:
        self.threshold = _check_threshold(threshold)
        self.reset()

    def reset(self) -> None:
        """Forget every frame seen so far."""
        self._counts = np.zeros(6, dtype=np.int64)
        self.n_frames = 0

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Add one frame: ``pred`` bool mask or float score (needs ``threshold``), ``gt`` in {0, 1, 255}."""
        mask, gt = _prediction_and_gt(pred, gt, self.threshold, strict=False)
        self._counts += _chan_frame(mask, gt)
        self.n_frames += 1

    def compute(self) -> ChanSegmentResult:
        return _chan_finalize(self._counts, self.n_frames, self.threshold)

    # -- merge and state -------------------------------------------------------------------------------

    _STATE_KEYS = ('metric', 'version', 'threshold', 'counts', 'n_frames')

    def merge(self, other: ChanSegmentMetrics) -> None:
        """Add ``other``'s counts to this metric, in place (``other`` is left as it is)."""
        if not isinstance(other, ChanSegmentMetrics):
            raise ValueError(f'cannot merge a {type(other).__name__} into a ChanSegmentMetrics')
        if other.threshold != self.threshold:
            raise merge_mismatch('ChanSegmentMetrics', 'threshold', self.threshold, other.threshold)
        self._counts += other._counts
        self.n_frames += other.n_frames

    def state_dict(self) -> dict[str, Any]:
        """``counts``: int64 [tp, fp, n_gt, n_gt_detected, n_in_dist, n_in_dist_flagged]; ``threshold`` [t] or []."""
        return {
            'metric': 'ChanSegmentMetrics',
            'version': STATE_VERSION,
            'threshold': optional_float(self.threshold),
            'counts': self._counts.copy(),
            'n_frames': self.n_frames,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace this metric's state by ``state`` (from :meth:`state_dict`) after checking it all."""
        name = 'ChanSegmentMetrics'
        state_keys(state, self._STATE_KEYS, name)
        bounds = state_floats(state, 'threshold', name, (0, 1))
        threshold = bounds[0] if bounds else None
        if threshold != self.threshold:
            raise merge_mismatch(name, 'threshold', self.threshold, threshold)
        counts = state_array(state, 'counts', name, (6,), 'i')
        n_frames = state_int(state, 'n_frames', name)
        self._counts = counts.copy()
        self.n_frames = n_frames


def chan_segment_metrics(preds: ArrayOrFrames, gts: ArrayOrFrames, threshold: float | None = None) -> ChanSegmentResult:
    """One-shot twin of :class:`ChanSegmentMetrics`; one HxW frame, NxHxW, or an iterable of frames."""
    acc = ChanSegmentMetrics(threshold)
    for pred, gt in paired_frames(preds, gts, 'preds', 'gts'):
        acc.update(pred, gt)
    return acc.compute()
