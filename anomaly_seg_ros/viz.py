"""Images for people: colourised score heatmaps over the camera frame (for RViz and the demo's PNGs)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from .classes import CITYSCAPES_PALETTE, NUM_CLASSES, colorize

__all__ = ['colorize_fast', 'heatmap_overlay', 'score_to_uint8']

_PALETTE_LUT = np.zeros((256, 1, 3), dtype=np.uint8)
_PALETTE_LUT[:NUM_CLASSES, 0] = CITYSCAPES_PALETTE


def colorize_fast(labels: np.ndarray) -> np.ndarray:
    """classes.colorize through cv2.LUT for HxW uint8 labels (what the pipeline gives), the same image: 1.5 ms
    at 2048x1024 here against 15.9 ms for numpy's fancy indexing, which stays the path for anything else."""
    if labels.dtype == np.uint8 and labels.ndim == 2 and labels.size:
        return cv2.LUT(cv2.merge((labels, labels, labels)), _PALETTE_LUT)
    return colorize(labels)


def score_to_uint8(score: np.ndarray, score_range: tuple[float, float]) -> np.ndarray:
    """Map scores to 0..255 over the scorer's declared range; an unbounded range uses the frame's min/max."""
    lo, hi = score_range
    if not (math.isfinite(lo) and math.isfinite(hi)):
        finite = score[np.isfinite(score)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    return np.clip((score - lo) * (255.0 / span), 0, 255).astype(np.uint8)


def heatmap_overlay(
    rgb: np.ndarray, score: np.ndarray, score_range: tuple[float, float], alpha: float = 0.6
) -> np.ndarray:
    """BGR uint8 image: TURBO colour map of the score blended over the camera frame (weight `alpha`)."""
    colour = cv2.applyColorMap(score_to_uint8(score, score_range), cv2.COLORMAP_TURBO)
    if alpha >= 1.0:
        return colour
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    return cv2.addWeighted(colour, alpha, bgr, 1.0 - alpha, 0.0)
