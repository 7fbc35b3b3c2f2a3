"""`fit meta`: the obstacle meta classifier (Chan et al. sec. 4 and 7) on frames with anomaly ground truth.

Every frame runs once through the Pipeline with the softmax statistics as auxiliary graph outputs
(obstacles.AUX_MAPS: entropy, max_softmax = variation ratio, softmax_distance = probability margin); the
score map is then cut at each threshold t of the grid (default 0.1 .. 0.7, the rows of the paper's
Table 2), the segments filtered by --min-size and the ego polygon, their features computed and each
labelled TP (overlaps an anomaly pixel) or FP (obstacles/detection.py). Only the features are kept, never
the maps, so memory grows with the number of segments, not of frames.

For each t a logistic regression is cross-validated: --folds folds grouped by frame (StratifiedGroupKFold:
segments of one frame are correlated, so a frame is never split between training and test) give an
out-of-fold p(TP) for every segment. From it come the AUROC / AUPRC of TP vs FP (with the AUROC of the mean
score alone beside it, the paper's Table 3 baseline) and the Table 2 row with the meta classifier (a
segment kept when p >= --decision-threshold); the row without it keeps every segment. The stored t is the
one with the best cross-validated F1 with the meta classifier among those whose road miss rate with it is
at most --max-road-miss % (the paper accepts t >= 0.3 for the same reason: lower t cost road pixels;
--threshold fixes t), and the classifier
written to meta.json is fitted on all segments at that t.

meta.json is recorded in model.yaml under `obstacles: {meta: meta.json}` (not under `scorers:`: it is no
scorer, the score map it works on is the one named inside the file).

The features depend on the resolution the segments are cut at (sizes are pixel counts): fit at the camera
resolution the node will see (a bag of that camera, or --synthetic-size); the frame size is stored in the
file's `info`.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import load_model_config
from ..data.sample import Sample
from ..errors import ConfigError, DatasetError
from ..obstacles import (
    AUX_MAPS,
    FP,
    IGNORED,
    TP,
    DetectionCounts,
    FrameSegments,
    MetaClassifier,
    ego_mask,
    extract_segments,
    fit_logistic,
    frame_segments,
    segment_features,
)
from ..obstacles.detection import ground_truth_objects, road_mask
from ..obstacles.features import FEATURE_NAMES
from .base import FitResult, int_at_least

__all__ = ['ARTEFACT', 'DEFAULT_THRESHOLDS', 'HELP', 'add_arguments', 'fit', 'parse_polygon']

HELP = 'obstacle meta classifier (Chan et al.): logistic regression TP vs FP on segment metrics; needs anomaly GT'
#: the file written beside model.yaml
ARTEFACT = 'meta.json'
DEFAULT_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group('meta options')
    g.add_argument('--scorer', default='', help="the score map segments are cut from (default: the model's scorer)")
    g.add_argument(
        '--thresholds',
        type=_floats,
        default=DEFAULT_THRESHOLDS,
        help='comma-separated t grid of the table (default 0.1,...,0.7; needed for an unbounded scorer)',
    )
    g.add_argument(
        '--threshold', type=float, default=None, help='store this t (default: the best cross-validated F1 of the grid)'
    )
    g.add_argument(
        '--max-road-miss',
        type=float,
        default=1.0,
        help='choosing t: only among those whose road miss rate with the classifier is at most this many %% (1.0)',
    )
    g.add_argument('--min-size', type=int_at_least(1), default=20, help='drop segments under this many pixels (20)')
    g.add_argument(
        '--ego-polygon',
        type=parse_polygon,
        default=None,
        help="drop segments mostly inside this polygon: 'x,y x,y x,y ...' image-relative 0..1 (the ego bonnet)",
    )
    g.add_argument('--decision-threshold', type=_probability, default=0.5, help='keep a segment when p(TP) >= this')
    g.add_argument('--folds', type=int_at_least(2), default=5, help='cross-validation folds, grouped by frame (5)')
    g.add_argument('--C', dest='c', type=float, default=1.0, help='inverse L2 strength of the regression (1.0)')
    g.add_argument(
        '--backend', default='auto', help='backend running the net while fitting (auto, torch, onnxruntime, ...)'
    )
    g.add_argument(
        '--anomaly-family',
        choices=('test', 'proxy'),
        default='proxy',
        help="--synthetic: the world's obstacle family (proxy: keeps the evaluation family 'test' unseen)",
    )
    g.add_argument(
        '--anomaly-prob',
        type=_probability,
        default=0.8,
        help='--synthetic: chance that a frame holds obstacles (0.8)',
    )


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f'expected a number in [0, 1], got {text!r}')
    return value


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(',') if v.strip())
    except ValueError:
        values = ()
    if not values or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f'expected comma-separated numbers like 0.1,0.3,0.5, got {text!r}')
    return tuple(sorted(set(values)))


def parse_polygon(text: str) -> list[list[float]]:
    """'x,y x,y x,y' (image-relative, 0..1) -> [[x, y], ...]; argparse error on anything else."""
    try:
        pts = [[float(c) for c in pair.split(',')] for pair in text.replace(';', ' ').split()]
    except ValueError:
        pts = []
    if len(pts) < 3 or any(len(p) != 2 or not (0.0 <= p[0] <= 1.0 and 0.0 <= p[1] <= 1.0) for p in pts):
        raise argparse.ArgumentTypeError(f"expected at least 3 vertices 'x,y x,y x,y' in 0..1, got {text!r}")
    return pts


class _Collected:
    """Per threshold: feature rows, frame ids and the frames' count views."""

    def __init__(self) -> None:
        self.features: list[np.ndarray] = []
        self.groups: list[np.ndarray] = []
        self.frames: list[FrameSegments] = []

    def add(self, frame: int, values: np.ndarray, fs: FrameSegments) -> None:
        self.features.append(values)
        self.groups.append(np.full(values.shape[0], frame, np.int64))
        self.frames.append(fs)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = np.concatenate(self.features) if self.features else np.zeros((0, len(FEATURE_NAMES)))
        g = np.concatenate(self.groups) if self.groups else np.zeros(0, np.int64)
        y = np.concatenate([f.label for f in self.frames]) if self.frames else np.zeros(0, np.int8)
        return x, y, g


def fit(model_dir: Path, frames: Sequence[Sample], args: argparse.Namespace) -> FitResult:
    from ..pipeline import Pipeline  # noqa: PLC0415 - torch only once a fit runs

    t0 = time.perf_counter()
    if getattr(args, 'set_default', False):
        raise ConfigError('fit meta: --set-default does not apply (the meta classifier is not a scorer)')
    model_dir = Path(model_dir)
    cfg = load_model_config(model_dir)
    if (model_dir / ARTEFACT).exists() and not getattr(args, 'overwrite', False):
        raise ConfigError(f'{model_dir / ARTEFACT} exists; pass --overwrite to fit the meta classifier again')
    scorer = args.scorer or cfg.scorer
    pipeline = Pipeline.from_model(
        model_dir,
        scorer=scorer,
        backend=args.backend,
        device=getattr(args, 'device', 'cpu'),
        aux=tuple(AUX_MAPS.values()),
    )
    lo, hi = pipeline.score_range
    thresholds = tuple(args.thresholds)
    if args.threshold is not None and args.threshold not in thresholds:
        thresholds = tuple(sorted({*thresholds, float(args.threshold)}))
    if not (math.isfinite(lo) and math.isfinite(hi)) and args.thresholds == DEFAULT_THRESHOLDS:
        raise ConfigError(
            f'fit meta: scorer {scorer!r} is unbounded ({lo}..{hi}); pass --thresholds for its scale '
            '(the default 0.1..0.7 is meant for the [0, 1] softmax scorers)'
        )
    collected = {t: _Collected() for t in thresholds}
    frame_hw: tuple[int, int] | None = None
    n_frames = 0
    try:
        for i, sample in enumerate(frames):
            if sample.anomaly is None:
                raise DatasetError(
                    f'fit meta: frame {sample.name or i} has no anomaly ground truth; the meta classifier learns '
                    'TP vs FP from anomaly masks (a dataset with anomaly masks, a bag with /ground_truth/anomaly, '
                    'or --synthetic)'
                )
            result = pipeline(sample.image)
            hw = result.score.shape
            if frame_hw is None:
                frame_hw = (int(hw[0]), int(hw[1]))
            ego = ego_mask(args.ego_polygon, hw[0], hw[1])
            objects = ground_truth_objects(sample.anomaly)
            road = road_mask(sample.anomaly, sample.labels)
            for t in thresholds:
                seg = extract_segments(result.score, t, args.min_size, ego)
                feats = segment_features(seg, result.score, result.aux)
                collected[t].add(i, feats.values, frame_segments(seg, sample.anomaly, objects=objects, road=road))
            n_frames += 1
    finally:
        pipeline.close()

    rows: dict[str, dict[str, Any]] = {}
    oof: dict[float, np.ndarray | None] = {}
    for t in thresholds:
        x, y, g = collected[t].arrays()
        oof[t], cv = _cross_validate(x, y, g, args)
        rows[f't={t:g}'] = _table_row(collected[t].frames, oof[t], args.decision_threshold, cv)
    valid = [t for t in thresholds if oof[t] is not None]
    if args.threshold is not None:
        chosen = float(args.threshold)
        if oof[chosen] is None:
            raise ConfigError(f'fit meta: --threshold {chosen:g}: {rows[f"t={chosen:g}"]["note"]}')
    elif valid:
        # the paper (sec. 5, 7) only takes t whose loss of original performance is acceptable: road miss rate
        # bound first, then the best F1; when no t meets the bound, the one that misses least road
        ok = [t for t in valid if rows[f't={t:g}']['meta_road_miss_%'] <= args.max_road_miss]
        if ok:
            chosen = max(ok, key=lambda t: (_nan_low(rows[f't={t:g}']['meta_F1']), -t))
        else:
            chosen = min(valid, key=lambda t: rows[f't={t:g}']['meta_road_miss_%'])
    else:
        raise ConfigError(
            'fit meta: no threshold gave both true- and false-positive segments in enough frames to cross-validate '
            f'({n_frames} frames); use more frames with anomalies'
        )
    x, y, _ = collected[chosen].arrays()
    labelled = y != IGNORED
    chosen_row = rows[f't={chosen:g}']
    info = {
        'frames': n_frames,
        'frame_size': f'{frame_hw[1]}x{frame_hw[0]}' if frame_hw else None,
        'model': cfg.name,
        'segments_tp': int((y == TP).sum()),
        'segments_fp': int((y == FP).sum()),
        'segments_ignored': int((y == IGNORED).sum()),
        'cv_auroc': chosen_row['cv_AUROC'],
        'cv_auprc': chosen_row['cv_AUPRC'],
        'ego_polygon': args.ego_polygon,
        'table': rows,
    }
    clf = fit_logistic(
        x[labelled],
        y[labelled] == TP,
        segment_threshold=chosen,
        min_size=args.min_size,
        scorer=scorer,
        decision_threshold=args.decision_threshold,
        c=args.c,
        info=info,
    )
    path = clf.save(model_dir / ARTEFACT)
    MetaClassifier.load(path)  # what was written reads back (the node's load path)
    summary = {
        'frames': n_frames,
        'frame_size': info['frame_size'],
        'scorer': scorer,
        'chosen_threshold': chosen,
        'min_size': args.min_size,
        'decision_threshold': args.decision_threshold,
        'segments_tp': info['segments_tp'],
        'segments_fp': info['segments_fp'],
        'segments_ignored': info['segments_ignored'],
        'cv_auroc': chosen_row['cv_AUROC'],
        'cv_auprc': chosen_row['cv_AUPRC'],
        'table2': rows,
        'top_coefficients': _top_coefficients(clf, 6),
        'seconds': round(time.perf_counter() - t0, 2),
    }
    return FitResult(
        scorer=scorer,
        artefacts={'meta': ARTEFACT},
        params={},
        summary=summary,
        record_scorer=False,
        model_yaml={'obstacles': {'meta': ARTEFACT}},
    )


def _nan_low(v: float) -> float:
    return -1.0 if not math.isfinite(v) else v


def _cross_validate(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, args: argparse.Namespace
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Out-of-fold p(TP) of every segment (None when the segments cannot be cross-validated) and the CV
    figures. IGNORED segments get p from a model fitted on all labelled ones (they are in no training set)."""
    from sklearn.metrics import average_precision_score, roc_auc_score  # noqa: PLC0415
    from sklearn.model_selection import StratifiedGroupKFold  # noqa: PLC0415

    labelled = y != IGNORED
    yl, xl, gl = y[labelled] == TP, x[labelled], groups[labelled]
    n_tp, n_fp = int(yl.sum()), int((~yl).sum())
    n_groups = np.unique(gl).size
    splits = min(args.folds, n_groups, n_tp, n_fp)
    cv: dict[str, Any] = {'tp': n_tp, 'fp': n_fp}
    if splits < 2:
        cv['note'] = f'too few segments to cross-validate ({n_tp} TP, {n_fp} FP in {n_groups} frames)'
        return None, cv
    p = np.zeros(yl.shape[0])
    for train, test in StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=0).split(xl, yl, gl):
        if yl[train].all() or not yl[train].any():
            p[test] = float(yl[train].mean())  # one class in training: its prior
            continue
        clf = fit_logistic(xl[train], yl[train], segment_threshold=0.0, min_size=1, scorer='cv', c=args.c)
        p[test] = clf.predict_proba(xl[test])
    out = np.zeros(y.shape[0])
    out[labelled] = p
    if (~labelled).any():
        full = fit_logistic(xl, yl, segment_threshold=0.0, min_size=1, scorer='cv', c=args.c)
        out[~labelled] = full.predict_proba(x[~labelled])
    score_mean = xl[:, FEATURE_NAMES.index('score_mean')]
    cv.update(
        folds=splits,
        auroc=float(roc_auc_score(yl, p)),
        auprc=float(average_precision_score(yl, p)),
        auroc_mean_score=float(roc_auc_score(yl, score_mean)),
    )
    return out, cv


def _table_row(
    frames: list[FrameSegments], p: np.ndarray | None, decision: float, cv: dict[str, Any]
) -> dict[str, Any]:
    """One Table 2 row: without and with the meta classifier (module docstring)."""
    plain, meta = DetectionCounts(), DetectionCounts()
    start = 0
    for f in frames:
        n = f.label.shape[0]
        plain.add(f)
        if p is not None:
            meta.add(f, p[start : start + n] >= decision)
        start += n
    nan = float('nan')
    row: dict[str, Any] = {
        'FP': plain.fp,
        'FN': plain.fn,
        'F1': round(plain.f1, 4),
        'road_miss_%': round(100 * plain.road_miss_rate, 4),
        'meta_FP': meta.fp if p is not None else None,
        'meta_FN': meta.fn if p is not None else None,
        'meta_F1': round(meta.f1, 4) if p is not None else nan,
        'meta_road_miss_%': round(100 * meta.road_miss_rate, 4) if p is not None else nan,
        'cv_AUROC': round(cv.get('auroc', nan), 4),
        'cv_AUPRC': round(cv.get('auprc', nan), 4),
        'AUROC_mean_score': round(cv.get('auroc_mean_score', nan), 4),
        'objects': plain.tp + plain.fn,
    }
    if 'note' in cv:
        row['note'] = cv['note']
    return row


def _top_coefficients(clf: MetaClassifier, k: int) -> dict[str, float]:
    order = np.argsort(-np.abs(clf.coef))[:k]
    return {clf.feature_names[i]: round(float(clf.coef[i]), 3) for i in order}
