"""Colour textures of road obstacles: per-family colour pairs and a registry of patterns, one function each.

Every pattern mixes the two family colours with a (nearly) binary field and/or modulates the brightness of one, so
hues stay within the family's hue bands. The families use disjoint hue bands and disjoint pattern sets.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from .colors import Color, hsv
from .scene import Scene

__all__ = ['FAMILY_HUES', 'FAMILY_PATTERNS', 'PATTERNS', 'obstacle_texture']

# Hue bands (degrees) per family, and how far one obstacle's hue strays from its band centre.
FAMILY_HUES: dict[str, tuple[float, ...]] = {
    'test': (300.0, 180.0, 25.0),  # magenta, cyan, orange
    'proxy': (270.0, 335.0, 57.0, 100.0),  # violet, hot pink, yellow, lime
}
FAMILY_PATTERNS: dict[str, tuple[str, ...]] = {
    'test': ('solid', 'stripes', 'checker', 'speckle', 'photo', 'metal'),
    'proxy': ('dots', 'rings', 'gradient', 'zigzag', 'wood', 'hatch'),
}
_HUE_JITTER = 8.0

# A pattern gets pixel grids (yy, xx) and the feature period p in pixels; it returns the mixing field t in [0, 1]
# (0 = first colour) and an optional brightness field.
Pattern = Callable[[Scene, np.ndarray, np.ndarray, float], tuple[np.ndarray, np.ndarray | None]]
PATTERNS: dict[str, Pattern] = {}


def _pattern(name: str) -> Callable[[Pattern], Pattern]:
    def add(fn: Pattern) -> Pattern:
        PATTERNS[name] = fn
        return fn

    return add


def obstacle_texture(scene: Scene, h: int, w: int, scale: float) -> np.ndarray:
    """(h, w, 3) float32 colour texture of the current family, with features of about ``scale`` pixels."""
    family = scene.cfg.anomaly_family
    kind = scene.pick(FAMILY_PATTERNS[family])
    c1, c2 = (np.array(c, dtype=np.float32) for c in _obstacle_colors(scene))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    p = max(scale * scene.u(0.12, 0.3), 2.0)
    t, bright = PATTERNS[kind](scene, yy, xx, p)
    rgb = c1[None, None, :] * (1 - t[..., None]) + c2[None, None, :] * t[..., None]
    if bright is not None:
        rgb *= bright[..., None]
    return rgb


def _obstacle_colors(scene: Scene) -> tuple[Color, Color]:
    """A saturated family colour and a second one: another family colour, near black or near white."""
    family = scene.cfg.anomaly_family
    hues = FAMILY_HUES[family]
    u = scene.u
    h1 = scene.pick(hues) + u(-_HUE_JITTER, _HUE_JITTER)
    c1 = hsv(h1, u(0.8, 1.0), u(0.8, 1.0))
    r = scene.rng.random()
    if r < 0.5:
        h2 = scene.pick(hues) + u(-_HUE_JITTER, _HUE_JITTER)
        c2 = hsv(h2, u(0.8, 1.0), u(0.55, 1.0))
    elif r < 0.75:
        c2 = hsv(0, 0, u(0.02, 0.15))
    else:
        c2 = hsv(0, 0, u(0.88, 1.0))
    return c1, c2


def _fbm(scene: Scene, h: int, w: int, p: float) -> np.ndarray:
    """Smooth noise in about [-1, 1] with features of about p pixels (two octaves)."""
    out = np.zeros((h, w), np.float32)
    for k, amp in ((1.0, 0.7), (0.4, 0.3)):
        lh, lw = max(int(h / (p * k)) + 2, 2), max(int(w / (p * k)) + 2, 2)
        low = scene.rng.standard_normal((lh, lw)).astype(np.float32)
        out += amp * cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(out * 0.8, -1.0, 1.0)


# -- 'test' family patterns ------------------------------------------------------------------------------


@_pattern('solid')
def _solid(scene: Scene, yy: np.ndarray, xx: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray | None]:
    return np.zeros(xx.shape, np.float32), None


@_pattern('stripes')
def _stripes(scene: Scene, yy: np.ndarray, xx: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray | None]:
    sgn = scene.pick([-1.0, 1.0])
    return (np.floor((xx + sgn * yy) / p) % 2).astype(np.float32), None


@_pattern('checker')
def _checker(scene: Scene, yy: np.ndarray, xx: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray | None]:
    return ((np.floor(xx / p) + np.floor(yy / p)) % 2).astype(np.float32), None


@_pattern('speckle')
def _speckle(scene: Scene, yy: np.ndarray, xx: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray | None]:
    h, w = xx.shape
    lh, lw = max(int(h / p * 2), 1), max(int(w / p * 2), 1)
    low = (scene.rng.random((lh, lw)) < 0.5).astype(np.float32)
    return cv2.resize(low, (w, h), interpolation=cv2.INTER_NEAREST), None


@_pattern('photo')
def _photo(scene: Scene, yy: np.ndarray, xx: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Photo-like: blotchy regions of both colours, multi-scale shading, grain."""
    h, w = xx.shape
    field_ = _fbm(scene, h, w, p)
    t = (field_ > scene.u(-0.3, 0.3)).astype(np.float32)
    bright = 0.85 + 0.3 * _fbm(scene, h, w, p * 0.5) + scene.rng.uniform(-0.08, 0.08, (h, w)).astype(np.float32)
    return t, bright


@_pattern('metal')
def _metal(scene: Scene, yy: np.ndarray, xx: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Brushed metal: one colour, banded specular gradient along one direction."""
    h, w = xx.shape
    ang = scene.u(0, math.pi)
    proj = (xx * math.cos(ang) + yy * math.sin(ang)) / max(float(max(h, w)), 1.0)
    t = np.zeros((h, w), np.float32)
    bright = (
        0.7 + 0.35 * np.abs(np.sin(proj * scene.u(2.0, 6.0) + scene.u(0, math.pi))) + 0.05 * np.sin(yy * 1.7 + xx * 0.3)
    )
    return t, bright


# -- 'proxy' family patterns -----------------------------------------------------------------------------


@_pattern('dots')
def _dots(scene: Scene, yy: np.ndarray, xx: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray | None]:
    cx, cy = (xx % p) - p / 2, (yy % p) - p / 2
    return ((cx * cx + cy * cy) < (p * 0.3) ** 2).astype(np.float32), None


@_pattern('rings')
def _rings(scene: Scene, yy: np.ndarray, xx: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray | None]:
    h, w = xx.shape
    ox, oy = scene.u(0, w), scene.u(0, h)
    return (np.floor(np.hypot(xx - ox, yy - oy) / p) % 2).astype(np.float32), None


@_pattern('gradient')
def _gradient(scene: Scene, yy: np.ndarray, xx: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray | None]:
    ang = scene.u(0, math.pi)
    proj = xx * math.cos(ang) + yy * math.sin(ang)
    return (proj - proj.min()) / max(float(proj.max() - proj.min()), 1.0), None


@_pattern('zigzag')
def _zigzag(scene: Scene, yy: np.ndarray, xx: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray | None]:
    tri = np.abs((xx / p) % 2 - 1) * p
    return (np.floor((yy + tri) / p) % 2).astype(np.float32), None


@_pattern('wood')
def _wood(scene: Scene, yy: np.ndarray, xx: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Wood grain: warped dark lines in one colour, a few knots of the other."""
    h, w = xx.shape
    warp = _fbm(scene, h, w, p * 2.0) * p * 0.8
    vertical = scene.chance(0.5)
    coord = (xx if vertical else yy) + warp
    grain = np.abs(np.sin(coord * math.pi / max(p * 0.35, 1.0)))
    bright = 0.62 + 0.4 * grain
    t = np.zeros((h, w), np.float32)
    for _ in range(int(scene.rng.integers(0, 3))):
        kx, ky, kr = scene.u(0, w), scene.u(0, h), max(p * scene.u(0.15, 0.35), 1.0)
        t = np.maximum(t, (np.hypot(xx - kx, (yy - ky) * 1.6) < kr).astype(np.float32))
    return t, bright


@_pattern('hatch')
def _hatch(scene: Scene, yy: np.ndarray, xx: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Cross-hatched lines of the second colour."""
    lw_ = max(p * 0.18, 1.0)
    return (((xx + yy) % p < lw_) | ((xx - yy) % p < lw_)).astype(np.float32), None
