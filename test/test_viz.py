"""The node's visualisations: the fast colour path draws exactly what classes.colorize draws."""

from __future__ import annotations

import numpy as np

from anomaly_seg_ros.classes import CITYSCAPES_PALETTE, IGNORE_ID, colorize
from anomaly_seg_ros.viz import colorize_fast, heatmap_overlay


def test_colorize_fast_is_colorize() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 256, (37, 53)).astype(np.uint8)  # every id: classes, unknown, ignore
    labels[0, :19] = np.arange(19)
    labels[1, 0] = IGNORE_ID
    out = colorize_fast(labels)
    assert out.dtype == np.uint8 and out.shape == (37, 53, 3)
    np.testing.assert_array_equal(out, colorize(labels))
    np.testing.assert_array_equal(out[0, :19], CITYSCAPES_PALETTE)
    assert not out[1, 0].any()  # ignore is black
    # other integer types and shapes take the numpy path, with the same colours
    np.testing.assert_array_equal(colorize_fast(labels.astype(np.int64)), out)
    assert colorize_fast(np.zeros((0, 4), np.uint8)).shape == (0, 4, 3)


def test_heatmap_overlay_blends_over_the_frame() -> None:
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0] = 200  # red camera frame
    score = np.linspace(0, 1, 24, dtype=np.float32).reshape(4, 6)
    pure = heatmap_overlay(rgb, score, (0.0, 1.0), alpha=1.0)
    half = heatmap_overlay(rgb, score, (0.0, 1.0), alpha=0.5)
    assert pure.shape == half.shape == (4, 6, 3)
    # BGR out: half the colour map plus half the frame's red in channel 2
    expected = np.round(pure.astype(np.float64) * 0.5 + np.array([0, 0, 100.0])).clip(0, 255)
    np.testing.assert_allclose(half, expected, atol=1)
