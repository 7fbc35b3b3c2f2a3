"""Per-segment metrics for the meta classifier (Chan et al. sec. 4; MetaSeg, Rottmann et al. 2020).

For each segment of an instance map (segments.py) and each of four per-pixel maps

    entropy          normalised softmax entropy  -sum p log p / log C        (aux map 'entropy')
    variation_ratio  V = 1 - max p                                             (aux map 'max_softmax')
    margin           M = V + second largest p = 1 - (p1 - p2)                 (aux map 'softmax_distance')
    score            the anomaly score the segments were cut from

the mean and the (population) variance over the whole segment, its interior and its boundary; a pixel is
on the boundary when one of its 4 neighbours is not in the segment (the image border counts as outside:
the object may continue beyond it), the interior is the rest. The paper adds the variances to MetaSeg's
means. Geometry: the sizes S, S_in, S_bd and MetaSeg's relative sizes S / S_bd and S_in / S_bd (compact
blobs have many interior pixels per boundary pixel, frayed noise has few); the bounding box and the
centroid, normalised to the image (the position of a false positive is informative: sky, bonnet, horizon);
the maximum score. A segment without interior (thin ones) gets 0 for its interior mean and variance.

The softmax statistics are the inference graph's auxiliary outputs (`Pipeline.from_model(...,
aux=AUX_MAPS)`), computed inside the one graph from the same softmax; nothing here recomputes a softmax.

Everything is vectorised over pixels and segments at once: sums are np.bincount over the label map
(weights = the map, then the squared deviations from the segment mean: the two-pass variance, no
cancellation for unbounded scores), boxes and maxima are ufunc.reduceat over the segment pixels grouped by
label. There is no Python loop over pixels or segments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .segments import Segments

__all__ = ['AUX_MAPS', 'FEATURE_NAMES', 'PIXEL_MAPS', 'REGIONS', 'SegmentFeatures', 'boundary_mask', 'segment_features']

#: per-pixel metric name -> the aux map (a softmax scorer of scoring/softmax.py) that carries it
AUX_MAPS: dict[str, str] = {'entropy': 'entropy', 'variation_ratio': 'max_softmax', 'margin': 'softmax_distance'}
#: the per-pixel maps aggregated, in feature order
PIXEL_MAPS: tuple[str, ...] = (*AUX_MAPS, 'score')
#: segment regions: whole, interior, boundary
REGIONS: tuple[str, ...] = ('', '_in', '_bd')

#: every feature, in column order; a classifier stores this list and refuses another one
FEATURE_NAMES: tuple[str, ...] = (
    *(f'{m}_{stat}{r}' for m in PIXEL_MAPS for r in REGIONS for stat in ('mean', 'var')),
    'size',
    'size_in',
    'size_bd',
    'size_rel',  # S / S_bd
    'size_in_rel',  # S_in / S_bd
    'box_x0',
    'box_y0',
    'box_w',
    'box_h',
    'centroid_x',
    'centroid_y',
    'score_max',
)


@dataclass(frozen=True)
class SegmentFeatures:
    """values: (N, len(FEATURE_NAMES)) float64, row i = segment id i + 1; boxes: (N, 4) int64 pixel boxes
    x0, y0, x1, y1 (inclusive); the rest are views of columns the node publishes."""

    values: np.ndarray
    boxes: np.ndarray

    def column(self, name: str) -> np.ndarray:
        return self.values[:, FEATURE_NAMES.index(name)]

    @property
    def area(self) -> np.ndarray:
        return self.column('size').astype(np.int64)

    @property
    def mean_score(self) -> np.ndarray:
        return self.column('score_mean')

    @property
    def max_score(self) -> np.ndarray:
        return self.column('score_max')


def boundary_mask(instance: np.ndarray) -> np.ndarray:
    """HxW bool: segment pixels with a 4-neighbour of another id (or outside the image)."""
    padded = np.pad(instance, 1, mode='constant', constant_values=0)
    centre = padded[1:-1, 1:-1]
    differs = (
        (padded[:-2, 1:-1] != centre)
        | (padded[2:, 1:-1] != centre)
        | (padded[1:-1, :-2] != centre)
        | (padded[1:-1, 2:] != centre)
    )
    return differs & (centre > 0)


def segment_features(segments: Segments, score: np.ndarray, aux: Mapping[str, np.ndarray]) -> SegmentFeatures:
    """The FEATURE_NAMES of every segment. `score` is the HxW map the segments were cut from; `aux` holds
    the HxW aux maps named in AUX_MAPS (Result.aux of a Pipeline built with aux=tuple(AUX_MAPS.values()))."""
    inst = segments.instance
    h, w = inst.shape
    n = segments.count
    missing = [a for a in AUX_MAPS.values() if a not in aux]
    if missing:
        raise ValueError(
            f'segment_features: aux map(s) {", ".join(missing)} missing (got {", ".join(aux) or "none"}); build '
            f'the Pipeline with aux={tuple(AUX_MAPS.values())}'
        )
    maps = {m: aux[a] for m, a in AUX_MAPS.items()}
    maps['score'] = score
    for name, m in maps.items():
        if np.shape(m) != (h, w):
            raise ValueError(f'segment_features: map {name!r} has shape {np.shape(m)}, the segments {(h, w)}')
    if n == 0:
        return SegmentFeatures(np.zeros((0, len(FEATURE_NAMES))), np.zeros((0, 4), np.int64))

    # segment pixels only: every per-segment sum below runs over these
    pix = np.flatnonzero(inst)
    lab = inst.ravel()[pix].astype(np.intp) - 1
    bd = boundary_mask(inst).ravel()[pix]
    inner = ~bd
    region_idx = {'': lab, '_in': lab[inner], '_bd': lab[bd]}
    sizes = {r: np.bincount(idx, minlength=n).astype(np.float64) for r, idx in region_idx.items()}

    cols: list[np.ndarray] = []
    for name in PIXEL_MAPS:
        # gather the segment pixels first: only those are converted to float64
        whole = np.asarray(maps[name]).ravel()[pix].astype(np.float64)
        by_region = {'': whole, '_in': whole[inner], '_bd': whole[bd]}
        for r in REGIONS:
            idx, v = region_idx[r], by_region[r]
            safe = np.maximum(sizes[r], 1.0)
            mean = np.bincount(idx, weights=v, minlength=n) / safe
            var = np.bincount(idx, weights=(v - mean[idx]) ** 2, minlength=n) / safe
            cols += [mean, var]

    s, s_in, s_bd = sizes[''], sizes['_in'], sizes['_bd']
    ys, xs = np.divmod(pix, w)
    # group the segment pixels by id; pix is row-major ascending and the sort is stable, so within a group
    # the first pixel has the smallest y and the last the largest
    order = np.argsort(lab, kind='stable')
    starts = np.concatenate(([0], np.cumsum(s.astype(np.int64))[:-1]))
    xs_g, ys_g = xs[order], ys[order]
    x0 = np.minimum.reduceat(xs_g, starts)
    x1 = np.maximum.reduceat(xs_g, starts)
    y0 = ys_g[starts]
    y1 = np.maximum.reduceat(ys_g, starts)
    score_max = np.maximum.reduceat(np.asarray(score).ravel()[pix][order], starts).astype(np.float64)
    cx = (np.bincount(lab, weights=xs + 0.5, minlength=n) / s) / w
    cy = (np.bincount(lab, weights=ys + 0.5, minlength=n) / s) / h
    cols += [
        s,
        s_in,
        s_bd,
        s / s_bd,  # every non-empty segment has a boundary pixel (its topmost one)
        s_in / s_bd,
        x0 / w,
        y0 / h,
        (x1 - x0 + 1) / w,
        (y1 - y0 + 1) / h,
        cx,
        cy,
        score_max,
    ]
    values = np.stack(cols, axis=1)
    boxes = np.stack([x0, y0, x1, y1], axis=1).astype(np.int64)
    return SegmentFeatures(values=values, boxes=boxes)
