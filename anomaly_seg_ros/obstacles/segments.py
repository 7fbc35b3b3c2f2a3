"""Obstacle segments: connected components of the pixels whose anomaly score reaches a threshold t.

Chan et al. (entropy maximization and meta classification, sec. 3.2 and 4) predict an OoD object as a
connected component of the pixels whose entropy is at least t; the meta classifier then judges each
component as a whole. Components are 8-connected (scipy.ndimage.label with a 3x3 structure), so a thin
diagonal object is one segment, not a staircase of single pixels.

Two filters run before anything else looks at a segment, because what they remove can never be a useful
obstacle and would only cost feature time and confuse the classifier's statistics:

- `min_size`: components of fewer pixels are dropped (speckle at the score's noise level).
- the ego mask: components whose pixels lie mostly (more than half) inside the ego-vehicle mask are dropped;
  the bonnet and mirrors are in every frame and are not road obstacles. The mask is given as a polygon in
  image-relative coordinates (0..1), so one polygon serves every camera resolution (`ego_mask`).

The kept components are renumbered 1..N in order of their first pixel (row-major) into a uint16 instance
map (0 = no segment): the `~/obstacles/mask` encoding. When more than 65535 components survive (a
threshold far too low for the scene), only the 65535 largest are kept and the rest counted as dropped, so
the id always fits the map.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

__all__ = ['MAX_SEGMENTS', 'Segments', 'ego_mask', 'extract_segments']

#: the most segments one uint16 instance map can number
MAX_SEGMENTS = int(np.iinfo(np.uint16).max)
_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class Segments:
    """The kept components of one score map.

    instance:        HxW uint16, 0 = background, 1..count = segment ids.
    count:           number of segments (ids 1..count).
    sizes:           (count,) int64 pixel count of each segment; sizes[i] is segment i + 1.
    threshold:       the t the score was cut at (score >= t).
    min_size:        components under this many pixels were dropped.
    dropped_small:   how many components were under min_size.
    dropped_ego:     how many (of those big enough) lay mostly inside the ego mask.
    dropped_overflow: how many were dropped because more than MAX_SEGMENTS remained (the smallest ones).
    """

    instance: np.ndarray
    count: int
    sizes: np.ndarray
    threshold: float
    min_size: int
    dropped_small: int = 0
    dropped_ego: int = 0
    dropped_overflow: int = 0


def extract_segments(score: np.ndarray, threshold: float, min_size: int = 1, ego: np.ndarray | None = None) -> Segments:
    """8-connected components of `score >= threshold`, filtered by `min_size` and the `ego` mask (see the
    module docstring). `score` is HxW float; NaN never reaches the threshold. `ego` is HxW bool (True =
    ego vehicle) or None."""
    from scipy import ndimage  # noqa: PLC0415 - keeps importing the package light

    score = np.asarray(score)
    if score.ndim != 2 or score.size == 0:
        raise ValueError(f'extract_segments: score must be a non-empty HxW map, got shape {score.shape}')
    if not np.isfinite(threshold):
        raise ConfigError(f'obstacle segment threshold must be a finite number, got {threshold!r}')
    if int(min_size) < 1:
        raise ConfigError(f'obstacle min_size must be >= 1 pixel, got {min_size!r}')
    if ego is not None:
        ego = np.asarray(ego, dtype=bool)
        if ego.shape != score.shape:
            raise ValueError(f'extract_segments: ego mask {ego.shape} does not match the score map {score.shape}')
    labels, n = ndimage.label(score >= threshold, structure=_EIGHT)
    flat = labels.ravel()
    sizes = np.bincount(flat, minlength=n + 1)
    keep = sizes >= int(min_size)
    keep[0] = False
    dropped_small = int(n - keep[1:].sum())
    dropped_ego = 0
    if ego is not None and keep.any():
        inside = np.bincount(flat, weights=ego.ravel(), minlength=n + 1)
        mostly = keep & (inside * 2 > sizes)
        dropped_ego = int(mostly.sum())
        keep &= ~mostly
    dropped_overflow = 0
    kept_ids = np.flatnonzero(keep)
    if kept_ids.size > MAX_SEGMENTS:
        order = np.argsort(-sizes[kept_ids], kind='stable')
        survivors = np.sort(kept_ids[order[:MAX_SEGMENTS]])
        dropped_overflow = int(kept_ids.size - survivors.size)
        keep[:] = False
        keep[survivors] = True
        kept_ids = survivors
    remap = np.zeros(n + 1, dtype=np.uint16)
    remap[kept_ids] = np.arange(1, kept_ids.size + 1, dtype=np.uint16)
    instance = remap[labels]
    return Segments(
        instance=instance,
        count=int(kept_ids.size),
        sizes=sizes[kept_ids].astype(np.int64),
        threshold=float(threshold),
        min_size=int(min_size),
        dropped_small=dropped_small,
        dropped_ego=dropped_ego,
        dropped_overflow=dropped_overflow,
    )


def ego_mask(polygon: Sequence[Sequence[float]] | None, height: int, width: int) -> np.ndarray | None:
    """HxW bool, True inside `polygon`: vertices (x, y) in image-relative coordinates, 0..1 from the top-left
    corner (x along the width), so the same polygon fits every camera resolution. None or [] gives None
    (no mask). A polygon needs at least 3 vertices, each in [0, 1]."""
    if polygon is None or len(polygon) == 0:
        return None
    try:
        pts = np.asarray(polygon, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f'ego mask polygon must be a list of [x, y] pairs in 0..1, got {polygon!r}') from None
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] < 3:
        raise ConfigError(f'ego mask polygon needs at least 3 [x, y] vertices, got {polygon!r}')
    if not np.isfinite(pts).all() or pts.min() < 0.0 or pts.max() > 1.0:
        raise ConfigError(f'ego mask polygon vertices must lie in [0, 1] (image-relative), got {polygon!r}')
    return _inside_polygon(pts * [width, height], int(height), int(width))


def _inside_polygon(pts: np.ndarray, height: int, width: int) -> np.ndarray:
    """HxW bool: pixel centres (x + 0.5, y + 0.5) inside the polygon `pts` (pixel units), by the even-odd
    crossing rule, one vectorised pass per edge (an ego polygon has a handful of vertices)."""
    ys = np.arange(height, dtype=np.float64)[:, None] + 0.5
    xs = np.arange(width, dtype=np.float64)[None, :] + 0.5
    inside = np.zeros((height, width), dtype=bool)
    x0, y0 = pts[:, 0], pts[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    for ax, ay, bx, by in zip(x0, y0, x1, y1, strict=True):
        if ay == by:
            continue  # a horizontal edge never crosses a horizontal ray
        spans = (ay > ys) != (by > ys)  # H x 1: rows this edge crosses
        x_cross = ax + (ys - ay) * (bx - ax) / (by - ay)  # H x 1
        inside ^= spans & (xs < x_cross)
    return inside
