"""Dataset-wide per-class IoU and mIoU (Cityscapes protocol): a streaming metric with a mergeable state.

One dataset-wide CxC confusion matrix (one ``np.bincount`` per frame, summed over frames):
IoU_c = TP_c / (TP_c + FP_c + FN_c). This is the Cityscapes protocol, not a per-image average; a class
absent from both ground truth and prediction over the whole run has IoU NaN and is left out of the mean.
Predicted ids outside 0..C-1 (e.g. an extra OoD class 19 as in Chan et al. sec. 6.2, or 255) are legal:
they match no class, so they are a false negative for the ground-truth class and a false positive for
none; ``compute().n_pred_other`` counts them.

The state is the confusion matrix and two counters, so ``merge()`` of metrics fed disjoint frames gives
exactly the confusion matrix, hence exactly the result, of one metric fed all of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..classes import CITYSCAPES_CLASSES, IGNORE_ID, NUM_CLASSES
from .checks import (
    STATE_VERSION,
    ArrayOrFrames,
    check_2d,
    check_labels,
    check_same_shape,
    merge_mismatch,
    paired_frames,
    state_array,
    state_int,
    state_keys,
    state_strings,
)

__all__ = ['IoUResult', 'SegmentationIoU', 'segmentation_iou']


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
    gt, n_ignored = check_labels(gt, 'gt', n_cls, f'a class id 0..{n_cls - 1} or {IGNORE_ID} (ignore)')
    pred = check_2d(pred, 'pred')
    if pred.dtype == np.bool_ or not np.issubdtype(pred.dtype, np.integer):
        raise ValueError(f'pred must be an integer class-id map, got dtype {pred.dtype}')
    check_same_shape(pred, 'pred', gt, 'gt')
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

    _STATE_KEYS = ('metric', 'version', 'num_classes', 'class_names', 'confusion', 'n_ignored', 'n_frames')

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

    def _check_compatible(self, num_classes: int, class_names: tuple[str, ...]) -> None:
        if num_classes != self.num_classes:
            raise merge_mismatch('SegmentationIoU', 'num_classes', self.num_classes, num_classes)
        if class_names != self.class_names:
            raise merge_mismatch('SegmentationIoU', 'class_names', self.class_names, class_names)

    def merge(self, other: SegmentationIoU) -> None:
        """Add ``other``'s frames to this metric, in place (``other`` is left as it is)."""
        if not isinstance(other, SegmentationIoU):
            raise ValueError(f'cannot merge a {type(other).__name__} into a SegmentationIoU')
        self._check_compatible(other.num_classes, other.class_names)
        self._confusion += other._confusion
        self.n_ignored += other.n_ignored
        self.n_frames += other.n_frames

    def state_dict(self) -> dict[str, Any]:
        """The configuration and counts as plain values and one int64 array (np.savez- and Ray-safe)."""
        return {
            'metric': 'SegmentationIoU',
            'version': STATE_VERSION,
            'num_classes': self.num_classes,
            'class_names': list(self.class_names),
            'confusion': self._confusion.copy(),
            'n_ignored': self.n_ignored,
            'n_frames': self.n_frames,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace this metric's state by ``state`` (from :meth:`state_dict`) after checking it."""
        name = 'SegmentationIoU'
        state_keys(state, self._STATE_KEYS, name)
        num_classes = state_int(state, 'num_classes', name, minimum=1)
        class_names = state_strings(state, 'class_names', name, num_classes)
        self._check_compatible(num_classes, class_names)
        confusion = state_array(state, 'confusion', name, (self.num_classes, self.num_classes + 1), 'i')
        n_ignored = state_int(state, 'n_ignored', name)
        n_frames = state_int(state, 'n_frames', name)
        self._confusion = confusion.copy()
        self.n_ignored = n_ignored
        self.n_frames = n_frames


def segmentation_iou(
    preds: ArrayOrFrames,
    gts: ArrayOrFrames,
    num_classes: int = NUM_CLASSES,
    class_names: Sequence[str] | None = None,
) -> IoUResult:
    """One-shot twin of :class:`SegmentationIoU`; frames as in :func:`pixel_anomaly_metrics`."""
    acc = SegmentationIoU(num_classes, class_names)
    for pred, gt in paired_frames(preds, gts, 'preds', 'gts'):
        acc.update(pred, gt)
    return acc.compute()
