"""Obstacles from the anomaly heatmap (Chan et al. sec. 3.2, 4, 7): segments, their metrics, the meta classifier.

    score (+ aux softmax maps) -> extract_segments -> segment_features -> MetaClassifier.keep

numpy + scipy only at run time (scikit-learn only to fit); no torch and no inference code, so the node, the
evaluator and the fit command share one implementation.
"""

from __future__ import annotations

from .detection import FP, IGNORED, TP, DetectionCounts, FrameSegments, frame_segments, label_segments
from .features import AUX_MAPS, FEATURE_NAMES, SegmentFeatures, boundary_mask, segment_features
from .meta import MetaClassifier, fit_logistic
from .segments import MAX_SEGMENTS, Segments, ego_mask, extract_segments

__all__ = [
    'AUX_MAPS',
    'FEATURE_NAMES',
    'FP',
    'IGNORED',
    'MAX_SEGMENTS',
    'TP',
    'DetectionCounts',
    'FrameSegments',
    'MetaClassifier',
    'SegmentFeatures',
    'Segments',
    'boundary_mask',
    'ego_mask',
    'extract_segments',
    'fit_logistic',
    'frame_segments',
    'label_segments',
    'segment_features',
]
