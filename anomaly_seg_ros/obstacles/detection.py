"""Segment-level ground truth and the detection errors of Chan et al. Table 2 (sec. 7).

`label_segments` marks each predicted segment (their eq. 6/7): TP when it overlaps a ground-truth anomaly
pixel (anomaly == 1), FP when it overlaps none, IGNORED when it overlaps none and more than half of its pixels
are ground-truth ignore (255): the paper ignores OoD predictions in the unannotated background (their fig. 7,
LostAndFound annotates the road only), and the synthetic world marks void objects 255.

`DetectionCounts` sums over a dataset what Table 2 reports for one threshold t:
- FP: kept segments labelled FP.
- FN: ground-truth anomaly objects (8-connected components of anomaly == 1) that no kept segment overlaps;
  TP: those that one does (so TP + FN = the number of ground-truth objects).
- F1 = 2 TP / (2 TP + FP + FN).
- road miss rate epsilon (their eq. 8): the fraction of annotated in-distribution road pixels that fall in a
  kept segment: road = trainId 0 with anomaly == 0 where the frame has labels, else every anomaly == 0 pixel.

`FrameSegments` keeps what is needed to recount after a classifier has chosen which segments to keep, so the
same frames give the rows with and without the meta classifier without a second pass over the images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..classes import ANOMALY_ID, IGNORE_ID
from .segments import Segments

__all__ = ['FP', 'IGNORED', 'TP', 'DetectionCounts', 'FrameSegments', 'frame_segments', 'label_segments']

TP, FP, IGNORED = 1, 0, -1
ROAD_ID = 0  # Cityscapes trainId of road
_EIGHT = np.ones((3, 3), dtype=bool)


def label_segments(segments: Segments, anomaly: np.ndarray) -> np.ndarray:
    """(N,) int8 of TP / FP / IGNORED for each segment (module docstring)."""
    inst = segments.instance.ravel()
    n = segments.count
    gt = np.asarray(anomaly).ravel()
    if gt.shape != inst.shape:
        raise ValueError(f'label_segments: anomaly mask {np.shape(anomaly)} vs segments {segments.instance.shape}')
    hits = np.bincount(inst, weights=(gt == ANOMALY_ID), minlength=n + 1)[1:]
    void = np.bincount(inst, weights=(gt == IGNORE_ID), minlength=n + 1)[1:]
    out = np.full(n, FP, dtype=np.int8)
    out[void * 2 > segments.sizes] = IGNORED
    out[hits > 0] = TP
    return out


@dataclass(frozen=True)
class FrameSegments:
    """One frame's segments at one t, reduced to what the counts need.

    label:     (N,) TP / FP / IGNORED.
    road_px:   (N,) road pixels inside each segment.
    pairs:     (K, 2) (segment index 0..N-1, ground-truth object index 0..G-1) for every overlap.
    objects:   G, the ground-truth anomaly objects in the frame.
    road_total: road pixels in the frame.
    """

    label: np.ndarray
    road_px: np.ndarray
    pairs: np.ndarray
    objects: int
    road_total: int


def ground_truth_objects(anomaly: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of anomaly == 1: (HxW int32 ids 0..G, G)."""
    from scipy import ndimage  # noqa: PLC0415

    objects, g = ndimage.label(np.asarray(anomaly) == ANOMALY_ID, structure=_EIGHT)
    return objects, int(g)


def road_mask(anomaly: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    inlier = np.asarray(anomaly) == 0
    return inlier if labels is None else inlier & (np.asarray(labels) == ROAD_ID)


def frame_segments(
    segments: Segments,
    anomaly: np.ndarray,
    labels: np.ndarray | None = None,
    objects: tuple[np.ndarray, int] | None = None,
    road: np.ndarray | None = None,
) -> FrameSegments:
    """The counts' view of one frame. `objects` and `road` may be passed in when one frame is cut at several
    thresholds (they do not depend on t)."""
    objects_map, g = objects if objects is not None else ground_truth_objects(anomaly)
    road = road if road is not None else road_mask(anomaly, labels)
    inst = segments.instance.ravel().astype(np.int64)
    n = segments.count
    road_px = np.bincount(inst, weights=road.ravel(), minlength=n + 1)[1:]
    both = (inst > 0) & (objects_map.ravel() > 0)
    keys = np.unique((inst[both] - 1) * max(g, 1) + (objects_map.ravel()[both] - 1))
    pairs = np.stack(np.divmod(keys, max(g, 1)), axis=1) if keys.size else np.zeros((0, 2), np.int64)
    return FrameSegments(
        label=label_segments(segments, anomaly),
        road_px=road_px.astype(np.int64),
        pairs=pairs.astype(np.int64),
        objects=g,
        road_total=int(road.sum()),
    )


@dataclass
class DetectionCounts:
    """Table 2 figures summed over frames (module docstring)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    road_missed: int = 0
    road_total: int = 0

    def add(self, frame: FrameSegments, keep: np.ndarray | None = None) -> None:
        """Count one frame with the segments `keep` (N bool) kept; None keeps them all."""
        k = np.ones(frame.label.shape[0], bool) if keep is None else np.asarray(keep, bool)
        self.fp += int(((frame.label == FP) & k).sum())
        detected = np.unique(frame.pairs[k[frame.pairs[:, 0]], 1]) if frame.pairs.size else np.zeros(0)
        self.tp += int(detected.size)
        self.fn += frame.objects - int(detected.size)
        self.road_missed += int(frame.road_px[k].sum())
        self.road_total += frame.road_total

    @property
    def f1(self) -> float:
        denom = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denom if denom else float('nan')

    @property
    def road_miss_rate(self) -> float:
        return self.road_missed / self.road_total if self.road_total else float('nan')

    def row(self) -> dict[str, float | int]:
        return {
            'FP': self.fp,
            'FN': self.fn,
            'TP': self.tp,
            'F1': round(self.f1, 4),
            'road_miss_%': round(100 * self.road_miss_rate, 4),
        }
