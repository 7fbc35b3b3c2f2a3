"""Evaluation metrics of anomaly segmentation, one import point.

Every metric is a streaming accumulator (``update()`` per frame, ``compute()`` -> frozen result dataclass,
``reset()``) with a one-shot functional twin built from the same private steps:

- pixel AP / AUROC / FPR95: ``PixelAnomalyMetrics`` / ``pixel_anomaly_metrics`` -> ``PixelMetricsResult``
- mIoU over the 19 trainIds: ``SegmentationIoU`` / ``segmentation_iou`` -> ``IoUResult``
- SMIYC sIoU / PPV / mean F1: ``SmiycComponentMetrics`` / ``smiyc_component_metrics`` -> ``SmiycResult``
- Chan et al. TP / FP / FN / F1 / road miss rate: ``ChanSegmentMetrics`` / ``chan_segment_metrics``
  -> ``ChanSegmentResult``

Every accumulator also has ``merge(other)`` (in place; differently configured metrics raise ValueError)
and ``state_dict()`` / ``load_state_dict()`` (plain values and numpy arrays, for np.savez and Ray
workers): metrics fed disjoint parts of a run and merged give exactly the result of one pass.

Definitions, tie handling, ignore handling and the binned-mode error bounds are documented in
:mod:`.pixel`, :mod:`.iou` and :mod:`.components`.
"""

from __future__ import annotations

from .components import (
    SMIYC_TAUS,
    ChanSegmentMetrics,
    ChanSegmentResult,
    SmiycComponentMetrics,
    SmiycResult,
    chan_segment_metrics,
    smiyc_component_metrics,
)
from .iou import IoUResult, SegmentationIoU, segmentation_iou
from .pixel import (
    DEFAULT_BINS,
    DEFAULT_MAX_EXACT_PAIRS,
    FPR95_TPR,
    Curves,
    PixelAnomalyMetrics,
    PixelMetricsResult,
    pixel_anomaly_metrics,
)

__all__ = [
    'Curves',
    'DEFAULT_BINS',
    'DEFAULT_MAX_EXACT_PAIRS',
    'FPR95_TPR',
    'SMIYC_TAUS',
    'ChanSegmentMetrics',
    'ChanSegmentResult',
    'IoUResult',
    'PixelAnomalyMetrics',
    'PixelMetricsResult',
    'SegmentationIoU',
    'SmiycComponentMetrics',
    'SmiycResult',
    'chan_segment_metrics',
    'pixel_anomaly_metrics',
    'segmentation_iou',
    'smiyc_component_metrics',
]
