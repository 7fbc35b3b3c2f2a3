"""RGB colour helpers of the renderer: HSV to RGB ints, clipping, brightness scaling and mixing."""

from __future__ import annotations

import colorsys
from typing import Any

__all__ = ['Color', 'clip_color', 'hsv', 'mix_colors', 'scale_color']

Color = tuple[int, int, int]


def hsv(h: float, s: float, v: float) -> Color:
    """Hue in degrees, saturation and value in [0, 1] -> RGB ints."""
    r, g, b = colorsys.hsv_to_rgb((h % 360.0) / 360.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return (int(r * 255), int(g * 255), int(b * 255))


def clip_color(c: Any) -> Color:
    """Any 3-sequence of numbers -> RGB ints clipped to [0, 255]."""
    return (int(min(max(c[0], 0), 255)), int(min(max(c[1], 0), 255)), int(min(max(c[2], 0), 255)))


def scale_color(c: Color, k: float) -> Color:
    """Brightness times k, clipped."""
    return clip_color((c[0] * k, c[1] * k, c[2] * k))


def mix_colors(a: Color, b: Color, t: float) -> Color:
    """Linear mix from a (t = 0) to b (t = 1), clipped."""
    return clip_color(tuple(a[i] * (1 - t) + b[i] * t for i in range(3)))
