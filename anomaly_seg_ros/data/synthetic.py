"""A procedural road-scene world with exact Cityscapes labels and road-obstacle anomalies.

No dataset can be downloaded where this package is developed, so training and evaluation run on this
world: a camera looking down a (possibly gently curving) street with road, lane markings, tram rails,
sidewalks, terrain, building facades with windows, vegetation, walls/fences, poles with traffic signs
and traffic lights, street lamps, cars, trucks, buses, trams (class ``train``), persons, cyclists and
motorcyclists, all drawn far-to-near with a pinhole ground-plane model so that sizes follow
perspective. All 19 Cityscapes training classes appear regularly.

Void objects that belong to no Cityscapes training class (trash bins, benches, bollards, advertising
columns, parking meters, construction barriers, all on the sidewalk, and the ego vehicle's bonnet at
the bottom edge of some frames) are labelled 255 in the segmentation labels and 255 (ignore) in the
anomaly ground truth, as in Cityscapes / Fishyscapes. Road obstacles (boxes, barrels, rocks, tyre
stacks, toppled chairs, animals, ...) that belong to no Cityscapes class stand on the road, from a few
pixels far away to a quarter of the frame width near by; their visible pixels are ``anomaly == 1`` and
``labels == 255`` (nearer objects may hide part of one; the labels follow what is visible).

Each frame has a weather / lighting condition (``WorldConfig.weather``): clear (sun with cast shadows
of buildings, vehicles, poles and trees on the ground, sun-facing facades brighter), overcast, dusk
(low sun, long shadows, warm light, lamps on), night (dark, lit street lamps with light pools, lit
windows, vehicle head and tail lights with glow), fog (blend to a fog colour growing with depth) and
rain (streaks, darker wet road with faint reflections, light haze). Weather changes pixels only: the
same seed with two weathers gives identical labels and anomaly masks.

Geometry: world units are camera heights (about 1.5 m). A ground point at lateral offset ``X`` and
depth ``d`` (plus height ``Z`` above ground) projects to
``x = vx + f * (X + kappa * d**2) / d`` and ``y = y_h + f * (1 - Z) / d`` (horizon row ``y_h``,
vanishing column ``vx``, focal ``f`` in pixels, road curvature ``kappa``).

Every labelled drawing call paints the image and the label map with the same polygon and
``cv2.LINE_8`` (no anti-aliasing), so labels align with pixels exactly; lighting, shadows, fog, rain,
glows, texture noise, colour jitter and a mild blur touch the image alone. Randomness comes from
``np.random.default_rng(seed)`` only (split into independent child streams for the scene, obstacles,
weather and finish); the same seed and config give byte-identical frames.
"""

from __future__ import annotations

import colorsys
import contextlib
import functools
import math
import operator
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, cast

import cv2
import numpy as np

from anomaly_seg_ros.classes import ANOMALY_ID, ANOMALY_IGNORE, ANOMALY_IN_DIST, IGNORE_ID, TRAIN_ID
from anomaly_seg_ros.data.sample import Sample
from anomaly_seg_ros.errors import ConfigError

__all__ = ['ANOMALY_FAMILIES', 'WEATHERS', 'SyntheticWorld', 'WorldConfig', 'WorldConfigError', 'generate']

ANOMALY_FAMILIES: tuple[str, ...] = ('test', 'proxy')
WEATHERS: tuple[str, ...] = ('clear', 'overcast', 'dusk', 'night', 'fog', 'rain')
# how often weather='random' picks each condition (same order as WEATHERS)
_WEATHER_P: tuple[float, ...] = (0.34, 0.2, 0.12, 0.12, 0.11, 0.11)
_MIN_SIZE = 32
_LINE = cv2.LINE_8

_ROAD = TRAIN_ID['road']
_SIDEWALK = TRAIN_ID['sidewalk']
_BUILDING = TRAIN_ID['building']
_WALL = TRAIN_ID['wall']
_FENCE = TRAIN_ID['fence']
_POLE = TRAIN_ID['pole']
_LIGHT = TRAIN_ID['traffic light']
_SIGN = TRAIN_ID['traffic sign']
_VEGETATION = TRAIN_ID['vegetation']
_TERRAIN = TRAIN_ID['terrain']
_SKY = TRAIN_ID['sky']
_PERSON = TRAIN_ID['person']
_RIDER = TRAIN_ID['rider']
_CAR = TRAIN_ID['car']
_TRUCK = TRAIN_ID['truck']
_BUS = TRAIN_ID['bus']
_MOTORCYCLE = TRAIN_ID['motorcycle']
_BICYCLE = TRAIN_ID['bicycle']
_TRAIN = TRAIN_ID['train']

# Obstacle appearance per family: disjoint shape sets and disjoint hue bands (degrees).
_FAMILY_SHAPES: dict[str, tuple[str, ...]] = {
    'test': ('crate', 'taped_box', 'barrel', 'lying_barrel', 'rock', 'tyre_stack', 'chair', 'sack', 'animal'),
    'proxy': ('cone', 'ball', 'tyre', 'star', 'plank', 'bucket', 'bag', 'pallet'),
}
_FAMILY_HUES: dict[str, tuple[float, ...]] = {
    'test': (300.0, 180.0, 25.0),  # magenta, cyan, orange
    'proxy': (270.0, 335.0, 57.0, 100.0),  # violet, hot pink, yellow, lime
}
_FAMILY_PATTERNS: dict[str, tuple[str, ...]] = {
    'test': ('solid', 'stripes', 'checker', 'speckle', 'photo', 'metal'),
    'proxy': ('dots', 'rings', 'gradient', 'zigzag', 'wood', 'hatch'),
}
_HUE_JITTER = 8.0

Color = tuple[int, int, int]


class WorldConfigError(ConfigError, ValueError):
    """A ``WorldConfig`` field has a bad value; the field name is in the text."""


@dataclass(frozen=True)
class WorldConfig:
    """How frames of the synthetic world look.

    height, width:  frame size in pixels (each >= 32).
    anomaly_prob:   chance that a frame holds at least one road obstacle, in [0, 1].
    max_anomalies:  the most obstacles in one frame (a frame with obstacles holds 1..max_anomalies).
    anomaly_family: 'test' or 'proxy', two disjoint families of obstacle shapes and colours (train an
                    outlier-exposure fine-tune on 'proxy', evaluate on 'test').
    ignore_band:    pixels within this distance outside an obstacle get anomaly = 255 (0 = no band).
    weather:        'random' (a per-frame draw: mostly clear, also overcast, dusk, night, fog and rain)
                    or one of WEATHERS to fix the condition. Weather changes pixels only: the same seed
                    gives the same labels and anomaly masks under every weather, and 'random' renders
                    exactly the frame of the weather it drew.
    void_objects:   draw void objects (sidewalk furniture and the ego bonnet; labels 255, anomaly 255).
                    False gives frames whose labels are all trainIds outside obstacles.
    """

    height: int = 512
    width: int = 1024
    anomaly_prob: float = 0.5
    max_anomalies: int = 3
    anomaly_family: str = 'test'
    ignore_band: int = 0
    weather: str = 'random'
    void_objects: bool = True

    def __post_init__(self) -> None:
        for name in ('height', 'width'):
            value = getattr(self, name)
            if not _is_int(value) or value < _MIN_SIZE:
                raise WorldConfigError(f'WorldConfig.{name} must be an int >= {_MIN_SIZE}, got {value!r}')
        p = self.anomaly_prob
        if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or not 0.0 <= p <= 1.0:
            raise WorldConfigError(f'WorldConfig.anomaly_prob must be a number in [0, 1], got {p!r}')
        if not _is_int(self.max_anomalies) or self.max_anomalies < 0:
            raise WorldConfigError(f'WorldConfig.max_anomalies must be an int >= 0, got {self.max_anomalies!r}')
        if self.max_anomalies == 0 and p > 0:
            raise WorldConfigError(f'WorldConfig.max_anomalies must be >= 1 when anomaly_prob > 0 (anomaly_prob={p!r})')
        if self.anomaly_family not in ANOMALY_FAMILIES:
            raise WorldConfigError(
                f'WorldConfig.anomaly_family must be one of {ANOMALY_FAMILIES}, got {self.anomaly_family!r}'
            )
        if not _is_int(self.ignore_band) or self.ignore_band < 0:
            raise WorldConfigError(f'WorldConfig.ignore_band must be an int >= 0, got {self.ignore_band!r}')
        if not isinstance(self.weather, str) or (self.weather != 'random' and self.weather not in WEATHERS):
            raise WorldConfigError(f"WorldConfig.weather must be 'random' or one of {WEATHERS}, got {self.weather!r}")
        if not isinstance(self.void_objects, (bool, np.bool_)):
            raise WorldConfigError(f'WorldConfig.void_objects must be a bool, got {self.void_objects!r}')


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_seed(seed: Any, what: str = 'seed') -> int:
    if not _is_int(seed) or seed < 0:
        raise ValueError(f'{what} must be an int >= 0, got {seed!r}')
    return int(seed)


def generate(seed: int, config: WorldConfig = WorldConfig()) -> Sample:
    """Render one frame; deterministic per (seed, config). The name is ``'synthetic-{seed}'``."""
    seed = _check_seed(seed)
    if not isinstance(config, WorldConfig):
        raise TypeError(f'config must be a WorldConfig, got {type(config).__name__}')
    image, labels, anomaly = _Renderer(np.random.default_rng(seed), config).render()
    return Sample(image=image, labels=labels, anomaly=anomaly, name=f'synthetic-{seed}')


class SyntheticWorld:
    """A sequence of ``n`` frames: ``world[i] == generate(seed * 1_000_003 + i, config)`` (renamed).

    Frames are rendered on access (nothing is cached); names are ``'synthetic-s{seed}-{i:06d}'``.
    """

    SEED_STRIDE = 1_000_003

    def __init__(self, n: int, seed: int = 0, config: WorldConfig = WorldConfig()) -> None:
        if not _is_int(n) or n < 0:
            raise ValueError(f'n must be an int >= 0, got {n!r}')
        if not isinstance(config, WorldConfig):
            raise TypeError(f'config must be a WorldConfig, got {type(config).__name__}')
        self.n = int(n)
        self.seed = _check_seed(seed)
        self.config = config

    def __len__(self) -> int:
        return self.n

    def frame_seed(self, i: int) -> int:
        """The ``generate`` seed of frame ``i`` (0 <= i < n)."""
        return self.seed * self.SEED_STRIDE + i

    def __getitem__(self, i: int) -> Sample:
        if not _is_int(i):
            raise TypeError(f'SyntheticWorld indices must be ints, got {type(i).__name__}')
        index = operator.index(i)
        if index < 0:
            index += self.n
        if not 0 <= index < self.n:
            raise IndexError(f'SyntheticWorld index {i} out of range for length {self.n}')
        sample = generate(self.frame_seed(index), self.config)
        return replace(sample, name=f'synthetic-s{self.seed}-{index:06d}')

    def __iter__(self) -> Iterator[Sample]:
        for i in range(self.n):
            yield self[i]

    def __repr__(self) -> str:
        return f'SyntheticWorld(n={self.n}, seed={self.seed}, config={self.config!r})'


# ----------------------------------------------------------------------------------------------------
# colours


def _hsv(h: float, s: float, v: float) -> Color:
    """Hue in degrees, saturation and value in [0, 1] -> RGB ints."""
    r, g, b = colorsys.hsv_to_rgb((h % 360.0) / 360.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return (int(r * 255), int(g * 255), int(b * 255))


def _clip_color(c: Any) -> Color:
    return (int(min(max(c[0], 0), 255)), int(min(max(c[1], 0), 255)), int(min(max(c[2], 0), 255)))


def _scale(c: Color, k: float) -> Color:
    return _clip_color((c[0] * k, c[1] * k, c[2] * k))


def _mix(a: Color, b: Color, t: float) -> Color:
    return _clip_color(tuple(a[i] * (1 - t) + b[i] * t for i in range(3)))


# Per-class texture amplitudes (coarse blotches, mid-scale texture, fine grain), in grey levels.
_TEXTURE = {
    _ROAD: (10, 5, 9),
    _SIDEWALK: (8, 5, 7),
    _BUILDING: (10, 6, 5),
    _WALL: (10, 6, 7),
    _FENCE: (4, 3, 4),
    _POLE: (4, 2, 3),
    _LIGHT: (2, 2, 3),
    _SIGN: (2, 2, 3),
    _VEGETATION: (18, 22, 20),
    _TERRAIN: (16, 10, 12),
    _SKY: (12, 3, 2),
    _PERSON: (4, 4, 4),
    _RIDER: (4, 4, 4),
    _CAR: (4, 2, 3),
    _TRUCK: (6, 3, 3),
    _BUS: (5, 3, 3),
    TRAIN_ID['train']: (5, 3, 3),
    _MOTORCYCLE: (4, 3, 3),
    _BICYCLE: (3, 3, 3),
    IGNORE_ID: (6, 5, 6),
}


# ground classes (sun shadows fall on them, fog depth follows the image row) and emitter codes (label + 1)
_GROUND_LUT = np.zeros((1, 256), dtype=np.uint8)
_GROUND_LUT[0, [_ROAD, _SIDEWALK, _TERRAIN]] = 1
_EMIT_LUT = np.zeros((1, 256), dtype=np.uint8)
_EMIT_LUT[0, :19] = np.arange(1, 20)


@functools.lru_cache(maxsize=8)
def _fine_noise_table(height: int, width: int) -> np.ndarray:
    """A fixed (2H, 2W) table of fine grain noise in [-1, 1); frames crop it at a random offset."""
    rng = np.random.default_rng(0x5EED_CAFE)
    table = rng.random((2 * height, 2 * width), dtype=np.float32) * 2.0 - 1.0
    table.setflags(write=False)
    return table


# ----------------------------------------------------------------------------------------------------
# camera


class _Camera:
    def __init__(self, height: int, width: int, y_h: float, vx: float, f: float, kappa: float) -> None:
        self.H, self.W, self.y_h, self.vx, self.f, self.kappa = height, width, y_h, vx, f, kappa
        self.lim = 1_000_000  # cv2 fills polygons with far off-frame vertices exactly; only guard overflow

    def xy(self, X: Any, d: Any, Z: Any = 0.0) -> tuple[np.ndarray, np.ndarray]:
        X, d, Z = np.asarray(X, dtype=np.float64), np.asarray(d, dtype=np.float64), np.asarray(Z, dtype=np.float64)
        x = self.vx + self.f * (X + self.kappa * d * d) / d
        y = self.y_h + self.f * (1.0 - Z) / d
        return x, y

    def pts(self, X: Any, d: Any, Z: Any = 0.0) -> np.ndarray:
        """(N, 2) int32 pixel polygon for broadcast world coordinates (1-D or scalars)."""
        x, y = self.xy(X, d, Z)
        out = np.empty((max(x.size, y.size), 2))
        out[:, 0] = x
        out[:, 1] = y
        np.clip(out, -self.lim, self.lim, out=out)
        return np.rint(out).astype(np.int32)

    def point(self, X: float, d: float, Z: float = 0.0) -> tuple[float, float]:
        x = self.vx + self.f * (X + self.kappa * d * d) / d
        return x, self.y_h + self.f * (1.0 - Z) / d

    def g(self, d: float) -> float:
        """Pixels per world unit at depth d."""
        return self.f / d

    def depth_samples(self, d0: float, d1: float, n: int = 20) -> np.ndarray:
        if self.kappa == 0.0:
            return np.array([d0, d1])
        return np.geomspace(d0, d1, n)

    def strip(self, Xa: float, Xb: float, d0: float, d1: float, Z: float = 0.0) -> np.ndarray:
        ds = self.depth_samples(d0, d1)
        return np.concatenate([self.pts(Xa, ds, Z), self.pts(Xb, ds[::-1], Z)])

    def wall(self, X: float, d0: float, d1: float, Z0: float, Z1: Any) -> np.ndarray:
        """Vertical plane at lateral X between depths d0..d1 and heights Z0..Z1 (Z1 may vary along d)."""
        ds = self.depth_samples(d0, d1, 8)
        z1 = np.broadcast_to(np.asarray(Z1, dtype=np.float64), ds.shape) if np.ndim(Z1) else Z1
        top = self.pts(X, ds, z1)
        return np.concatenate([self.pts(X, ds, Z0), top[::-1]])

    def box_faces(
        self, X0: float, X1: float, d0: float, d1: float, Z0: float, Z1: float
    ) -> list[tuple[str, np.ndarray]]:
        """Visible faces of an axis-aligned box in drawing order (farther faces first)."""
        faces: list[tuple[str, np.ndarray]] = []
        dm = 0.5 * (d0 + d1)
        off = self.kappa * dm * dm
        if X0 + off > 0:
            faces.append(('side', self.pts([X0, X0, X0, X0], [d0, d1, d1, d0], [Z0, Z0, Z1, Z1])))
        elif X1 + off < 0:
            faces.append(('side', self.pts([X1, X1, X1, X1], [d0, d1, d1, d0], [Z0, Z0, Z1, Z1])))
        if Z1 < 1.0:
            faces.append(('top', self.pts([X0, X1, X1, X0], [d0, d0, d1, d1], Z1)))
        elif Z0 > 1.0:
            faces.append(('top', self.pts([X0, X1, X1, X0], [d0, d0, d1, d1], Z0)))
        faces.append(('front', self.pts([X0, X1, X1, X0], d0, [Z0, Z0, Z1, Z1])))
        return faces


# ----------------------------------------------------------------------------------------------------
# drawing primitives: ('poly', pts, color, label|None), ('polys', [pts], color, label|None),
# ('ellipse', (cx, cy), (ax, ay), angle, color, label|None), ('circle', (cx, cy), r, color, label, thickness),
# ('line', p0, p1, color, label, thickness), ('patch', x0, y0, rgb, mask)


def _bbox(prims: list[tuple]) -> tuple[float, float, float, float]:
    xs0, ys0, xs1, ys1 = [], [], [], []
    for p in prims:
        kind = p[0]
        if kind == 'poly':
            pts = p[1]
            xs0.append(pts[:, 0].min())
            ys0.append(pts[:, 1].min())
            xs1.append(pts[:, 0].max())
            ys1.append(pts[:, 1].max())
        elif kind == 'ellipse':
            (cx, cy), (ax, ay) = p[1], p[2]
            r = max(ax, ay)
            xs0.append(cx - r)
            ys0.append(cy - r)
            xs1.append(cx + r)
            ys1.append(cy + r)
        elif kind == 'circle':
            (cx, cy), r, t = p[1], p[2], max(p[5], 0)
            xs0.append(cx - r - t)
            ys0.append(cy - r - t)
            xs1.append(cx + r + t)
            ys1.append(cy + r + t)
        elif kind == 'line':
            (ax, ay), (bx, by), t = p[1], p[2], p[5]
            xs0.append(min(ax, bx) - t)
            ys0.append(min(ay, by) - t)
            xs1.append(max(ax, bx) + t)
            ys1.append(max(ay, by) + t)
        elif kind == 'patch':
            x0, y0, mask = p[1], p[2], p[4]
            xs0.append(x0)
            ys0.append(y0)
            xs1.append(x0 + mask.shape[1])
            ys1.append(y0 + mask.shape[0])
    if not xs0:
        return (0.0, 0.0, -1.0, -1.0)
    return (float(min(xs0)), float(min(ys0)), float(max(xs1)), float(max(ys1)))


def _boxes_overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float], margin: float) -> bool:
    return not (a[2] + margin < b[0] or b[2] + margin < a[0] or a[3] + margin < b[1] or b[3] + margin < a[1])


@dataclass
class _Object:
    depth: float
    prims: list[tuple]
    bbox: tuple[float, float, float, float]
    footprint: tuple[float, float, float, float] | None  # X0, X1, d0, d1 in world units
    anomaly: bool = False
    void: bool = False
    occluded: bool = False  # (obstacles) an object in front hides part of it
    # world prisms (X0, X1, d0, d1, Z0, Z1) that cast sun shadows on the ground
    casters: list[tuple[float, float, float, float, float, float]] = field(default_factory=list)
    # emitters lit at night / dusk: (label the emitting pixels carry, image-only primitive)
    glow: list[tuple[int, tuple]] = field(default_factory=list)
    # light pools on the ground at night: ground polygons as (X array, d array), with intensity
    pools: list[tuple[np.ndarray, np.ndarray, float]] = field(default_factory=list)


def _raster(buf: np.ndarray, prims: list[tuple], value: int, labelled_only: bool = True) -> None:
    """Draw the shapes of ``prims`` into a single-channel buffer with one value (colours ignored)."""
    v = int(value)
    for p in prims:
        kind = p[0]
        if kind == 'poly':
            if p[3] is not None or not labelled_only:
                cv2.fillPoly(buf, [p[1]], v, _LINE)
        elif kind == 'polys':
            if p[1] and (p[3] is not None or not labelled_only):
                cv2.fillPoly(buf, p[1], v, _LINE)
        elif kind == 'ellipse':
            if p[5] is not None or not labelled_only:
                center = (int(round(p[1][0])), int(round(p[1][1])))
                axes = (max(int(round(p[2][0])), 1), max(int(round(p[2][1])), 1))
                cv2.ellipse(buf, center, axes, p[3], 0, 360, v, -1, _LINE)
        elif kind == 'circle':
            if p[4] is not None or not labelled_only:
                center = (int(round(p[1][0])), int(round(p[1][1])))
                cv2.circle(buf, center, max(int(round(p[2])), 1), v, p[5], _LINE)
        elif kind == 'line':
            if p[4] is not None or not labelled_only:
                a = (int(round(p[1][0])), int(round(p[1][1])))
                b = (int(round(p[2][0])), int(round(p[2][1])))
                cv2.line(buf, a, b, v, max(int(round(p[5])), 1), _LINE)
        elif kind == 'patch':
            x0, y0, mask = p[1], p[2], p[4]
            H, W = buf.shape[:2]
            h, w = mask.shape
            ax0, ay0, ax1, ay1 = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
            if ax0 < ax1 and ay0 < ay1:
                buf[ay0:ay1, ax0:ax1][mask[ay0 - y0 : ay1 - y0, ax0 - x0 : ax1 - x0]] = v


class _Canvas:
    """Image, labels and anomaly GT. A void label (255) also marks the anomaly GT 255 (ignore); obstacle
    patches mark labels 255 and anomaly 1. Nearer labelled objects that hide part of an obstacle leave
    its anomaly 1 underneath; ``render`` clears anomaly 1 wherever the final label is not 255."""

    def __init__(self, height: int, width: int) -> None:
        self.img = np.zeros((height, width, 3), dtype=np.uint8)
        self.lab = np.full((height, width), _SKY, dtype=np.uint8)
        self.anom = np.zeros((height, width), dtype=np.uint8)

    def poly(self, pts: np.ndarray, color: Color, label: int | None) -> None:
        cv2.fillPoly(self.img, [pts], color, _LINE)
        if label is not None:
            cv2.fillPoly(self.lab, [pts], int(label), _LINE)
            if label == IGNORE_ID:
                cv2.fillPoly(self.anom, [pts], ANOMALY_IGNORE, _LINE)

    def polys(self, pts: list[np.ndarray], color: Color, label: int | None) -> None:
        if not pts:
            return
        cv2.fillPoly(self.img, pts, color, _LINE)
        if label is not None:
            cv2.fillPoly(self.lab, pts, int(label), _LINE)
            if label == IGNORE_ID:
                cv2.fillPoly(self.anom, pts, ANOMALY_IGNORE, _LINE)

    def draw(self, prims: list[tuple]) -> None:
        for p in prims:
            kind = p[0]
            if kind == 'poly':
                self.poly(p[1], p[2], p[3])
            elif kind == 'polys':
                self.polys(p[1], p[2], p[3])
            elif kind == 'ellipse':
                center = (int(round(p[1][0])), int(round(p[1][1])))
                axes = (max(int(round(p[2][0])), 1), max(int(round(p[2][1])), 1))
                cv2.ellipse(self.img, center, axes, p[3], 0, 360, p[4], -1, _LINE)
                if p[5] is not None:
                    cv2.ellipse(self.lab, center, axes, p[3], 0, 360, int(p[5]), -1, _LINE)
                    if p[5] == IGNORE_ID:
                        cv2.ellipse(self.anom, center, axes, p[3], 0, 360, ANOMALY_IGNORE, -1, _LINE)
            elif kind == 'circle':
                center = (int(round(p[1][0])), int(round(p[1][1])))
                r = max(int(round(p[2])), 1)
                cv2.circle(self.img, center, r, p[3], p[5], _LINE)
                if p[4] is not None:
                    cv2.circle(self.lab, center, r, int(p[4]), p[5], _LINE)
                    if p[4] == IGNORE_ID:
                        cv2.circle(self.anom, center, r, ANOMALY_IGNORE, p[5], _LINE)
            elif kind == 'line':
                a = (int(round(p[1][0])), int(round(p[1][1])))
                b = (int(round(p[2][0])), int(round(p[2][1])))
                t = max(int(round(p[5])), 1)
                cv2.line(self.img, a, b, p[3], t, _LINE)
                if p[4] is not None:
                    cv2.line(self.lab, a, b, int(p[4]), t, _LINE)
                    if p[4] == IGNORE_ID:
                        cv2.line(self.anom, a, b, ANOMALY_IGNORE, t, _LINE)
            elif kind == 'patch':
                self._patch(p[1], p[2], p[3], p[4])
            else:  # pragma: no cover - programming error
                raise AssertionError(kind)

    def _patch(self, x0: int, y0: int, rgb: np.ndarray, mask: np.ndarray) -> None:
        H, W = self.lab.shape
        h, w = mask.shape
        ax0, ay0, ax1, ay1 = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
        if ax0 >= ax1 or ay0 >= ay1:
            return
        m = mask[ay0 - y0 : ay1 - y0, ax0 - x0 : ax1 - x0]
        self.img[ay0:ay1, ax0:ax1][m] = rgb[ay0 - y0 : ay1 - y0, ax0 - x0 : ax1 - x0][m]
        self.lab[ay0:ay1, ax0:ax1][m] = IGNORE_ID
        self.anom[ay0:ay1, ax0:ax1][m] = ANOMALY_ID


# ----------------------------------------------------------------------------------------------------
# the scene


@dataclass
class _Side:
    sign: int  # -1 left, +1 right
    kind: str  # 'buildings' | 'vegetation' | 'open'
    road_edge: float  # lateral X of the road edge (signed)
    strips: list[tuple[int, float, float, Color]]  # (label, X_inner, X_outer, colour), signed X
    facade: float  # signed X where the side structures start
    walk: tuple[float, float] | None  # (X_inner, X_outer) of the sidewalk, signed, if any
    beyond: int  # ground class beyond the facade line


class _Renderer:
    def __init__(self, rng: np.random.Generator, config: WorldConfig) -> None:
        # Independent streams: the scene, the obstacles, the image finish, the weather pick and the
        # weather's own draws. A frame with and without obstacles (or with either family) then shares
        # its layout, up to objects that an obstacle displaces; every weather shares the same geometry.
        self.rng = rng
        self.obstacle_rng, self.finish_rng, pick_rng, self.wrng = rng.spawn(4)
        self.cfg = config
        self.H, self.W = config.height, config.width
        self.canvas = _Canvas(self.H, self.W)
        self.objects: list[_Object] = []
        self.casters: list[tuple[float, float, float, float, float, float]] = []  # static shadow casters
        weather = config.weather
        if weather == 'random':
            weather = WEATHERS[int(pick_rng.choice(len(WEATHERS), p=_WEATHER_P))]
        self.weather = weather
        self.wx = self._weather_params(weather)
        self.lamps_on = bool(self.wx['lamps'])
        self.emit = np.zeros((self.H, self.W), dtype=np.uint8) if self.lamps_on else None
        self.bonnet: list[tuple] | None = None
        self.y_floor = float(self.H)  # first row hidden by the ego bonnet (H: none)

    # -- random helpers ------------------------------------------------------------------------------
    def u(self, a: float, b: float) -> float:
        return float(self.rng.uniform(a, b))

    def wu(self, a: float, b: float) -> float:
        """A draw from the weather stream (never the scene stream: weather must not move geometry)."""
        return float(self.wrng.uniform(a, b))

    @contextlib.contextmanager
    def _substream(self) -> Iterator[None]:
        """Draw from a child stream, so that retries inside do not shift the parent stream."""
        parent = self.rng
        self.rng = parent.spawn(1)[0]
        try:
            yield
        finally:
            self.rng = parent

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def pick(self, items: Any, p: Any = None) -> Any:
        return items[int(self.rng.choice(len(items), p=p))]

    def jitter(self, c: Color, amount: float) -> Color:
        k = self.u(1 - amount, 1 + amount)
        return _clip_color(tuple(c[i] * k + self.u(-amount, amount) * 40 for i in range(3)))

    # -- weather -------------------------------------------------------------------------------------
    def _weather_params(self, weather: str) -> dict[str, Any]:
        """Per-frame lighting: sun (shadows), ambient level, colour tint, fog, rain, lamps; weather stream."""
        wu = self.wu
        wx: dict[str, Any] = {
            'sun': None,
            'fog': None,
            'rain': None,
            'lamps': False,
            'ambient': 1.0,
            'tint': (1.0, 1.0, 1.0),
            'bias_k': 1.0,
            'glow': 0.0,
            'pool': 0.0,
        }
        if weather in ('clear', 'dusk'):
            elev = math.radians(wu(20.0, 62.0) if weather == 'clear' else wu(5.0, 14.0))
            azim = wu(0.0, 2.0 * math.pi)  # direction towards the sun: 0 = straight ahead, pi/2 = right
            cot = 1.0 / math.tan(elev)
            # shadow offset on the ground per unit of height, and how directly each facade faces the sun
            wx['sun'] = {
                'sx': -math.sin(azim) * cot,
                'sd': -math.cos(azim) * cot,
                'shade': wu(0.45, 0.62) if weather == 'clear' else wu(0.55, 0.72),
                'left': 0.8 + 0.45 * max(0.0, math.sin(azim)) - 0.1 * max(0.0, -math.sin(azim)),
                'right': 0.8 + 0.45 * max(0.0, -math.sin(azim)) - 0.1 * max(0.0, math.sin(azim)),
            }
        if weather == 'clear':
            warm = wu(0.0, 0.05)
            wx['tint'] = (1.0 + warm, 1.0, 1.0 - warm)
        elif weather == 'overcast':
            wx['ambient'] = wu(0.78, 0.95)
            cool = wu(0.0, 0.04)
            wx['tint'] = (1.0 - cool, 1.0, 1.0 + cool)
            wx['bias_k'] = 0.7
        elif weather == 'dusk':
            wx['ambient'] = wu(0.55, 0.75)
            wx['tint'] = (wu(1.08, 1.2), wu(0.9, 0.98), wu(0.68, 0.82))
            wx['bias_k'] = 0.5
            wx['lamps'] = self.wrng.random() < 0.6
            wx['glow'], wx['pool'] = wu(0.6, 1.2), wu(0.15, 0.3)
        elif weather == 'night':
            wx['ambient'] = wu(0.16, 0.3)
            wx['tint'] = (wu(0.85, 1.0), wu(0.9, 1.0), wu(1.0, 1.15))
            wx['bias_k'] = 0.2
            wx['lamps'] = True
            wx['glow'], wx['pool'] = wu(1.3, 2.2), wu(0.55, 0.85)
        elif weather == 'fog':
            v = wu(0.72, 0.9)
            wx['ambient'] = wu(0.85, 1.0)
            wx['fog'] = {'vis': wu(12.0, 45.0), 'color': _hsv(wu(195, 225), wu(0.0, 0.03), v), 'sky': 1.0}
            wx['bias_k'] = 0.4
        elif weather == 'rain':
            wx['ambient'] = wu(0.62, 0.8)
            wx['tint'] = (wu(0.92, 0.98), wu(0.96, 1.0), 1.0)
            wx['fog'] = {
                'vis': wu(60.0, 200.0),
                'color': _hsv(wu(195, 225), wu(0.02, 0.08), wu(0.5, 0.68)),
                'sky': 0.85,
            }
            wx['rain'] = {
                'density': wu(0.5, 2.0),
                'angle': wu(-0.35, 0.35),
                'length': wu(0.025, 0.07),
                'amp': wu(18.0, 40.0),
                'wet': wu(0.6, 0.78),
                'reflect': wu(0.18, 0.35),
            }
            wx['bias_k'] = 0.5
        return wx

    def _weather_sky(self) -> tuple[Color, Color]:
        """Sky colours (top, horizon) of this frame's weather, from the weather stream."""
        wu, w = self.wu, self.weather
        if w == 'clear':
            return _hsv(wu(200, 225), wu(0.35, 0.65), wu(0.7, 0.95)), _hsv(wu(195, 215), wu(0.08, 0.25), wu(0.85, 1.0))
        if w == 'overcast':
            v = wu(0.65, 0.9)
            return _hsv(wu(190, 230), wu(0.0, 0.1), v), _hsv(wu(190, 230), wu(0.0, 0.06), min(v + wu(0.0, 0.1), 1.0))
        if w == 'dusk':
            return _hsv(wu(215, 265), wu(0.3, 0.55), wu(0.35, 0.6)), _hsv(wu(12, 38), wu(0.45, 0.8), wu(0.85, 1.0))
        if w == 'night':
            return _hsv(wu(215, 235), wu(0.5, 0.8), wu(0.03, 0.08)), _hsv(wu(20, 40), wu(0.25, 0.5), wu(0.12, 0.22))
        if w == 'fog':
            c = self.wx['fog']['color']
            return c, c
        v = wu(0.45, 0.62)  # rain
        return _hsv(wu(200, 225), wu(0.03, 0.1), v), _hsv(wu(200, 225), wu(0.02, 0.06), min(v + wu(0.05, 0.15), 1.0))

    # -- top level -----------------------------------------------------------------------------------
    def render(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self._setup()
        self._sky()
        self._backdrop()
        self._ground()
        for side in self.sides:
            self._side_structures(side)
        self._place_anomalies()
        self._place_objects()
        self._place_void_objects()
        self._draw_objects()
        lab, anomaly = self.canvas.lab, self.canvas.anom
        if any(o.anomaly or o.void for o in self.objects):
            # obstacle / void pixels hidden behind nearer labelled objects take their labels' meaning
            anomaly[lab != IGNORE_ID] = ANOMALY_IN_DIST
        image = self._finish()
        band = self.cfg.ignore_band
        if band > 0 and (anomaly == ANOMALY_ID).any():
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
            grown = cv2.dilate((anomaly == ANOMALY_ID).view(np.uint8), kernel)
            anomaly[(grown > 0) & (anomaly == 0)] = ANOMALY_IGNORE
        return image, lab, anomaly

    def _draw_objects(self) -> None:
        """Objects far to near; side buffers for fog depth and night emitters follow the same order."""
        c = self.canvas
        fog = self.wx['fog']
        self.depth_code = np.zeros((self.H, self.W), dtype=np.uint8) if fog is not None else None
        emit = self.emit
        emit_boxes: list[tuple[float, float, float, float]] = []
        for obj in sorted(self.objects, key=lambda o: -o.depth):
            c.draw(obj.prims)
            if self.depth_code is not None:
                _raster(self.depth_code, obj.prims, self._fog_code(obj.depth))
            if emit is not None:
                if emit_boxes and any(_boxes_overlap(obj.bbox, b, 1.0) for b in emit_boxes):
                    _raster(emit, obj.prims, 0)  # a nearer object hides emitters drawn before it
                if obj.glow:
                    for code, prim in obj.glow:
                        c.draw([prim])
                        _raster(emit, [prim], code, labelled_only=False)
                    emit_boxes.append(obj.bbox)
        if self.bonnet is not None:
            c.draw(self.bonnet)
            if self.depth_code is not None:
                _raster(self.depth_code, self.bonnet, 1)
            if emit is not None:
                _raster(emit, self.bonnet, 0)

    def _fog_alpha(self, d: Any) -> Any:
        fog = self.wx['fog']
        return 1.0 - np.exp(-3.0 * np.asarray(d, dtype=np.float64) / fog['vis'])

    def _fog_code(self, d: float) -> int:
        """1..255 encodes the fog alpha of an object at depth d (0 = no object)."""
        return 1 + int(round(254.0 * min(float(self._fog_alpha(max(d, 0.0))), 1.0)))

    def _setup(self) -> None:
        H, W = self.H, self.W
        y_h = H * self.u(0.35, 0.5)
        vx = W * (0.5 + self.u(-0.12, 0.12))
        f = W * self.u(0.85, 1.25)
        g_b = H - y_h
        self.d_near = f / g_b  # depth of the bottom image row
        d_max = self.u(30.0, 130.0)
        d_max = min(d_max, f / 3.0)
        d_max = max(d_max, 4.0 * self.d_near)
        self.d_max = d_max
        self.d_lo = 0.5 * self.d_near
        # road and sides (signed lateral X, camera at 0)
        x_left = -self.u(1.2, 4.5)
        x_right = self.u(1.2, 4.5)
        if self.chance(0.15):  # narrow street
            x_left, x_right = x_left * 0.6, x_right * 0.6
        self.road = (x_left, x_right)
        self.style = self._style()
        self.sides = [self._make_side(-1, x_left), self._make_side(+1, x_right)]
        kmax = 0.6 * min(abs(s.facade) for s in self.sides) / (d_max * d_max)
        kappa = self.u(-kmax, kmax) if self.chance(0.5) else 0.0
        self.cam = _Camera(H, W, y_h, vx, f, kappa)
        # tram line: rails along one lane (drawn with the road), trams run on it
        self.tram_line = self.chance(0.33) and x_right - x_left > 2.0
        self.tram_X: float | None = None
        with self._substream():
            self._make_bonnet()

    def _style(self) -> dict[str, Any]:
        """Per-frame base colours of the stuff classes."""
        u = self.u
        road_v = u(0.28, 0.55)
        road = _hsv(u(0, 360), u(0.0, 0.1), road_v)
        walk_kind = self.pick(['grey', 'beige', 'red', 'dark'], [0.45, 0.25, 0.15, 0.15])
        if walk_kind == 'grey':
            walk = _hsv(u(0, 360), u(0.0, 0.08), u(0.5, 0.75))
        elif walk_kind == 'beige':
            walk = _hsv(u(30, 50), u(0.12, 0.28), u(0.55, 0.78))
        elif walk_kind == 'red':
            walk = _hsv(u(0, 20), u(0.25, 0.45), u(0.45, 0.65))
        else:
            walk = _hsv(u(0, 360), u(0.0, 0.08), road_v + u(0.03, 0.15))
        veg = _hsv(u(70, 125), u(0.35, 0.7), u(0.25, 0.5))
        if self.chance(0.12):  # autumn / dry
            veg = _hsv(u(40, 60), u(0.4, 0.7), u(0.3, 0.5))
        terrain = _hsv(u(55, 95), u(0.3, 0.6), u(0.4, 0.65))
        if self.chance(0.25):  # dirt / dry grass
            terrain = _hsv(u(25, 50), u(0.25, 0.5), u(0.4, 0.6))
        top, hor = self._weather_sky()
        return {
            'road': road,
            'walk': walk,
            'curb': _scale(walk, u(1.05, 1.3)),
            'veg': veg,
            'terrain': terrain,
            'sky_top': top,
            'sky_hor': hor,
            'marking': _hsv(0, 0, u(0.8, 0.97)),
            'yellow_marking': _hsv(u(45, 52), u(0.6, 0.85), u(0.75, 0.95)),
            'rail': _hsv(u(20, 40), u(0.0, 0.15), u(0.45, 0.7)),
        }

    def _make_side(self, sign: int, road_edge: float) -> _Side:
        u = self.u
        kind = self.pick(['buildings', 'vegetation', 'open'], [0.6, 0.27, 0.13])
        layout = self.pick(['walk', 'walk+terrain', 'terrain+walk', 'terrain'], [0.55, 0.2, 0.15, 0.1])
        if kind == 'buildings' and layout == 'terrain':
            layout = 'walk'
        strips: list[tuple[int, float, float, Color]] = []
        x = road_edge
        walk = None
        style = self.style
        for part in layout.split('+'):
            if part == 'walk':
                curb = 0.1
                strips.append((_SIDEWALK, x, x + sign * curb, style['curb']))
                x += sign * curb
                w = u(1.2, 3.5)
                walk = (x, x + sign * w)
                strips.append((_SIDEWALK, x, x + sign * w, style['walk']))
                x += sign * w
            else:
                w = u(0.6, 3.0)
                strips.append((_TERRAIN, x, x + sign * w, self.jitter(style['terrain'], 0.08)))
                x += sign * w
        beyond = _SIDEWALK if kind == 'buildings' else _TERRAIN
        return _Side(sign, kind, road_edge, strips, x, walk, beyond)

    # -- background ----------------------------------------------------------------------------------
    def _sky(self) -> None:
        H = self.H
        y_h = self.cam.y_h
        t = np.clip(np.arange(H, dtype=np.float32) / max(y_h, 1.0), 0.0, 1.0) ** self.u(0.6, 1.6)
        top = np.array(self.style['sky_top'], dtype=np.float32)
        hor = np.array(self.style['sky_hor'], dtype=np.float32)
        grad = top[None, :] + (hor - top)[None, :] * t[:, None]
        self.canvas.img = cv2.resize(grad.astype(np.uint8)[:, None, :], (self.W, H), interpolation=cv2.INTER_NEAREST)

    def _backdrop(self) -> None:
        """A far skyline at depth d_max across the whole width (covers the horizon)."""
        cam, d = self.cam, self.d_max
        g = cam.g(d)
        haze_target = self.style['sky_hor']
        y_base = cam.y_h + g
        urban = sum(s.kind == 'buildings' for s in self.sides) / 2.0
        x = -5.0
        while x < self.W + 5:
            w_world = self.u(3.0, 18.0)
            x1 = x + max(w_world * g, 3.0)
            if self.chance(0.25 + 0.7 * urban):
                Z = self.u(2.0, 16.0)
                col = _mix(self._building_color(), haze_target, self.u(0.25, 0.55))
                pts = np.array([[x, y_base], [x1, y_base], [x1, cam.y_h + g * (1 - Z)], [x, cam.y_h + g * (1 - Z)]])
                self.canvas.poly(np.rint(pts).astype(np.int32), col, _BUILDING)
            else:
                n = max(int((x1 - x) / 3) + 2, 3)
                xs = np.linspace(x, x1, n)
                Zs = self.u(2.0, 6.0) + self.rng.uniform(-0.6, 0.6, n)
                top = np.stack([xs, cam.y_h + g * (1 - Zs)], axis=1)[::-1]
                pts = np.concatenate([np.array([[x, y_base], [x1, y_base]]), top])
                col = _mix(self.jitter(self.style['veg'], 0.1), haze_target, self.u(0.2, 0.45))
                self.canvas.poly(np.rint(pts).astype(np.int32), col, _VEGETATION)
            x = x1

    def _building_color(self) -> Color:
        u = self.u
        kind = self.pick(['plaster', 'brick', 'grey', 'dark', 'white'], [0.3, 0.2, 0.25, 0.1, 0.15])
        if kind == 'plaster':
            return _hsv(u(20, 55), u(0.15, 0.45), u(0.5, 0.85))
        if kind == 'brick':
            return _hsv(u(5, 22), u(0.4, 0.65), u(0.35, 0.6))
        if kind == 'grey':
            return _hsv(u(0, 360), u(0.0, 0.08), u(0.3, 0.65))
        if kind == 'dark':
            return _hsv(u(0, 360), u(0.0, 0.15), u(0.15, 0.3))
        return _hsv(u(30, 60), u(0.0, 0.1), u(0.75, 0.92))

    # -- ground --------------------------------------------------------------------------------------
    def _ground(self) -> None:
        cam, c = self.cam, self.canvas
        d0, d1 = self.d_lo, self.d_max
        far = 2.0 * self.W * d1 / cam.f + 10.0
        for side in self.sides:
            col = self.style['walk'] if side.beyond == _SIDEWALK else self.style['terrain']
            c.poly(cam.strip(side.facade, side.sign * far, d0, d1), self.jitter(col, 0.05), side.beyond)
            for label, xa, xb, col in side.strips:
                c.poly(cam.strip(xa, xb, d0, d1), col, label)
            if side.walk is not None:
                self._paving(side)
        xl, xr = self.road
        c.poly(cam.strip(xl, xr, d0, d1), self.style['road'], _ROAD)
        self._road_patches()
        self._markings()
        if self.tram_line:
            self._rails()

    def _rails(self) -> None:
        """Two embedded tram rails along one lane (labelled road, as in Cityscapes)."""
        cam, c = self.cam, self.canvas
        X = self.pick(self.lanes)
        self.tram_X = X
        gauge = 0.48
        if self.chance(0.4):  # the track bed is paved differently
            c.poly(
                cam.strip(X - gauge - 0.25, X + gauge + 0.25, self.d_lo, self.d_max),
                _scale(self.style['road'], self.u(0.8, 1.2)),
                _ROAD,
            )
        rail, groove = self.style['rail'], _scale(self.style['road'], 0.35)
        for off in (-gauge, gauge):
            c.poly(cam.strip(X + off - 0.05, X + off + 0.05, self.d_lo, self.d_max), groove, _ROAD)
            c.poly(cam.strip(X + off - 0.035, X + off + 0.0, self.d_lo, self.d_max), rail, _ROAD)

    def _make_bonnet(self) -> None:
        """The ego vehicle's bonnet along the bottom edge (Cityscapes 'ego vehicle': void) in some frames."""
        if not self.cfg.void_objects or not self.chance(0.22):
            return
        H, W, u = self.H, self.W, self.u
        hc = H * u(0.05, 0.11)
        he = hc * u(0.0, 0.6)
        xc = W * (0.5 + u(-0.08, 0.08))
        xs = np.linspace(-2.0, W + 1.0, 41)
        t = np.clip(((xs - xc) / (0.55 * W)) ** 2, 0.0, 1.0)
        ys = H - (hc - (hc - he) * t)
        col = self._car_color()
        body = np.concatenate([np.stack([xs, ys], 1), [[W + 1.0, H + 1.0], [-2.0, H + 1.0]]])
        prims: list[tuple] = [('poly', np.rint(body).astype(np.int32), col, IGNORE_ID)]
        # image-only shading inside the body: a darker lower half and a sky highlight near the top edge
        lower = np.concatenate([np.stack([xs, ys + 0.5 * (H - ys) + 1], 1), [[W + 1.0, H + 1.0], [-2.0, H + 1.0]]])
        prims.append(('poly', np.rint(lower).astype(np.int32), _scale(col, u(0.7, 0.9)), None))
        hi = 0.15 + 0.15 * u(0, 1)
        band = np.concatenate(
            [np.stack([xs, ys + hi * (H - ys) + 1], 1), np.stack([xs, ys + (hi + 0.08) * (H - ys) + 1], 1)[::-1]]
        )
        prims.append(('poly', np.rint(band).astype(np.int32), _mix(col, self.style['sky_hor'], u(0.2, 0.5)), None))
        self.bonnet = prims
        self.y_floor = float(H - hc)

    def _paving(self, side: _Side) -> None:
        if self.chance(0.4):
            return
        xa, xb = side.walk  # type: ignore[misc]
        step = self.u(0.7, 1.6)
        col = _scale(self.style['walk'], self.u(0.75, 0.9))
        cam = self.cam
        lines: list[np.ndarray] = []
        d = self.d_lo
        while d < self.d_max and cam.g(d) * step > 4 and len(lines) < 80:
            lines.append(cam.pts([xa, xb], [d, d]))
            d += step
        if lines:
            cv2.polylines(self.canvas.img, lines, False, col, 1, _LINE)

    def _road_patches(self) -> None:
        cam = self.cam
        xl, xr = self.road
        for _ in range(int(self.rng.integers(0, 4))):
            d0 = self.u(self.d_near, min(self.d_max * 0.6, 40.0))
            length = self.u(1.0, 6.0)
            xa = self.u(xl, xr - 0.5)
            xb = min(xa + self.u(0.5, 3.0), xr)
            col = _scale(self.style['road'], self.u(0.7, 1.25))
            self.canvas.poly(cam.strip(xa, xb, d0, d0 + length), col, _ROAD)
        if self.chance(0.3):  # manhole cover
            d = self.u(self.d_near * 1.2, 25.0)
            X = self.u(xl + 0.5, xr - 0.5)
            x, y = cam.point(X, d)
            g = cam.g(d)
            self.canvas.draw([('ellipse', (x, y), (0.35 * g, 0.35 * g / d), 0, _scale(self.style['road'], 0.6), _ROAD)])

    def _markings(self) -> None:
        cam, c, st = self.cam, self.canvas, self.style
        xl, xr = self.road
        width = xr - xl
        n_lanes = max(1, int(round(width / self.u(2.2, 2.7))))
        lane = width / n_lanes
        self.lanes = [xl + lane * (i + 0.5) for i in range(n_lanes)]
        w = self.u(0.07, 0.12)
        dash, gap = self.u(1.5, 3.0), self.u(2.5, 6.0)
        d0 = self.d_lo
        for i in range(1, n_lanes):
            X = xl + lane * i
            centre = n_lanes >= 2 and abs(i - n_lanes / 2) < 0.6
            style = self.pick(['dashed', 'solid', 'double'], [0.7, 0.2, 0.1]) if centre else 'dashed'
            col = st['yellow_marking'] if centre and self.chance(0.15) else st['marking']
            if style == 'solid':
                c.poly(cam.strip(X - w / 2, X + w / 2, d0, self.d_max), col, _ROAD)
            elif style == 'double':
                for off in (-1.5 * w, 1.5 * w):
                    c.poly(cam.strip(X + off - w / 2, X + off + w / 2, d0, self.d_max), col, _ROAD)
            else:
                phase = self.u(0, dash + gap)
                dd = d0 - phase
                polys = []
                while dd < self.d_max:
                    a, b = max(dd, d0), min(dd + dash, self.d_max)
                    if b > a and cam.g(a) * w > 0.3:
                        polys.append(cam.strip(X - w / 2, X + w / 2, a, b))
                    dd += dash + gap
                c.polys(polys, col, _ROAD)
        if self.chance(0.5):  # edge lines
            for X in (xl + 0.25, xr - 0.25):
                c.poly(cam.strip(X - w / 2, X + w / 2, d0, self.d_max), st['marking'], _ROAD)
        if self.chance(0.15):  # zebra crossing
            dc = self.u(self.d_near * 1.3, min(30.0, self.d_max * 0.5))
            depth = self.u(2.0, 3.5)
            sw = self.u(0.35, 0.55)
            polys = []
            X = xl + 0.2
            while X + sw < xr:
                polys.append(cam.strip(X, X + sw, dc, dc + depth))
                X += 2 * sw
            c.polys(polys, st['marking'], _ROAD)

    # -- side structures -----------------------------------------------------------------------------
    def _side_start(self, side: _Side) -> float:
        return 0.5 * min(self.d_lo, abs(side.facade) * self.cam.f / self.W)

    def _side_structures(self, side: _Side) -> None:
        if side.kind == 'buildings':
            self._buildings(side)
        elif side.kind == 'vegetation':
            self._tree_line(side, self._side_start(side), self.d_max, dense=True)
            if self.chance(0.5):
                self._barrier(side, self._side_start(side), self.d_max)
        else:
            self._tree_line(side, self.d_max * self.u(0.2, 0.6), self.d_max, dense=False, setback=self.u(3.0, 12.0))
            if self.chance(0.6):
                self._barrier(side, self._side_start(side), self.d_max)

    def _buildings(self, side: _Side) -> None:
        segs = []
        d = self._side_start(side)
        while d < self.d_max:
            length = self.u(6.0, 25.0)
            segs.append((d, min(d + length, self.d_max)))
            d += length
        for d0, d1 in reversed(segs):  # far to near
            if self.chance(0.15):
                self._tree_line(side, d0, d1, dense=True, setback=self.u(0.5, 3.0))
                self._barrier(side, d0, d1)
            else:
                self._building(side, d0, d1)
                if self.chance(0.18):  # front-garden wall or fence along the facade
                    self._barrier(side, d0 + self.u(0.0, 0.3) * (d1 - d0), d1, X=side.facade - side.sign * 0.05)

    def _building(self, side: _Side, d0: float, d1: float) -> None:
        cam, u = self.cam, self.u
        X = side.facade + side.sign * u(0.0, 0.8)
        Z = u(3.0, 16.0)
        col = self._building_color()
        c = self.canvas
        c.poly(cam.wall(X, d0, d1, 0.0, Z), col, _BUILDING)
        self.casters.append((min(X, X + side.sign * 8.0), max(X, X + side.sign * 8.0), d0, d1, 0.0, Z))
        # end wall facing the camera (visible when the nearer neighbour is set back further)
        c.poly(cam.pts([X, X + side.sign * 2.0, X + side.sign * 2.0, X], d0, [0, 0, Z, Z]), _scale(col, 0.8), _BUILDING)
        # cornice / storey lines
        if self.chance(0.5):
            band = _scale(col, u(0.7, 1.2))
            for z in np.arange(u(2.5, 3.5), Z - 0.3, u(1.8, 2.4)):
                c.poly(cam.wall(X, d0, d1, z, z + 0.12), band, _BUILDING)
        # windows
        win_col = self.pick(
            [
                _hsv(u(190, 230), u(0.1, 0.35), u(0.15, 0.45)),
                _hsv(0, 0, u(0.05, 0.25)),
                _hsv(u(30, 50), u(0.2, 0.5), u(0.55, 0.8)),
            ],
            [0.55, 0.35, 0.10],
        )
        floor = u(1.8, 2.4)
        wz = u(0.7, 1.2)
        spacing = u(1.6, 3.0)
        ww = spacing * u(0.35, 0.65)
        z0 = u(1.2, 2.0)
        zs = np.arange(z0, Z - wz - 0.3, floor)
        ds = np.arange(d0 + u(0.3, spacing), d1 - ww, spacing)
        if len(zs) and len(ds):
            dd, zz = np.meshgrid(ds, zs)
            dd, zz = dd.ravel(), zz.ravel()
            xs_a, ys_a = cam.xy(X, dd, zz)
            xs_b, ys_b = cam.xy(X, dd + ww, zz)
            xs_c, ys_c = cam.xy(X, dd + ww, zz + wz)
            xs_d, ys_d = cam.xy(X, dd, zz + wz)
            quads = np.stack(
                [
                    np.stack([xs_a, ys_a], 1),
                    np.stack([xs_b, ys_b], 1),
                    np.stack([xs_c, ys_c], 1),
                    np.stack([xs_d, ys_d], 1),
                ],
                axis=1,
            )
            quads = np.clip(np.rint(quads), -cam.lim, cam.lim).astype(np.int32)
            widths = np.abs(quads[:, 0, 0] - quads[:, 1, 0])
            keep = (
                (widths >= 1)
                & (quads[:, :, 0].max(1) >= 0)
                & (quads[:, :, 0].min(1) < self.W)
                & (quads[:, :, 1].max(1) >= 0)
            )
            kept = quads[keep]
            c.polys(list(kept), win_col, _BUILDING)
            if self.lamps_on and len(kept):  # some windows lit (image only; weather stream)
                lit = kept[self.wrng.random(len(kept)) < (0.3 if self.weather == 'night' else 0.15)]
                if len(lit):
                    warm = _hsv(self.wu(30, 50), self.wu(0.3, 0.6), self.wu(0.8, 1.0))
                    c.polys(list(lit), warm, None)
                    emit = cast(np.ndarray, self.emit)  # allocated whenever lamps_on (see __init__)
                    cv2.fillPoly(emit, list(lit), _BUILDING + 1, _LINE)
        # shop / door band at the ground floor
        if self.chance(0.4):
            c.poly(cam.wall(X, d0 + 0.3, d1 - 0.3, 0.2, u(0.9, 1.4)), _scale(win_col, u(0.6, 1.0)), _BUILDING)

    def _tree_line(self, side: _Side, d0: float, d1: float, dense: bool, setback: float = 0.0) -> None:
        cam, u = self.cam, self.u
        base = side.facade + side.sign * setback
        trees = []
        d = d0
        while d < d1:
            trees.append(d)
            d += u(2.5, 6.0) if dense else u(6.0, 20.0)
        for d in reversed(trees):
            r = u(1.2, 3.5)
            X = base + side.sign * (r * u(0.6, 1.2))
            self._tree_prims(X, d, r, out=None, casters=self.casters)
        if dense and self.chance(0.6):  # hedge / undergrowth along the facade line
            n = 40
            ds = np.geomspace(max(d0, 1e-3), d1, n)
            Z = u(0.5, 1.6) + self.rng.uniform(-0.15, 0.15, n)
            X = base + side.sign * 0.3
            pts = np.concatenate([cam.pts(X, ds, 0.0), cam.pts(X, ds, Z)[::-1]])
            self.canvas.poly(pts, _scale(self.jitter(self.style['veg'], 0.08), 0.85), _VEGETATION)
            self.casters.append(
                (min(X, X + side.sign * 0.6), max(X, X + side.sign * 0.6), ds[0], ds[-1], 0.0, float(Z.mean()))
            )

    def _tree_prims(
        self,
        X: float,
        d: float,
        r: float,
        out: list[tuple] | None,
        casters: list[tuple[float, float, float, float, float, float]] | None = None,
    ) -> list[tuple]:
        cam, u = self.cam, self.u
        g = cam.g(d)
        prims: list[tuple] = []
        trunk_h = u(1.0, 3.0)
        tw = u(0.12, 0.3)
        trunk_col = _hsv(u(20, 40), u(0.2, 0.5), u(0.15, 0.35))
        prims.append(
            (
                'poly',
                cam.pts(
                    [X - tw / 2, X + tw / 2, X + tw / 2, X - tw / 2], d, [0, 0, trunk_h + r * 0.5, trunk_h + r * 0.5]
                ),
                trunk_col,
                _VEGETATION,
            )
        )
        cx, cy = cam.point(X, d, trunk_h + r * 0.8)
        col = self.jitter(self.style['veg'], 0.1)
        prims.append(('ellipse', (cx, cy), (r * g, r * g * u(0.8, 1.2)), 0, col, _VEGETATION))
        for _ in range(int(self.rng.integers(2, 5))):
            ox, oy = self.rng.uniform(-0.6, 0.6, 2) * r * g
            rr = r * g * u(0.35, 0.65)
            prims.append(
                (
                    'ellipse',
                    (cx + ox, cy + oy),
                    (rr, rr * u(0.7, 1.2)),
                    u(0, 180),
                    _scale(col, u(0.7, 1.25)),
                    _VEGETATION,
                )
            )
        if casters is not None:
            casters.append((X - tw / 2, X + tw / 2, d - tw / 2, d + tw / 2, 0.0, trunk_h))
            casters.append((X - 0.8 * r, X + 0.8 * r, d - 0.8 * r, d + 0.8 * r, trunk_h, trunk_h + 1.6 * r))
        if out is None:
            self.canvas.draw(prims)
        else:
            out.extend(prims)
        return prims

    def _barrier(self, side: _Side, d0: float, d1: float, X: float | None = None) -> None:
        cam, u, c = self.cam, self.u, self.canvas
        X = side.facade if X is None else X
        if self.chance(0.5):  # wall
            col = self.pick(
                [
                    _hsv(u(0, 360), u(0, 0.08), u(0.45, 0.75)),
                    _hsv(u(5, 20), u(0.4, 0.6), u(0.35, 0.55)),
                    _hsv(u(30, 45), u(0.15, 0.3), u(0.55, 0.75)),
                ]
            )
            Z = u(0.5, 1.6)
            c.poly(cam.wall(X, d0, d1, 0.0, Z), col, _WALL)
            c.poly(cam.wall(X, d0, d1, Z - 0.08, Z), _scale(col, 1.15), _WALL)
            self.casters.append((min(X, X + side.sign * 0.2), max(X, X + side.sign * 0.2), d0, d1, 0.0, Z))
        else:  # fence: posts and rails
            col = self.pick(
                [
                    _hsv(0, 0, u(0.2, 0.5)),
                    _hsv(u(90, 150), u(0.3, 0.6), u(0.2, 0.4)),
                    _hsv(u(20, 35), u(0.4, 0.6), u(0.3, 0.5)),
                ]
            )
            Z = u(0.7, 1.4)
            step = u(1.0, 2.5)
            d = d0
            while d < d1:
                g = cam.g(d)
                x, y0 = cam.point(X, d, 0.0)
                _, y1 = cam.point(X, d, Z)
                t = max(0.05 * g, 1.0)
                c.draw([('line', (x, y0), (x, y1), col, _FENCE, t)])
                d += step
            ds = np.geomspace(d0, d1, 12)
            for z in np.linspace(0.25, Z, int(self.rng.integers(2, 4))):
                pts = cam.pts(X, ds, z)
                # rails are drawn piecewise, thinner with distance
                for k in range(len(pts) - 1):
                    tk = max(1, int(round(0.04 * cam.g(ds[k]))))
                    c.draw([('line', pts[k], pts[k + 1], col, _FENCE, tk)])

    # -- objects -------------------------------------------------------------------------------------
    def _free(
        self,
        bbox: tuple[float, float, float, float],
        footprint: tuple[float, float, float, float] | None,
        anomaly: bool = False,
        depth: float = 0.0,
    ) -> list[_Object] | None:
        """None if the object may not go there, else the obstacles it would partly hide.

        Footprints never overlap. Obstacles keep clear of each other (and of objects placed before
        them). An object placed after an obstacle may stand behind it, or in front of it if it hides at
        most 45% of its width, so part of the obstacle's base stays visible (one such object each).
        """
        W, H = self.W, self.H
        if bbox[2] < 0 or bbox[0] >= W or bbox[3] < 0 or bbox[1] >= H:
            return None  # entirely outside the frame
        margin = 2.0 + self.cfg.ignore_band
        hidden: list[_Object] = []
        for o in self.objects:
            if (o.anomaly or anomaly) and _boxes_overlap(o.bbox, bbox, margin):
                if anomaly or not o.anomaly:
                    return None
                if depth < o.depth:  # in front of the obstacle
                    overlap = min(o.bbox[2], bbox[2]) - max(o.bbox[0], bbox[0])
                    if o.occluded or overlap > 0.45 * (o.bbox[2] - o.bbox[0]):
                        return None
                    hidden.append(o)
            if footprint is not None and o.footprint is not None:
                a, b = o.footprint, footprint
                if not (a[1] < b[0] or b[1] < a[0] or a[3] < b[2] or b[3] < a[2]):
                    return None
        return hidden

    def _add(
        self,
        depth: float,
        prims: list[tuple],
        footprint: tuple[float, float, float, float] | None,
        anomaly: bool = False,
        casters: list | None = None,
        glow: list | None = None,
        pools: list | None = None,
        void: bool = False,
    ) -> bool:
        bbox = _bbox(prims)
        hidden = self._free(bbox, footprint, anomaly, depth)
        if hidden is None:
            return False
        for o in hidden:
            o.occluded = True
        self.objects.append(
            _Object(depth, prims, bbox, footprint, anomaly, void, False, casters or [], glow or [], pools or [])
        )
        return True

    def _place_objects(self) -> None:
        d_lo = self.d_near * 0.8
        for side in self.sides:
            self._poles(side)
            if self.chance(0.35):
                self._street_trees(side)
        if self.tram_line and self.chance(0.9):  # large vehicles first: they are the hardest to fit
            self._moving_vehicle('tram', attempts=5)
        for side in self.sides:
            if self.chance(0.45):
                self._parked_cars(side)
        if self.chance(0.38):
            self._moving_vehicle('truck')
        if self.chance(0.33):
            self._moving_vehicle('bus')
        for _ in range(int(self.rng.integers(0, 5))):
            self._moving_vehicle('car', attempts=2)
        walks = [s for s in self.sides if s.walk is not None]
        n_persons = int(self.rng.integers(0, 8)) if walks else 0
        for _ in range(n_persons):
            side = self.pick(walks)
            xa, xb = side.walk  # type: ignore[misc]
            X = self.u(min(xa, xb) + 0.3, max(xa, xb) - 0.3) if abs(xb - xa) > 0.7 else 0.5 * (xa + xb)
            d = self._depth(d_lo, min(self.d_max * 0.8, 60.0))
            self._person(X, d, _PERSON)
        if self.chance(0.12):  # pedestrian on the road
            self._person(self.u(*self.road), self._depth(d_lo, 30.0), _PERSON)
        for _ in range(int(self.rng.integers(0, 4))):
            with self._substream():
                for _attempt in range(3):
                    if self._two_wheeler(rider=self.chance(0.75), motor=self.chance(0.4)):
                        break

    def _depth(self, d0: float, d1: float) -> float:
        """Depth with screen-uniform row: uniform in 1/d."""
        d1 = max(d1, d0 * 1.01)
        return 1.0 / self.u(1.0 / d1, 1.0 / d0)

    def _poles(self, side: _Side) -> None:
        if self.chance(0.15):
            return
        inner = side.road_edge + side.sign * self.u(0.35, 0.7)
        d = self.d_near * self.u(0.8, 2.5)
        while d < self.d_max * 0.9:
            X = inner if side.walk is None or self.chance(0.8) else side.walk[1] - side.sign * 0.3
            self._pole(side, X, d)
            d += self.u(6.0, 25.0)

    def _pole(self, side: _Side, X: float, d: float) -> None:
        cam, u = self.cam, self.u
        kind = self.pick(['sign', 'light', 'lamp', 'plain', 'signpost', 'mast'], [0.3, 0.2, 0.22, 0.04, 0.16, 0.08])
        top = u(2.0, 2.8) if kind == 'signpost' else u(3.0, 5.5)
        w = u(0.07, 0.12)
        pole_col = self.pick(
            [_hsv(0, 0, u(0.35, 0.65)), _hsv(u(100, 160), u(0.2, 0.4), u(0.15, 0.3)), _hsv(0, 0, u(0.1, 0.2))]
        )
        g = cam.g(d)
        prims: list[tuple] = [
            ('poly', cam.pts([X - w / 2, X + w / 2, X + w / 2, X - w / 2], d, [0, 0, top, top]), pole_col, _POLE)
        ]
        casters = [(X - w / 2, X + w / 2, d - w / 2, d + w / 2, 0.0, top)]
        glow: list[tuple[int, tuple]] = []
        pools: list[tuple[np.ndarray, np.ndarray, float]] = []
        if kind in ('sign', 'signpost'):
            n = 1 if self.chance(0.7) else 2
            z = top - u(0.2, 0.4)
            for _ in range(n):
                size = u(0.35, 0.55)
                x, y = cam.point(X, d, z)
                prims.extend(self._sign_prims(x, y, size * g))
                z -= size * 1.15
        elif kind in ('light', 'mast'):
            Xl = X
            if kind == 'mast':  # an arm reaching over the road, the signal head hanging at its end
                reach = u(1.2, 3.2)
                Xl = X - side.sign * reach
                xa, ya = cam.point(X, d, top)
                xb, yb = cam.point(Xl, d, top)
                prims.append(('line', (xa, ya), (xb, yb), pole_col, _POLE, max(w * 0.8 * g, 1.0)))
            lw, lh = u(0.22, 0.32), u(0.65, 0.85)
            z1 = top if kind == 'light' else top - 0.05
            z0 = z1 - lh
            house = self.pick([_hsv(0, 0, u(0.08, 0.2)), _hsv(u(45, 55), u(0.7, 0.9), u(0.6, 0.8))], [0.8, 0.2])
            prims.append(
                (
                    'poly',
                    cam.pts([Xl - lw / 2, Xl + lw / 2, Xl + lw / 2, Xl - lw / 2], d, [z0, z0, z1, z1]),
                    house,
                    _LIGHT,
                )
            )
            lit = int(self.rng.integers(0, 3))
            lamp_cols = [(230, 40, 30), (240, 170, 20), (40, 220, 120)]
            for k in range(3):
                zc = z1 - lh * (k + 0.5) / 3
                x, y = cam.point(Xl, d, zc)
                col = lamp_cols[k] if k == lit else _scale(lamp_cols[k], 0.25)
                prims.append(('circle', (x, y), max(lw * 0.3 * g, 1.0), col, _LIGHT, -1))
                if k == lit and self.lamps_on:
                    glow.append(
                        (
                            _LIGHT + 1,
                            ('circle', (x, y), max(lw * 0.3 * g, 1.0), _mix(col, (255, 255, 255), 0.3), None, -1),
                        )
                    )
            casters.append((Xl - lw / 2, Xl + lw / 2, d - 0.1, d + 0.1, z0, z1))
        elif kind == 'lamp':
            reach = u(0.8, 2.0)
            xa, ya = cam.point(X, d, top)
            xb, yb = cam.point(X - side.sign * reach, d, top + 0.15)
            prims.append(('line', (xa, ya), (xb, yb), pole_col, _POLE, max(w * 0.7 * g, 1.0)))
            head = ((xb, yb + 0.05 * g), (0.25 * g, 0.07 * g))
            prims.append(('ellipse', head[0], head[1], 0, _scale(pole_col, 1.2), _POLE))
            if self.lamps_on:  # weather stream only
                light = self.pick_w([(255, 238, 200), (255, 200, 120), (235, 240, 255)])
                glow.append((_POLE + 1, ('ellipse', head[0], head[1], 0, light, None)))
                R = self.wu(2.2, 4.0) * min(top / 4.0, 1.2)
                ang = np.linspace(0.0, 2.0 * math.pi, 16, endpoint=False)
                pools.append((X - side.sign * reach + R * np.cos(ang), d + R * np.sin(ang), self.wu(0.7, 1.0)))
        self._add(d, prims, (X - 0.2, X + 0.2, d - 0.2, d + 0.2), casters=casters, glow=glow, pools=pools)

    def pick_w(self, items: Any) -> Any:
        """Pick from the weather stream."""
        return items[int(self.wrng.integers(0, len(items)))]

    def _sign_prims(self, x: float, y: float, s: float) -> list[tuple]:
        u = self.u
        kind = self.pick(['round', 'triangle', 'blue', 'octagon', 'diamond', 'rect'])
        r = s / 2
        red = _hsv(u(355, 365), u(0.75, 0.95), u(0.65, 0.9))
        white = _hsv(0, 0, u(0.85, 0.97))
        if kind == 'round':
            inner = self.pick([white, _hsv(u(210, 225), u(0.7, 0.9), u(0.5, 0.75))])
            return [('circle', (x, y), r, red, _SIGN, -1), ('circle', (x, y), r * 0.75, inner, _SIGN, -1)]
        if kind == 'triangle':
            inv = self.chance(0.3)
            k = -1 if inv else 1
            outer = np.array([[x, y - k * r], [x + r, y + k * r * 0.75], [x - r, y + k * r * 0.75]])
            inner = (outer - [x, y]) * 0.6 + [x, y]
            return [
                ('poly', np.rint(outer).astype(np.int32), red, _SIGN),
                ('poly', np.rint(inner).astype(np.int32), white, _SIGN),
            ]
        if kind == 'blue':
            blue = _hsv(u(205, 225), u(0.7, 0.95), u(0.5, 0.8))
            prims: list[tuple] = (
                [('circle', (x, y), r, blue, _SIGN, -1)]
                if self.chance(0.5)
                else [
                    (
                        'poly',
                        np.rint(np.array([[x - r, y - r], [x + r, y - r], [x + r, y + r], [x - r, y + r]])).astype(
                            np.int32
                        ),
                        blue,
                        _SIGN,
                    )
                ]
            )
            prims.append(('line', (x - r * 0.5, y), (x + r * 0.4, y), white, _SIGN, max(r * 0.2, 1)))
            return prims
        if kind == 'octagon':
            ang = np.deg2rad(22.5 + 45 * np.arange(8))
            pts = np.stack([x + r * np.cos(ang), y + r * np.sin(ang)], 1)
            return [
                ('poly', np.rint(pts).astype(np.int32), red, _SIGN),
                ('line', (x - r * 0.5, y), (x + r * 0.5, y), white, _SIGN, max(r * 0.25, 1)),
            ]
        if kind == 'diamond':
            yellow = _hsv(u(45, 55), u(0.75, 0.95), u(0.8, 0.95))
            pts = np.array([[x, y - r], [x + r, y], [x, y + r], [x - r, y]])
            inner = (pts - [x, y]) * 0.7 + [x, y]
            return [
                ('poly', np.rint(pts).astype(np.int32), white, _SIGN),
                ('poly', np.rint(inner).astype(np.int32), yellow, _SIGN),
            ]
        col = self.pick(
            [white, _hsv(u(205, 225), u(0.7, 0.9), u(0.5, 0.75)), _hsv(u(110, 140), u(0.6, 0.9), u(0.35, 0.55))]
        )
        h = r * u(0.5, 0.8)
        w = r * u(1.0, 1.6)
        return [
            (
                'poly',
                np.rint(np.array([[x - w, y - h], [x + w, y - h], [x + w, y + h], [x - w, y + h]])).astype(np.int32),
                col,
                _SIGN,
            )
        ]

    def _street_trees(self, side: _Side) -> None:
        X0 = side.walk[1] - side.sign * 0.5 if side.walk is not None else side.facade - side.sign * 0.5
        d = self.d_near * self.u(0.8, 3.0)
        while d < self.d_max * 0.8:
            r = self.u(0.9, 2.2)
            prims: list[tuple] = []
            casters: list[tuple[float, float, float, float, float, float]] = []
            self._tree_prims(X0, d, r, out=prims, casters=casters)
            self._add(d, prims, (X0 - 0.2, X0 + 0.2, d - 0.2, d + 0.2), casters=casters)
            d += self.u(5.0, 14.0)

    def _car_color(self) -> Color:
        u = self.u
        kind = self.pick(
            ['white', 'black', 'silver', 'grey', 'blue', 'red', 'green', 'beige'],
            [0.2, 0.18, 0.17, 0.15, 0.1, 0.1, 0.05, 0.05],
        )
        if kind == 'white':
            return _hsv(0, 0, u(0.82, 0.95))
        if kind == 'black':
            return _hsv(u(0, 360), u(0, 0.1), u(0.06, 0.15))
        if kind == 'silver':
            return _hsv(u(200, 220), u(0.02, 0.08), u(0.6, 0.78))
        if kind == 'grey':
            return _hsv(0, 0, u(0.3, 0.5))
        if kind == 'blue':
            return _hsv(u(210, 230), u(0.5, 0.8), u(0.2, 0.45))
        if kind == 'red':
            return _hsv(u(355, 365), u(0.7, 0.9), u(0.4, 0.65))
        if kind == 'green':
            return _hsv(u(120, 160), u(0.3, 0.6), u(0.15, 0.35))
        return _hsv(u(30, 45), u(0.2, 0.4), u(0.55, 0.75))

    def _parked_cars(self, side: _Side) -> None:
        d = self.d_near * self.u(0.8, 2.0)
        while d < min(self.d_max * 0.85, 80.0):
            van = self.chance(0.1)
            w = self.u(1.45, 1.6) if van else self.u(1.1, 1.3)
            X = side.road_edge - side.sign * (0.15 + w / 2)
            length = self.u(3.6, 5.0) if van else self.u(2.6, 3.3)
            if self.chance(0.85):
                self._vehicle('truck' if van else 'car', X, d, w, length, front=self.chance(0.3), moving=False)
            d += length + self.u(0.3, 6.0)

    def _moving_vehicle(self, kind: str, attempts: int = 4) -> bool:
        with self._substream():
            return self._moving_vehicle_tries(kind, attempts)

    def _moving_vehicle_tries(self, kind: str, attempts: int) -> bool:
        for _ in range(attempts):
            if kind == 'tram':
                X = float(self.tram_X) + self.u(-0.05, 0.05)  # type: ignore[arg-type]
                d = self._depth(self.d_near * 1.4, self.d_max * 0.85)
                front = self.chance(0.5)
                if self._vehicle('tram', X, d, self.u(1.55, 1.7), self.u(13.0, 24.0), front):
                    return True
                continue
            X = self.pick(self.lanes) + self.u(-0.3, 0.3)
            d = self._depth(self.d_near * 0.85, self.d_max * 0.8)
            front = X < 0 and len(self.lanes) >= 2 and self.chance(0.7)
            if kind == 'car':
                ok = self._vehicle('car', X, d, self.u(1.1, 1.3), self.u(2.6, 3.3), front)
            elif kind == 'truck':
                ok = self._vehicle('truck', X, d, self.u(1.55, 1.7), self.u(4.0, 7.0), front)
            else:
                ok = self._vehicle('bus', X, d, self.u(1.6, 1.7), self.u(7.0, 8.5), front)
            if ok:
                return True
        return False

    def _vehicle(
        self, kind: str, X: float, d0: float, w: float, length: float, front: bool, moving: bool = True
    ) -> bool:
        cam, u = self.cam, self.u
        X0, X1, d1 = X - w / 2, X + w / 2, d0 + length
        prims: list[tuple] = []
        glow: list[tuple[int, tuple]] = []
        shadow = _scale(self.style['road'], u(0.3, 0.5))
        prims.append(
            ('poly', cam.pts([X0 - 0.05, X1 + 0.05, X1 + 0.05, X0 - 0.05], [d0, d0, d1, d1], 0.0), shadow, None)
        )
        tyre = _hsv(0, 0, u(0.04, 0.1))
        glass = self.pick([_hsv(u(190, 220), u(0.15, 0.35), u(0.12, 0.3)), _hsv(0, 0, u(0.05, 0.18))])
        label = {'car': _CAR, 'truck': _TRUCK, 'bus': _BUS, 'tram': _TRAIN}[kind]
        # wheels (under the body, seen at the front/rear corners)
        wz = 0.33 if kind == 'car' else (0.3 if kind == 'tram' else 0.5)
        for xa in (X0 + 0.02, X1 - 0.24 if kind == 'car' else X1 - 0.32):
            xb = xa + (0.22 if kind == 'car' else 0.3)
            prims.append(('poly', cam.pts([xa, xb, xb, xa], d0 + 0.3, [0, 0, wz, wz]), tyre, label))
        z_top = 1.0
        if kind == 'car':
            col = self._car_color()
            z_body = u(0.5, 0.62)
            self._box(prims, X0, X1, d0, d1, 0.18, z_body, col, label, side_wheels=(0.22, tyre, (0.18, 0.82)))
            cab: tuple[float, ...] = (X0 + 0.08, X1 - 0.08, d0 + length * u(0.25, 0.35), d0 + length * u(0.72, 0.8))
            z_roof = u(0.88, 0.99)
            z_top = z_roof
            for name, pts in cam.box_faces(cab[0], cab[1], cab[2], cab[3], z_body, z_roof):
                if name == 'top':
                    prims.append(('poly', pts, _scale(col, 1.1), label))
                else:
                    prims.append(('poly', pts, _scale(col, 0.9 if name == 'side' else 1.0), label))
                    inset = self._inset(pts, 0.12)
                    prims.append(('poly', inset, glass, label))
            # lights and plate on the near face
            lamp = (220, 30, 30) if not front else _hsv(u(40, 60), u(0.0, 0.3), 0.95)
            zl0, zl1 = z_body - 0.14, z_body - 0.05
            for xa, xb in ((X0 + 0.04, X0 + 0.3), (X1 - 0.3, X1 - 0.04)):
                pts = cam.pts([xa, xb, xb, xa], d0, [zl0, zl0, zl1, zl1])
                prims.append(('poly', pts, lamp, label))
                if moving and self.lamps_on:
                    glow.append((label + 1, ('poly', pts, (255, 250, 230) if front else (255, 40, 30), None)))
            plate = self.pick([_hsv(0, 0, 0.92), _hsv(50, 0.8, 0.9)], [0.8, 0.2])
            prims.append(
                ('poly', cam.pts([X - 0.2, X + 0.2, X + 0.2, X - 0.2], d0, [0.25, 0.25, 0.33, 0.33]), plate, label)
            )
        elif kind == 'truck':
            cargo_col = self.pick(
                [_hsv(0, 0, u(0.8, 0.95)), _hsv(u(0, 360), u(0.3, 0.7), u(0.35, 0.7)), _hsv(0, 0, u(0.4, 0.6))]
            )
            cab_col = self._car_color()
            cab_len = 1.6
            cargo = (d0, d1 - cab_len) if not front else (d0 + cab_len, d1)
            cab = (d1 - cab_len, d1) if not front else (d0, d0 + cab_len)
            z_top = u(2.0, 2.6)
            parts = [('cab', cab), ('cargo', cargo)] if not front else [('cargo', cargo), ('cab', cab)]
            for name, (da, db) in parts:
                if name == 'cab':
                    self._box(
                        prims,
                        X0 + 0.05,
                        X1 - 0.05,
                        da,
                        db,
                        0.35,
                        1.85,
                        cab_col,
                        label,
                        side_wheels=(0.32, tyre, (0.5,)),
                    )
                    if front:
                        prims.append(
                            (
                                'poly',
                                self._inset(
                                    cam.pts([X0 + 0.1, X1 - 0.1, X1 - 0.1, X0 + 0.1], da, [1.15, 1.15, 1.75, 1.75]),
                                    0.05,
                                ),
                                glass,
                                label,
                            )
                        )
                else:
                    self._box(
                        prims, X0, X1, da, db, 0.45, z_top, cargo_col, label, side_wheels=(0.32, tyre, (0.2, 0.8))
                    )
            prims.append(('poly', cam.pts([X0, X1, X1, X0], d0, [0.25, 0.25, 0.45, 0.45]), _hsv(0, 0, 0.15), label))
            self._vehicle_lamps(prims, glow, X0, X1, d0, 0.5, label, front, moving)
        elif kind == 'bus':
            col = self.pick(
                [
                    _hsv(u(45, 55), u(0.7, 0.9), u(0.75, 0.9)),
                    _hsv(0, 0, u(0.8, 0.95)),
                    _hsv(u(355, 365), u(0.6, 0.85), u(0.5, 0.7)),
                    _hsv(u(200, 220), u(0.5, 0.8), u(0.4, 0.6)),
                ]
            )
            z_top = u(2.0, 2.3)
            self._coach(prims, X0, X1, d0, d1, 0.25, z_top, col, glass, tyre, label, front, (0.15, 0.75), 0.35)
            self._vehicle_lamps(prims, glow, X0, X1, d0, 0.45, label, front, moving)
        else:  # tram (Cityscapes 'train'): a long low-floor coach in sections, with a pantograph
            col = self.pick(
                [
                    _hsv(0, 0, u(0.82, 0.95)),
                    _hsv(u(355, 365), u(0.65, 0.9), u(0.5, 0.75)),
                    _hsv(u(48, 56), u(0.7, 0.9), u(0.75, 0.9)),
                    _hsv(u(200, 225), u(0.5, 0.8), u(0.35, 0.6)),
                    _hsv(u(100, 140), u(0.4, 0.7), u(0.3, 0.5)),
                ]
            )
            z_top = u(2.15, 2.45)
            n_sec = max(2, int(round(length / u(6.0, 9.0))))
            wheels = tuple((k + 0.5) / n_sec for k in range(n_sec))
            self._coach(prims, X0, X1, d0, d1, 0.2, z_top, col, glass, tyre, label, front, wheels, 0.28)
            # section joints and a stripe along the visible side
            Xs = X0 if X0 + cam.kappa * d0 * d0 > 0 else X1
            stripe = self.pick([_hsv(0, 0, u(0.1, 0.25)), _hsv(u(0, 360), u(0.5, 0.9), u(0.4, 0.8))])
            if (X0 + cam.kappa * d0 * d0 > 0) or (X1 + cam.kappa * d0 * d0 < 0):
                prims.append(
                    (
                        'poly',
                        cam.pts([Xs] * 4, [d0 + 0.2, d1 - 0.2, d1 - 0.2, d0 + 0.2], [0.55, 0.55, 0.8, 0.8]),
                        stripe,
                        label,
                    )
                )
                for k in range(1, n_sec):
                    dj = d0 + length * k / n_sec
                    prims.append(
                        (
                            'poly',
                            cam.pts([Xs] * 4, [dj - 0.12, dj + 0.12, dj + 0.12, dj - 0.12], [0.25, 0.25, z_top, z_top]),
                            _scale(col, 0.55),
                            label,
                        )
                    )
            # pantograph on the roof of the first section
            dp = d0 + length * u(0.25, 0.45) / n_sec * 2
            xa, ya = cam.point(X, dp, z_top)
            xb, yb = cam.point(X, dp + 0.6, z_top + u(0.6, 0.9))
            xc, yc = cam.point(X, dp + 1.2, z_top)
            t = max(0.05 * cam.g(dp), 1.0)
            pan = _hsv(0, 0, u(0.15, 0.35))
            prims.append(('line', (xa, ya), (xb, yb), pan, label, t))
            prims.append(('line', (xb, yb), (xc, yc), pan, label, t))
            self._vehicle_lamps(prims, glow, X0, X1, d0, 0.6, label, front, moving)
        casters = [(X0, X1, d0, d1, 0.15, z_top)]
        pools: list[tuple[np.ndarray, np.ndarray, float]] = []
        if moving and front and self.lamps_on:  # headlight beams on the road in front of the vehicle
            reach = self.wu(6.0, 12.0)
            pools.append(
                (
                    np.array([X0 + 0.1, X1 - 0.1, X1 + 0.8, X0 - 0.8]),
                    np.array([d0, d0, d0 - reach, d0 - reach]),
                    self.wu(0.5, 0.8),
                )
            )
        ok = self._add(d0, prims, (X0 - 0.1, X1 + 0.1, d0 - 0.3, d1 + 0.3), casters=casters, glow=glow, pools=pools)
        return ok

    def _coach(
        self,
        prims: list[tuple],
        X0: float,
        X1: float,
        d0: float,
        d1: float,
        z0: float,
        z_top: float,
        col: Color,
        glass: Color,
        tyre: Color,
        label: int,
        front: bool,
        wheels: tuple[float, ...],
        wheel_r: float,
    ) -> None:
        """Bus / tram body: a box with a window band along the visible side and a windscreen."""
        cam = self.cam
        length = d1 - d0
        for name, pts in cam.box_faces(X0, X1, d0, d1, z0, z_top):
            prims.append(('poly', pts, _scale(col, {'side': 0.85, 'top': 1.05, 'front': 1.0}[name]), label))
            if name == 'side':
                Xs = X0 if X0 + cam.kappa * d0 * d0 > 0 else X1
                prims.append(
                    (
                        'poly',
                        cam.pts(
                            [Xs] * 4, [d0 + 0.4, d1 - 0.4, d1 - 0.4, d0 + 0.4], [1.1, 1.1, z_top - 0.2, z_top - 0.2]
                        ),
                        glass,
                        label,
                    )
                )
                for dw in wheels:
                    self._wheel(prims, Xs, d0 + length * dw, wheel_r, tyre, label)
            elif name == 'front':
                zg = 1.1 if not front else 0.9
                prims.append(
                    (
                        'poly',
                        cam.pts([X0 + 0.1, X1 - 0.1, X1 - 0.1, X0 + 0.1], d0, [zg, zg, z_top - 0.15, z_top - 0.15]),
                        glass,
                        label,
                    )
                )

    def _vehicle_lamps(
        self,
        prims: list[tuple],
        glow: list[tuple[int, tuple]],
        X0: float,
        X1: float,
        d0: float,
        z: float,
        label: int,
        front: bool,
        moving: bool,
    ) -> None:
        """Head (front) or tail lamps on the near face; they glow at night when the vehicle moves."""
        cam = self.cam
        lamp = (235, 235, 215) if front else (200, 30, 25)
        for xa, xb in ((X0 + 0.06, X0 + 0.3), (X1 - 0.3, X1 - 0.06)):
            pts = cam.pts([xa, xb, xb, xa], d0, [z, z, z + 0.12, z + 0.12])
            prims.append(('poly', pts, lamp, label))
            if moving and self.lamps_on:
                glow.append((label + 1, ('poly', pts, (255, 250, 230) if front else (255, 40, 30), None)))

    def _inset(self, pts: np.ndarray, k: float) -> np.ndarray:
        c = pts.mean(axis=0)
        return np.rint(c + (pts - c) * (1 - k)).astype(np.int32)

    def _box(
        self,
        prims: list[tuple],
        X0: float,
        X1: float,
        d0: float,
        d1: float,
        Z0: float,
        Z1: float,
        col: Color,
        label: int,
        side_wheels: tuple[float, Color, tuple[float, ...]] | None = None,
    ) -> None:
        cam = self.cam
        for name, pts in cam.box_faces(X0, X1, d0, d1, Z0, Z1):
            prims.append(('poly', pts, _scale(col, {'side': 0.82, 'top': 1.12, 'front': 1.0}[name]), label))
            if name == 'side' and side_wheels is not None:
                r, tyre, where = side_wheels
                dm = 0.5 * (d0 + d1)
                Xs = X0 if X0 + cam.kappa * dm * dm > 0 else X1
                for t in where:
                    self._wheel(prims, Xs, d0 + (d1 - d0) * t, r, tyre, label)

    def _wheel(self, prims: list[tuple], X: float, d: float, r: float, col: Color, label: int) -> None:
        cam = self.cam
        xa, _ = cam.point(X, d - r)
        xb, _ = cam.point(X, d + r)
        xc, yc = cam.point(X, d, r)
        _, yb = cam.point(X, d, 0.0)
        ay = max((yb - yc), 1.0)
        prims.append(('ellipse', (xc, yc), (max(abs(xa - xb) / 2, 1.0), ay), 0, col, label))

    def _person(self, X: float, d: float, label: int) -> bool:
        cam, u = self.cam, self.u
        g = cam.g(d)
        hp = u(1.0, 1.25) * g
        bx, by = cam.point(X, d)
        prims = self._person_prims(bx, by, hp, label, walking=True)
        casters = [(X - 0.15, X + 0.15, d - 0.1, d + 0.1, 0.0, hp / g)]
        return self._add(d, prims, (X - 0.25, X + 0.25, d - 0.25, d + 0.25), casters=casters)

    def _person_prims(
        self, bx: float, by: float, hp: float, label: int, walking: bool, seated: bool = False
    ) -> list[tuple]:
        u = self.u
        skin = _hsv(u(15, 35), u(0.25, 0.6), u(0.3, 0.9))
        top = self.pick([_hsv(u(0, 360), u(0.1, 0.6), u(0.15, 0.8)), _hsv(0, 0, u(0.05, 0.9))])
        legs = self.pick(
            [
                _hsv(u(210, 230), u(0.3, 0.6), u(0.15, 0.4)),
                _hsv(0, 0, u(0.05, 0.35)),
                _hsv(u(30, 40), u(0.2, 0.4), u(0.4, 0.7)),
            ]
        )
        hair = _hsv(u(20, 40), u(0.2, 0.7), u(0.05, 0.5))
        lw = 0.075 * hp
        prims: list[tuple] = []
        hip = by - 0.48 * hp
        if not seated:
            spread = u(0.0, 0.12) * hp if walking else 0.02 * hp
            for s in (-1, 1):
                foot = bx + s * spread
                prims.append(
                    (
                        'poly',
                        np.rint(
                            np.array(
                                [
                                    [foot - lw, by],
                                    [foot + lw, by],
                                    [bx + s * lw * 1.4 + lw, hip],
                                    [bx + s * lw * 1.4 - lw, hip],
                                ]
                            )
                        ).astype(np.int32),
                        legs,
                        label,
                    )
                )
        tw = u(0.13, 0.17) * hp
        shoulder = by - 0.82 * hp
        coat = self.chance(0.3)
        bottom = hip + (0.15 * hp if coat else 0.03 * hp)
        prims.append(
            (
                'poly',
                np.rint(
                    np.array(
                        [[bx - tw, bottom], [bx + tw, bottom], [bx + tw * 1.05, shoulder], [bx - tw * 1.05, shoulder]]
                    )
                ).astype(np.int32),
                top,
                label,
            )
        )
        for s in (-1, 1):
            ax = bx + s * (tw + 0.03 * hp)
            prims.append(
                (
                    'line',
                    (ax, shoulder + 0.02 * hp),
                    (ax + s * u(0, 0.05) * hp, hip + 0.02 * hp),
                    _scale(top, 0.85),
                    label,
                    max(0.06 * hp, 1),
                )
            )
        prims.append(('line', (bx, shoulder), (bx, shoulder - 0.05 * hp), skin, label, max(0.06 * hp, 1)))
        hc = by - 0.92 * hp
        prims.append(('ellipse', (bx, hc), (0.065 * hp, 0.08 * hp), 0, skin, label))
        prims.append(('ellipse', (bx, hc - 0.03 * hp), (0.068 * hp, 0.055 * hp), 0, hair, label))
        if self.chance(0.2):  # bag
            s = self.pick([-1, 1])
            prims.append(
                (
                    'poly',
                    np.rint(
                        np.array(
                            [
                                [bx + s * tw, hip],
                                [bx + s * (tw + 0.12 * hp), hip],
                                [bx + s * (tw + 0.12 * hp), hip - 0.12 * hp],
                                [bx + s * tw, hip - 0.12 * hp],
                            ]
                        )
                    ).astype(np.int32),
                    _hsv(u(0, 360), u(0.1, 0.5), u(0.1, 0.6)),
                    label,
                )
            )
        return prims

    def _two_wheeler(self, rider: bool, motor: bool) -> bool:
        cam, u = self.cam, self.u
        xl, xr = self.road
        sides_ok = [s for s in self.sides if s.walk is not None]
        parked_on_walk = not rider and sides_ok and self.chance(0.6)
        if parked_on_walk:
            side = self.pick(sides_ok)
            X = 0.5 * (side.walk[0] + side.walk[1])
        else:
            X = self.u(xl + 0.5, xr - 0.5)
        d = self._depth(self.d_near * 1.7, min(40.0, self.d_max * 0.7))
        g = cam.g(d)
        bx, by = cam.point(X, d)
        r = (0.5 if motor else 0.45) * g
        half = (0.75 if motor else 0.65) * g
        facing = self.pick([-1, 1])
        label = _MOTORCYCLE if motor else _BICYCLE
        col = self.pick([_hsv(0, 0, u(0.05, 0.3)), _hsv(u(0, 360), u(0.5, 0.9), u(0.3, 0.7)), _hsv(0, 0, u(0.7, 0.9))])
        tyre = _hsv(0, 0, u(0.03, 0.12))
        t = max(0.06 * g, 1.0)
        prims: list[tuple] = []
        back, front_ = (bx - facing * half, by - r), (bx + facing * half, by - r)
        for c in (back, front_):
            prims.append(('circle', c, r, tyre, label, max(int(round(0.12 * g if motor else 0.06 * g)), 1)))
        seat = (bx - facing * 0.2 * g, by - 2.1 * r)
        bar = (bx + facing * 0.5 * g, by - 2.4 * r)
        crank = (bx, by - r)
        if motor:
            prims.append(
                (
                    'poly',
                    np.rint(
                        np.array(
                            [
                                [back[0], by - 1.5 * r],
                                [front_[0] - facing * 0.3 * g, by - 1.5 * r],
                                [bar[0], bar[1]],
                                [seat[0], seat[1]],
                            ]
                        )
                    ).astype(np.int32),
                    col,
                    label,
                )
            )
            prims.append(('line', front_, bar, col, label, t))
        else:
            for a, b in ((back, crank), (crank, seat), (seat, back), (crank, bar), (bar, front_), (seat, bar)):
                prims.append(('line', a, b, col, label, t))
        if rider:
            hp = u(1.05, 1.2) * g
            prims.extend(self._person_prims(seat[0], seat[1] + 0.48 * hp, hp, _RIDER, walking=False, seated=True))
            leg = _hsv(u(210, 230), u(0.2, 0.5), u(0.1, 0.3))
            prims.append(
                (
                    'line',
                    (seat[0], seat[1]),
                    (crank[0] + facing * 0.1 * g, crank[1] + 0.2 * r),
                    leg,
                    _RIDER,
                    max(0.12 * hp, 1),
                )
            )
        footprint = (X - 0.4, X + 0.4, d - 0.8, d + 0.8)
        casters = [(X - 0.08, X + 0.08, d - 0.6, d + 0.6, 0.0, 1.15 if rider else 0.7)]
        return self._add(d, prims, footprint, casters=casters)

    # -- void objects --------------------------------------------------------------------------------
    _VOID_KINDS = ('bin', 'bench', 'bollards', 'column', 'meter', 'barrier', 'planter')

    def _place_void_objects(self) -> None:
        """Street furniture of no Cityscapes training class on the sidewalks (labels 255, anomaly 255).

        Placed last, from a child stream: they fill gaps left by everything else and never move it.
        """
        with self._substream():
            if not self.cfg.void_objects:
                return
            walks = [s for s in self.sides if s.walk is not None and abs(s.walk[1] - s.walk[0]) > 0.9]
            if not walks:
                return
            for _ in range(int(self.rng.integers(0, 9))):
                side = self.pick(walks)
                kind = self.pick(self._VOID_KINDS, [0.22, 0.14, 0.18, 0.1, 0.1, 0.16, 0.1])
                self._void_object(side, kind)

    def _void_object(self, side: _Side, kind: str) -> bool:
        cam, u = self.cam, self.u
        half_w, half_d = {
            'bin': (0.22, 0.22),
            'bench': (0.22, u(0.45, 0.7)),
            'bollards': (0.06, u(0.8, 2.5)),
            'column': (0.38, 0.38),
            'meter': (0.1, 0.1),
            'barrier': (0.08, u(0.6, 1.2)),
            'planter': (0.3, u(0.3, 0.6)),
        }[kind]
        xa, xb = side.walk  # type: ignore[misc]
        inner, outer = side.sign * xa, side.sign * xb  # distances from the camera axis, inner < outer
        lo, hi = inner + 0.35 + half_w, outer - 0.1 - half_w
        if lo > hi:
            return False
        X = side.sign * (u(lo, hi) if kind not in ('bollards', 'barrier') or self.chance(0.3) else lo)
        d = self._depth(self.d_near * 0.9, min(self.d_max * 0.75, 50.0)) + half_d
        d0, d1 = d - half_d, d + half_d
        prims: list[tuple] = []
        V = IGNORE_ID
        casters: list[tuple[float, float, float, float, float, float]] = []
        if kind == 'bin':
            col = self.pick(
                [
                    _hsv(u(100, 150), u(0.4, 0.7), u(0.2, 0.45)),
                    _hsv(0, 0, u(0.15, 0.5)),
                    _hsv(u(20, 35), u(0.7, 0.9), u(0.7, 0.9)),
                    _hsv(u(205, 225), u(0.5, 0.8), u(0.3, 0.55)),
                ]
            )
            Z = u(0.6, 0.8)
            if self.chance(0.5):
                self._box(prims, X - half_w, X + half_w, d0, d1, 0.0, Z, col, V)
                self._box(
                    prims, X - half_w - 0.03, X + half_w + 0.03, d0 - 0.03, d1 + 0.03, Z, Z + 0.06, _scale(col, 0.7), V
                )
            else:
                self._cylinder(prims, X, d, half_w, 0.0, Z, col, V)
            casters.append((X - half_w, X + half_w, d0, d1, 0.0, Z))
        elif kind == 'bench':
            wood = self.pick(
                [
                    _hsv(u(20, 35), u(0.4, 0.65), u(0.35, 0.6)),
                    _hsv(u(100, 150), u(0.3, 0.6), u(0.2, 0.4)),
                    _hsv(0, 0, u(0.2, 0.5)),
                ]
            )
            metal = _hsv(0, 0, u(0.1, 0.3))
            Xo = X + side.sign * half_w  # backrest on the outer edge
            for dl in (d0 + 0.05, d1 - 0.1):
                self._box(prims, X - half_w, X + half_w, dl, dl + 0.05, 0.0, 0.3, metal, V)
            self._box(prims, X - half_w, X + half_w, d0, d1, 0.28, 0.33, wood, V)
            self._box(prims, min(Xo, Xo - side.sign * 0.05), max(Xo, Xo - side.sign * 0.05), d0, d1, 0.36, 0.6, wood, V)
            casters.append((X - half_w, X + half_w, d0, d1, 0.28, 0.6))
        elif kind == 'bollards':
            col = self.pick(
                [_hsv(0, 0, u(0.08, 0.3)), _hsv(0, 0, u(0.55, 0.8)), _hsv(u(0, 10), u(0.6, 0.85), u(0.45, 0.7))]
            )
            n = max(2, int((d1 - d0) / u(0.8, 1.4)) + 1)
            Z = u(0.5, 0.75)
            band = self.pick([_hsv(0, 0, 0.95), _hsv(50, 0.8, 0.9)])
            for k in reversed(range(n)):  # far to near
                dk = d0 + (d1 - d0) * k / max(n - 1, 1)
                self._box(prims, X - 0.06, X + 0.06, dk - 0.06, dk + 0.06, 0.0, Z, col, V)
                self._box(prims, X - 0.061, X + 0.061, dk - 0.061, dk + 0.061, Z - 0.15, Z - 0.08, band, V)
                casters.append((X - 0.06, X + 0.06, dk - 0.06, dk + 0.06, 0.0, Z))
        elif kind == 'column':  # advertising column with posters and a dome cap
            Z = u(1.7, 2.3)
            base = self.pick([_hsv(u(90, 150), u(0.3, 0.6), u(0.2, 0.4)), _hsv(0, 0, u(0.3, 0.6))])
            self._cylinder(prims, X, d, half_w, 0.0, Z, base, V)
            z = 0.3
            while z < Z - 0.35:
                zh = min(u(0.35, 0.7), Z - 0.3 - z)
                self._cylinder(
                    prims, X, d, half_w + 0.01, z, z + zh, _hsv(u(0, 360), u(0.2, 0.9), u(0.4, 0.95)), V, caps=False
                )
                z += zh + 0.04
            self._cylinder(prims, X, d, half_w + 0.05, Z - 0.06, Z, _scale(base, 0.8), V)
            x, y = cam.point(X, d, Z)
            g = cam.g(d)
            prims.append(('ellipse', (x, y), (half_w * g, 0.25 * g), 0, _scale(base, 1.15), V))
            casters.append((X - half_w, X + half_w, d0, d1, 0.0, Z + 0.2))
        elif kind == 'meter':
            col = _hsv(0, 0, u(0.2, 0.5))
            self._box(prims, X - 0.03, X + 0.03, d - 0.03, d + 0.03, 0.0, 0.8, col, V)
            self._box(
                prims, X - 0.1, X + 0.1, d - 0.07, d + 0.07, 0.8, 1.05, self.pick([col, _hsv(u(200, 220), 0.6, 0.5)]), V
            )
            casters.append((X - 0.1, X + 0.1, d - 0.07, d + 0.07, 0.0, 1.05))
        elif kind == 'barrier':  # construction barrier: a striped board on two feet
            red = self.pick([_hsv(u(355, 365), u(0.75, 0.95), u(0.7, 0.9)), _hsv(u(20, 30), u(0.8, 1.0), u(0.85, 1.0))])
            white = _hsv(0, 0, u(0.85, 0.97))
            zb0, zb1 = u(0.45, 0.6), u(0.7, 0.85)
            for dl in (d0, d1 - 0.05):
                self._box(prims, X - 0.2, X + 0.2, dl, dl + 0.05, 0.0, 0.08, _hsv(0, 0, 0.15), V)
                self._box(prims, X - 0.02, X + 0.02, dl, dl + 0.04, 0.0, zb1, white, V)
            n = max(2, int((d1 - d0) / 0.3))
            Xb = X - 0.02
            for k in range(n):
                da, db = d0 + (d1 - d0) * k / n, d0 + (d1 - d0) * (k + 1) / n
                prims.append(
                    ('poly', cam.pts([Xb] * 4, [da, db, db, da], [zb0, zb0, zb1, zb1]), red if k % 2 == 0 else white, V)
                )
            casters.append((X - 0.02, X + 0.02, d0, d1, zb0, zb1))
        else:  # planter: a concrete trough with bushes (the plants are part of the object: void)
            concrete = _hsv(u(20, 40), u(0.0, 0.15), u(0.45, 0.7))
            Z = u(0.35, 0.5)
            self._box(prims, X - half_w, X + half_w, d0, d1, 0.0, Z, concrete, V)
            g = cam.g(d)
            x, y = cam.point(X, d, Z)
            green = _hsv(u(80, 130), u(0.4, 0.7), u(0.25, 0.5))
            for _ in range(3):
                ox = u(-0.6, 0.6) * half_w * g
                r = half_w * g * u(0.5, 0.9)
                prims.append(('ellipse', (x + ox, y - 0.5 * r), (r, 0.7 * r), 0, _scale(green, u(0.8, 1.2)), V))
            casters.append((X - half_w, X + half_w, d0, d1, 0.0, Z + 0.3))
        footprint = (X - half_w, X + half_w, d0, d1)
        return self._add(d0, prims, footprint, casters=casters, void=True)

    def _cylinder(
        self,
        prims: list[tuple],
        X: float,
        d: float,
        r: float,
        z0: float,
        z1: float,
        col: Color,
        label: int,
        caps: bool = True,
    ) -> None:
        """An upright cylinder: body, shaded side, and the visible end cap."""
        cam = self.cam
        g = cam.g(d)
        x, yb = cam.point(X, d, z0)
        _, yt = cam.point(X, d, z1)
        rx = max(r * g, 1.0)
        ry_b = max(r * g * abs(1.0 - z0) / max(d, 1e-3), 0.5)
        ry_t = max(r * g * abs(1.0 - z1) / max(d, 1e-3), 0.5)
        if caps:
            prims.append(('ellipse', (x, yb), (rx, ry_b), 0, _scale(col, 0.85), label))
        body = np.array([[x - rx, yt], [x + rx, yt], [x + rx, yb], [x - rx, yb]])
        prims.append(('poly', np.rint(body).astype(np.int32), col, label))
        shade = np.array([[x + 0.35 * rx, yt], [x + rx, yt], [x + rx, yb], [x + 0.35 * rx, yb]])
        prims.append(('poly', np.rint(shade).astype(np.int32), _scale(col, 0.78), label))
        if caps:
            prims.append(('ellipse', (x, yt), (rx, ry_t), 0, _scale(col, 1.12 if z1 < 1.0 else 0.7), label))

    # -- anomalies -----------------------------------------------------------------------------------
    def _place_anomalies(self) -> None:
        scene_rng, self.rng = self.rng, self.obstacle_rng
        try:
            cfg = self.cfg
            if cfg.max_anomalies <= 0 or not self.chance(cfg.anomaly_prob):
                return
            n = int(self.rng.integers(1, cfg.max_anomalies + 1))
            placed = 0
            for _ in range(n):
                for _attempt in range(25):
                    if self._try_anomaly():
                        placed += 1
                        break
            if placed == 0:
                self._try_anomaly(fallback=True)
        finally:
            self.rng = scene_rng

    def _try_anomaly(self, fallback: bool = False) -> bool:
        """One placement attempt: an obstacle on the road, inside the frame, clear of other obstacles.

        Sizes are log-uniform from small debris to large objects (world units are camera heights, about
        1.5 m), the base row uniform below the horizon (uniform in 1/depth), so frames show anything
        from a few pixels far away to a quarter of the frame width near by.
        """
        cam, u = self.cam, self.u
        shape = self.pick(_FAMILY_SHAPES[self.cfg.anomaly_family])
        xl, xr = self.road
        min_px = max(3.0, 0.006 * self.H)
        y_floor = self.y_floor  # rows below are hidden by the ego bonnet
        if fallback:  # a medium obstacle in front of the camera (the camera is always on the road)
            y_base = cam.y_h + 0.75 * (y_floor - cam.y_h)
            size = 0.5
        else:
            size = math.exp(u(math.log(0.12), math.log(1.3)))
            y_lo = cam.y_h + max(cam.g(self.d_max) * 1.5, 2.0)
            y_base = u(y_lo, y_floor - 1.0)
        d = cam.f / (y_base - cam.y_h)
        g = cam.g(d)
        size = min(size, (self.W / 4.0) / g, 0.8 * (xr - xl))
        if size * g < min_px and not fallback:
            return False
        # lateral range: on the road with a margin, and horizontally inside the frame at this depth
        margin = 0.1 + size / 2
        bend = cam.kappa * d * d
        x_lo = max(xl + margin, (0.5 * size * g + 1 - cam.vx) / g - bend)
        x_hi = min(xr - margin, (self.W - 2 - 0.5 * size * g - cam.vx) / g - bend)
        if x_lo > x_hi:
            if not fallback:
                return False
            x_lo = x_hi = min(max(-bend, xl + margin), xr - margin)
        X = u(x_lo, x_hi) if not fallback else 0.5 * (x_lo + x_hi)
        prims = self._anomaly_prims(shape, X, d, size)
        if prims is None:
            return False
        footprint = (X - size / 2, X + size / 2, d - size / 2, d + size / 2)
        casters = [(X - 0.4 * size, X + 0.4 * size, d, d + 0.5 * size, 0.0, 0.6 * size)]
        return self._add(d, prims, footprint, anomaly=True, casters=casters)

    def _anomaly_colors(self) -> tuple[Color, Color]:
        family = self.cfg.anomaly_family
        hues = _FAMILY_HUES[family]
        u = self.u
        h1 = self.pick(hues) + u(-_HUE_JITTER, _HUE_JITTER)
        c1 = _hsv(h1, u(0.8, 1.0), u(0.8, 1.0))
        r = self.rng.random()
        if r < 0.5:
            h2 = self.pick(hues) + u(-_HUE_JITTER, _HUE_JITTER)
            c2 = _hsv(h2, u(0.8, 1.0), u(0.55, 1.0))
        elif r < 0.75:
            c2 = _hsv(0, 0, u(0.02, 0.15))
        else:
            c2 = _hsv(0, 0, u(0.88, 1.0))
        return c1, c2

    def _pattern(self, h: int, w: int, scale: float) -> np.ndarray:
        """(h, w, 3) float32 colour texture of the current family.

        Every pattern mixes the two family colours with a (nearly) binary field and/or modulates the
        brightness of one, so hues stay within the family's hue bands.
        """
        family = self.cfg.anomaly_family
        kind = self.pick(_FAMILY_PATTERNS[family])
        c1, c2 = (np.array(c, dtype=np.float32) for c in self._anomaly_colors())
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        p = max(scale * self.u(0.12, 0.3), 2.0)
        bright: np.ndarray | None = None
        t: np.ndarray
        if kind == 'solid':
            t = np.zeros((h, w), np.float32)
        elif kind == 'stripes':
            sgn = self.pick([-1.0, 1.0])
            t = (np.floor((xx + sgn * yy) / p) % 2).astype(np.float32)
        elif kind == 'checker':
            t = ((np.floor(xx / p) + np.floor(yy / p)) % 2).astype(np.float32)
        elif kind == 'speckle':
            lh, lw = max(int(h / p * 2), 1), max(int(w / p * 2), 1)
            low = (self.rng.random((lh, lw)) < 0.5).astype(np.float32)
            t = cv2.resize(low, (w, h), interpolation=cv2.INTER_NEAREST)
        elif kind == 'photo':  # photo-like: blotchy regions of both colours, multi-scale shading, grain
            field_ = self._fbm(h, w, p)
            t = (field_ > self.u(-0.3, 0.3)).astype(np.float32)
            bright = 0.85 + 0.3 * self._fbm(h, w, p * 0.5) + self.rng.uniform(-0.08, 0.08, (h, w)).astype(np.float32)
        elif kind == 'metal':  # brushed metal: one colour, banded specular gradient along one direction
            ang = self.u(0, math.pi)
            proj = (xx * math.cos(ang) + yy * math.sin(ang)) / max(float(max(h, w)), 1.0)
            t = np.zeros((h, w), np.float32)
            bright = (
                0.7
                + 0.35 * np.abs(np.sin(proj * self.u(2.0, 6.0) + self.u(0, math.pi)))
                + 0.05 * np.sin(yy * 1.7 + xx * 0.3)
            )
        elif kind == 'dots':
            cx, cy = (xx % p) - p / 2, (yy % p) - p / 2
            t = ((cx * cx + cy * cy) < (p * 0.3) ** 2).astype(np.float32)
        elif kind == 'rings':
            ox, oy = self.u(0, w), self.u(0, h)
            t = (np.floor(np.hypot(xx - ox, yy - oy) / p) % 2).astype(np.float32)
        elif kind == 'gradient':
            ang = self.u(0, math.pi)
            proj = xx * math.cos(ang) + yy * math.sin(ang)
            t = (proj - proj.min()) / max(float(proj.max() - proj.min()), 1.0)
        elif kind == 'zigzag':
            tri = np.abs((xx / p) % 2 - 1) * p
            t = (np.floor((yy + tri) / p) % 2).astype(np.float32)
        elif kind == 'wood':  # wood grain: warped dark lines in one colour, a few knots of the other
            warp = self._fbm(h, w, p * 2.0) * p * 0.8
            vertical = self.chance(0.5)
            coord = (xx if vertical else yy) + warp
            grain = np.abs(np.sin(coord * math.pi / max(p * 0.35, 1.0)))
            bright = 0.62 + 0.4 * grain
            t = np.zeros((h, w), np.float32)
            for _ in range(int(self.rng.integers(0, 3))):
                kx, ky, kr = self.u(0, w), self.u(0, h), max(p * self.u(0.15, 0.35), 1.0)
                t = np.maximum(t, (np.hypot(xx - kx, (yy - ky) * 1.6) < kr).astype(np.float32))
        else:  # hatch: cross-hatched lines of the second colour
            lw_ = max(p * 0.18, 1.0)
            t = (((xx + yy) % p < lw_) | ((xx - yy) % p < lw_)).astype(np.float32)
        rgb = c1[None, None, :] * (1 - t[..., None]) + c2[None, None, :] * t[..., None]
        if bright is not None:
            rgb *= bright[..., None]
        return rgb

    def _fbm(self, h: int, w: int, p: float) -> np.ndarray:
        """Smooth noise in about [-1, 1] with features of about p pixels (two octaves)."""
        out = np.zeros((h, w), np.float32)
        for k, amp in ((1.0, 0.7), (0.4, 0.3)):
            lh, lw = max(int(h / (p * k)) + 2, 2), max(int(w / (p * k)) + 2, 2)
            low = self.rng.standard_normal((lh, lw)).astype(np.float32)
            out += amp * cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
        return np.clip(out * 0.8, -1.0, 1.0)

    def _anomaly_prims(self, shape: str, X: float, d: float, size: float) -> list[tuple] | None:
        """Obstacle standing on the road at (X, d): a contact shadow plus one 'patch' primitive."""
        cam, u = self.cam, self.u
        g = cam.g(d)
        faces: list[tuple[np.ndarray, float]] = []  # (polygon, shade); drawn in order; shade 0 = hole
        ellipses: list[tuple[tuple[float, float], tuple[float, float], float, float]] = []
        rings: list[tuple[tuple[float, float], tuple[float, float], float, int]] = []
        arcs: list[tuple[tuple[float, float], tuple[float, float], float, int, float, float]] = []  # + start/end deg
        overlays: list[tuple[np.ndarray, Color]] = []  # polygons in their own colour (tape), drawn last
        half = size / 2
        bx, by = cam.point(X, d)

        def seg(p0: tuple[float, float], p1: tuple[float, float], thick: float) -> np.ndarray:
            """A straight bar from p0 to p1 (pixels) as a quad."""
            v = np.array([p1[0] - p0[0], p1[1] - p0[1]], dtype=np.float64)
            n = np.array([-v[1], v[0]]) / max(float(np.hypot(*v)), 1e-6) * max(thick, 1.0) / 2
            q = np.array([[p0[0], p0[1]], [p1[0], p1[1]], [p1[0], p1[1]], [p0[0], p0[1]]]) + np.array([n, n, -n, -n])
            return np.rint(q).astype(np.int32)

        if shape == 'crate':
            depth = size * u(0.6, 1.0)
            height = size * u(0.5, 1.0)
            X0, X1 = X - half, X + half
            for name, pts in cam.box_faces(X0, X1, d, d + depth, 0.0, height):
                faces.append((pts, {'side': 0.7, 'top': 1.15, 'front': 1.0}[name]))
            if self.chance(0.5):  # tipped: rotate the silhouette a little
                ang = math.radians(u(-25, 25))
                cx, cy = cam.point(X, d)
                rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
                faces = [(np.rint((p - [cx, cy]) @ rot.T + [cx, cy]).astype(np.int32), s) for p, s in faces]
                lift = max(int(max(p[:, 1].max() for p, _s in faces) - round(cy)), 0)
                faces = [((p - [0, lift]).astype(np.int32), s) for p, s in faces]
        elif shape in ('barrel', 'lying_barrel'):
            if shape == 'barrel':
                rad, height = half * u(0.6, 0.9), min(size * u(0.9, 1.5), 0.9)
            else:
                rad, height = half * u(0.35, 0.5), size
            bx, by = cam.point(X, d)
            if shape == 'barrel':
                w, h = rad * g, height * g
                e = max(w * 0.3, 1.0)
                faces.append(
                    (
                        np.rint(
                            np.array([[bx - w, by - e], [bx + w, by - e], [bx + w, by - h], [bx - w, by - h]])
                        ).astype(np.int32),
                        1.0,
                    )
                )
                ellipses.append(((bx, by - e), (w, e), 1.0, 0))
                for k in range(1, 3):
                    yk = by - e - (h - e) * k / 3
                    rings.append(((bx, yk), (w, e), 0.6, max(int(0.05 * h), 1)))
                ellipses.append(((bx, by - h), (w, e), 1.2, 0))
            else:
                w, h = height * g / 2, rad * g
                faces.append(
                    (
                        np.rint(
                            np.array([[bx - w, by], [bx + w, by], [bx + w, by - 2 * h], [bx - w, by - 2 * h]])
                        ).astype(np.int32),
                        1.0,
                    )
                )
                end = self.pick([-1, 1])
                ellipses.append(((bx + end * w, by - h), (max(h * 0.35, 1.0), h), 1.2, 0))
                for k_ in (-0.4, 0.4):
                    faces.append(
                        (
                            np.rint(
                                np.array(
                                    [
                                        [bx + k_ * w - 0.03 * w, by],
                                        [bx + k_ * w + 0.03 * w, by],
                                        [bx + k_ * w + 0.03 * w, by - 2 * h],
                                        [bx + k_ * w - 0.03 * w, by - 2 * h],
                                    ]
                                )
                            ).astype(np.int32),
                            0.6,
                        )
                    )
        elif shape == 'rock':
            bx, by = cam.point(X, d)
            n = int(self.rng.integers(7, 13))
            ang_ = np.sort(self.rng.uniform(0, 2 * math.pi, n))
            rad_ = half * g * self.rng.uniform(0.55, 1.0, n)
            hk = u(0.5, 1.0)
            xs = bx + rad_ * np.cos(ang_)
            ys = -rad_ * hk * np.sin(ang_)
            ys += by - ys.max()  # rests on the road
            faces.append((np.rint(np.stack([xs, ys], 1)).astype(np.int32), 1.0))
            for _ in range(int(self.rng.integers(1, 4))):
                ox = bx + u(-0.5, 0.5) * half * g
                oy = float(ys.mean()) + u(-0.3, 0.3) * half * g * hk
                ellipses.append(
                    ((ox, oy), (half * g * u(0.15, 0.35), half * g * u(0.1, 0.25)), u(0.55, 0.8), u(0, 180))
                )
        elif shape == 'cone':
            bx, by = cam.point(X, d)
            w, h = half * g * u(0.6, 0.9), min(size * u(0.9, 1.4), 0.9) * g
            faces.append(
                (
                    np.rint(
                        np.array(
                            [
                                [bx - w * 1.25, by],
                                [bx + w * 1.25, by],
                                [bx + w * 1.25, by - 0.08 * h],
                                [bx - w * 1.25, by - 0.08 * h],
                            ]
                        )
                    ).astype(np.int32),
                    0.7,
                )
            )
            faces.append(
                (
                    np.rint(np.array([[bx - w, by - 0.08 * h], [bx + w, by - 0.08 * h], [bx, by - h]])).astype(
                        np.int32
                    ),
                    1.0,
                )
            )
            faces.append(
                (np.rint(np.array([[bx, by - 0.08 * h], [bx + w, by - 0.08 * h], [bx, by - h]])).astype(np.int32), 0.75)
            )
        elif shape == 'ball':
            bx, by = cam.point(X, d)
            r = half * g * u(0.7, 1.0)
            ellipses.append(((bx, by - r), (r, r), 1.0, 0))
            ellipses.append(((bx - 0.3 * r, by - 1.35 * r), (0.35 * r, 0.3 * r), 1.3, 0))
        elif shape == 'tyre':
            bx, by = cam.point(X, d)
            r = half * g
            squash = u(0.35, 1.0)
            thick = max(int(round(r * u(0.3, 0.45))), 1)
            ro = r - thick / 2
            rings.append(((bx, by - r * squash), (max(ro, 1.0), max(ro * squash, 1.0)), 1.0, thick))
        elif shape == 'star':
            bx, by = cam.point(X, d)
            n = int(self.rng.integers(4, 7))
            ang_ = u(0, math.pi) + np.arange(2 * n) * math.pi / n
            rad_ = np.where(np.arange(2 * n) % 2 == 0, half * g, half * g * u(0.3, 0.5))
            hk = u(0.5, 1.0)
            xs = bx + rad_ * np.cos(ang_)
            ys = -rad_ * hk * np.sin(ang_)
            ys += by - ys.max()
            faces.append((np.rint(np.stack([xs, ys], 1)).astype(np.int32), 1.0))
        elif shape == 'taped_box':  # a cardboard-like box with tape across its front and top
            depth = size * u(0.6, 1.0)
            height = size * u(0.45, 0.9)
            X0, X1 = X - half, X + half
            for name, pts in cam.box_faces(X0, X1, d, d + depth, 0.0, height):
                faces.append((pts, {'side': 0.7, 'top': 1.15, 'front': 1.0}[name]))
            tape = self.pick(
                [_hsv(u(30, 45), u(0.25, 0.45), u(0.6, 0.8)), _hsv(0, 0, u(0.8, 0.95)), _hsv(0, 0, u(0.1, 0.2))]
            )
            tw = size * u(0.08, 0.15)
            overlays.append((cam.pts([X - tw, X + tw, X + tw, X - tw], d, [0.0, 0.0, height, height]), tape))
            if height < 1.0:
                overlays.append(
                    (cam.pts([X - tw, X + tw, X + tw, X - tw], [d, d, d + depth, d + depth], height), _scale(tape, 1.1))
                )
        elif shape == 'tyre_stack':  # tyres lying on top of each other, seen from the side
            R = half * u(0.75, 1.0)
            th = R * u(0.45, 0.6)
            n = int(self.rng.integers(2, 5))
            n = max(1, min(n, int(0.85 / th)))
            rx = R * g
            for k in range(n):
                za, zb = k * th, (k + 1) * th
                ya, yb = cam.point(X, d, za)[1], cam.point(X, d, zb)[1]
                faces.append(
                    (
                        np.rint(np.array([[bx - rx, ya], [bx + rx, ya], [bx + rx, yb], [bx - rx, yb]])).astype(
                            np.int32
                        ),
                        0.95 if k % 2 == 0 else 0.8,
                    )
                )
                ey = max(R * g * (1.0 - za) / d, 0.5)
                ellipses.append(((bx, ya), (rx, ey), 0.95 if k % 2 == 0 else 0.8, 0.0))
                for sx_ in (-1.0, 1.0):  # rounded flanks: darker towards the silhouette edges
                    xa_, xb_ = bx + sx_ * 0.7 * rx, bx + sx_ * rx
                    faces.append(
                        (np.rint(np.array([[xa_, ya], [xb_, ya], [xb_, yb], [xa_, yb]])).astype(np.int32), 0.62)
                    )
                faces.append((seg((bx - rx, yb), (bx + rx, yb), max(0.1 * th * g, 1.0)), 0.4))
            zt = n * th
            yt = cam.point(X, d, zt)[1]
            ey = max(R * g * (1.0 - zt) / d, 0.5)
            ellipses.append(((bx, yt), (rx, ey), 1.15, 0.0))
            ellipses.append(((bx, yt), (rx * 0.55, ey * 0.55), 0.3, 0.0))
        elif shape == 'chair':  # a toppled chair: seat, backrest and legs, lying at an angle
            sz = size * g * 0.9
            legs_d = 0.12 * sz
            parts = [
                ((0.0, 0.45), (0.5, 0.45), 0.07, 1.0),
                ((0.0, 0.45), (0.0, 1.0), 0.07, 0.85),
                ((0.05, 0.45), (0.05, 0.0), 0.05, 0.7),
                ((0.45, 0.45), (0.45, 0.0), 0.05, 0.7),
                ((0.0, 0.75), (0.0, 0.7), 0.2, 0.85),
            ]
            ang = math.radians(u(60, 120) * self.pick([-1, 1]) if self.chance(0.8) else u(150, 210))
            ca, sa = math.cos(ang), math.sin(ang)
            polys = []
            for back in (True, False):  # far legs first, a little offset
                for (ax_, ay_), (bx_, by_), t, sh in parts:
                    if back and sh != 0.7:
                        continue
                    pa = (ax_ * ca - ay_ * sa, -(ax_ * sa + ay_ * ca))
                    pb = (bx_ * ca - by_ * sa, -(bx_ * sa + by_ * ca))
                    q = seg((pa[0] * sz, pa[1] * sz), (pb[0] * sz, pb[1] * sz), t * sz).astype(np.float64)
                    if back:
                        q += [legs_d, -legs_d * 0.5]
                    polys.append((q, sh * (0.75 if back else 1.0)))
            lowest = max(q[:, 1].max() for q, _sh in polys)
            cx = 0.5 * (min(q[:, 0].min() for q, _sh in polys) + max(q[:, 0].max() for q, _sh in polys))
            for q, sh in polys:
                faces.append((np.rint(q + [bx - cx, by - lowest]).astype(np.int32), sh))
        elif shape == 'sack':  # a filled sack with a tied neck, resting on the road
            a_, b_ = half * g * u(0.8, 1.0), half * g * u(0.7, 1.2)
            th_ = np.linspace(0, 2 * math.pi, 28, endpoint=False)
            wob = 1.0 + 0.08 * np.sin(3 * th_ + u(0, 6.28)) + 0.05 * np.sin(5 * th_ + u(0, 6.28))
            xs = bx + a_ * np.cos(th_) * wob
            ys = by - b_ - b_ * np.sin(th_) * wob
            ys = np.minimum(ys, by)
            faces.append((np.rint(np.stack([xs, ys], 1)).astype(np.int32), 1.0))
            side_ = self.pick([-1.0, 1.0])
            ellipses.append(((bx + side_ * 0.45 * a_, by - 0.9 * b_), (0.45 * a_, 0.8 * b_), 0.82, 0.0))
            nw = 0.18 * a_
            top = by - 2 * b_ * 0.98
            faces.append(
                (
                    np.rint(
                        np.array(
                            [
                                [bx - nw, top + 0.1 * b_],
                                [bx + nw, top + 0.1 * b_],
                                [bx + 0.6 * nw, top - 0.35 * b_],
                                [bx - 0.6 * nw, top - 0.35 * b_],
                            ]
                        )
                    ).astype(np.int32),
                    0.9,
                )
            )
            ellipses.append(((bx, top - 0.05 * b_), (nw * 1.1, max(0.08 * b_, 1.0)), 0.6, 0.0))
        elif shape == 'animal':  # a quadruped standing on the road, seen from the side
            sz = size * g
            f_ = self.pick([-1.0, 1.0])
            leg, body_h = u(0.3, 0.42), u(0.12, 0.17)
            yb_ = by - (leg + body_h) * sz
            for k, (lx, sh) in enumerate(((-0.3, 0.6), (0.26, 0.6), (-0.24, 0.8), (0.32, 0.8))):  # far legs first
                xk = bx + f_ * lx * sz + (0.03 * sz if k < 2 else 0.0)
                faces.append((seg((xk, yb_), (xk + f_ * u(-0.04, 0.04) * sz, by), 0.065 * sz), sh))
            ellipses.append(((bx, yb_), (0.42 * sz, body_h * sz), 1.0, 0.0))
            neck0 = (bx + f_ * 0.33 * sz, yb_ - 0.02 * sz)
            head = (bx + f_ * u(0.5, 0.58) * sz, yb_ - u(0.2, 0.32) * sz)
            faces.append((seg(neck0, head, 0.13 * sz), 0.95))
            ellipses.append(((head[0] + f_ * 0.05 * sz, head[1]), (0.11 * sz, 0.065 * sz), 1.0, f_ * u(10, 30)))
            ear = np.array(
                [
                    [head[0] - f_ * 0.02 * sz, head[1] - 0.04 * sz],
                    [head[0] - f_ * 0.07 * sz, head[1] - 0.13 * sz],
                    [head[0] + f_ * 0.03 * sz, head[1] - 0.05 * sz],
                ]
            )
            faces.append((np.rint(ear).astype(np.int32), 0.85))
            faces.append(
                (
                    seg(
                        (bx - f_ * 0.4 * sz, yb_ - 0.05 * sz), (bx - f_ * 0.55 * sz, yb_ + u(0.0, 0.2) * sz), 0.04 * sz
                    ),
                    0.8,
                )
            )
        elif shape == 'bucket':  # a bucket: tapered body, rim, dark inside and a handle
            rb, rt = half * u(0.55, 0.7), half * u(0.8, 0.95)
            hgt = min(size * u(0.8, 1.1), 0.8)
            yt = cam.point(X, d, hgt)[1]
            faces.append(
                (
                    np.rint(
                        np.array([[bx - rb * g, by], [bx + rb * g, by], [bx + rt * g, yt], [bx - rt * g, yt]])
                    ).astype(np.int32),
                    1.0,
                )
            )
            ellipses.append(((bx, by), (rb * g, max(rb * g / d, 0.5)), 0.9, 0.0))
            faces.append(
                (
                    np.rint(
                        np.array(
                            [[bx + 0.4 * rb * g, by], [bx + rb * g, by], [bx + rt * g, yt], [bx + 0.4 * rt * g, yt]]
                        )
                    ).astype(np.int32),
                    0.8,
                )
            )
            ey = max(rt * g * (1.0 - hgt) / d, 0.5)
            ellipses.append(((bx, yt), (rt * g, ey), 1.2, 0.0))
            ellipses.append(((bx, yt), (rt * g * 0.88, ey * 0.8), 0.4, 0.0))
            arcs.append(
                (
                    (bx, yt),
                    (rt * g * 0.95, rt * g * u(0.5, 0.9)),
                    0.7,
                    max(int(round(0.04 * size * g)), 1),
                    180.0,
                    360.0,
                )
            )
        elif shape == 'bag':  # a shopping / plastic bag with two handles
            bw, bh = half * g * u(0.7, 0.95), size * g * u(0.7, 1.0)
            tw_ = bw * u(0.75, 0.95)
            faces.append(
                (
                    np.rint(np.array([[bx - bw, by], [bx + bw, by], [bx + tw_, by - bh], [bx - tw_, by - bh]])).astype(
                        np.int32
                    ),
                    1.0,
                )
            )
            faces.append(
                (
                    np.rint(
                        np.array(
                            [
                                [bx - 0.1 * bw, by],
                                [bx + 0.25 * bw, by],
                                [bx + 0.15 * tw_, by - bh],
                                [bx - 0.05 * tw_, by - bh],
                            ]
                        )
                    ).astype(np.int32),
                    0.85,
                )
            )
            for hx in (-0.45, 0.45):
                arcs.append(
                    (
                        (bx + hx * tw_, by - bh),
                        (0.35 * tw_, 0.3 * bh),
                        0.75,
                        max(int(round(0.05 * bw)), 1),
                        180.0,
                        360.0,
                    )
                )
        elif shape == 'pallet':  # a wooden pallet lying flat: slats on top, blocks and gaps at the front
            depth = size * u(0.6, 0.8)
            height = size * u(0.12, 0.16)
            X0, X1 = X - half, X + half
            for name, pts in cam.box_faces(X0, X1, d, d + depth, 0.0, height):
                faces.append((pts, {'side': 0.7, 'top': 1.1, 'front': 0.9}[name]))
            n = int(self.rng.integers(4, 7))
            for k in range(n - 1):  # gaps between the top slats
                xa = X0 + (X1 - X0) * (k + 1) / n - 0.02 * size
                faces.append(
                    (cam.pts([xa, xa + 0.04 * size, xa + 0.04 * size, xa], [d, d, d + depth, d + depth], height), 0.3)
                )
            for k in range(2):  # openings between the three blocks of the front face
                xa = X0 + (X1 - X0) * (0.12 + 0.42 * k)
                xb = xa + (X1 - X0) * 0.3
                faces.append((cam.pts([xa, xb, xb, xa], d, [0.0, 0.0, 0.6 * height, 0.6 * height]), 0.25))
        else:  # plank: a long thin slab leaning or lying on the road
            L, T = size * g, max(size * g * u(0.1, 0.2), 2.0)
            ang = math.radians(u(-30, 30))
            along = np.array([math.cos(ang), math.sin(ang)]) * L / 2
            normal = np.array([-math.sin(ang), math.cos(ang)]) * T / 2
            top_ = np.array([-along - normal, along - normal, along + normal, -along + normal])
            side = top_ + [0.0, T * 0.8]  # the slab's edge, seen below its face
            shift = np.array([bx, by - side[:, 1].max()])
            faces.append((np.rint(side + shift).astype(np.int32), 0.6))
            faces.append((np.rint(top_ + shift).astype(np.int32), 1.0))

        # bounding box of all parts
        xs0, ys0, xs1, ys1 = [], [], [], []
        for pts, _s in faces:
            xs0.append(pts[:, 0].min())
            ys0.append(pts[:, 1].min())
            xs1.append(pts[:, 0].max())
            ys1.append(pts[:, 1].max())
        for pts, _c in overlays:
            xs0.append(pts[:, 0].min())
            ys0.append(pts[:, 1].min())
            xs1.append(pts[:, 0].max())
            ys1.append(pts[:, 1].max())
        extents = [(c, max(a), 0) for c, a, _s, _ang in ellipses] + [(c, max(a), t) for c, a, _s, t in rings]
        extents += [(c, max(a), t) for c, a, _s, t, _a0, _a1 in arcs]
        for (cx, cy), r, t in extents:
            xs0.append(cx - r - t)
            ys0.append(cy - r - t)
            xs1.append(cx + r + t)
            ys1.append(cy + r + t)
        x0, y0 = int(math.floor(min(xs0))) - 1, int(math.floor(min(ys0))) - 1
        x1, y1 = int(math.ceil(max(xs1))) + 2, int(math.ceil(max(ys1))) + 2
        if x1 - x0 > 4 * self.W or y1 - y0 > 4 * self.H or x1 <= 0 or x0 >= self.W or y1 <= 0 or y0 >= self.H:
            return None
        h, w = y1 - y0, x1 - x0
        shade = np.zeros((h, w), dtype=np.float32)
        off = np.array([x0, y0])
        for pts, s in faces:
            cv2.fillPoly(shade, [(pts - off).astype(np.int32)], float(s), _LINE)
        for (cx, cy), (ax, ay), s, ang in ellipses:
            cv2.ellipse(
                shade,
                (int(round(cx - x0)), int(round(cy - y0))),
                (max(int(round(ax)), 1), max(int(round(ay)), 1)),
                float(ang),
                0,
                360,
                float(s),
                -1,
                _LINE,
            )
        for (cx, cy), (ax, ay), s, t in rings:
            cv2.ellipse(
                shade,
                (int(round(cx - x0)), int(round(cy - y0))),
                (max(int(round(ax)), 1), max(int(round(ay)), 1)),
                0,
                0,
                360,
                float(s),
                t,
                _LINE,
            )
        for (cx, cy), (ax, ay), s, t, a0, a1 in arcs:
            cv2.ellipse(
                shade,
                (int(round(cx - x0)), int(round(cy - y0))),
                (max(int(round(ax)), 1), max(int(round(ay)), 1)),
                0,
                a0,
                a1,
                float(s),
                t,
                _LINE,
            )
        over = None
        if overlays:
            over = np.zeros((h, w, 3), dtype=np.uint8)
            over_mask = np.zeros((h, w), dtype=np.uint8)
            for pts, col in overlays:
                cv2.fillPoly(over, [(pts - off).astype(np.int32)], col, _LINE)
                cv2.fillPoly(over_mask, [(pts - off).astype(np.int32)], 1, _LINE)
                cv2.fillPoly(shade, [(pts - off).astype(np.int32)], 1.0, _LINE)
        mask = shade > 0
        if not mask.any():
            return None
        # the obstacle must stand on the road: clip anything below its base row
        base_row = int(round(cam.point(X, d)[1])) - y0
        if base_row + 1 < h:
            mask[base_row + 1 :] = False
        # enough of it must be visible inside the frame
        vis = mask[max(-y0, 0) : max(self.H - y0, 0), max(-x0, 0) : max(self.W - x0, 0)]
        n_vis = int(vis.sum())
        if n_vis < max(6.0, (0.008 * self.H) ** 2) or n_vis < 0.6 * mask.sum():
            return None
        # obstacles are lower than the camera: nothing reaches the horizon
        top_row = int(np.argmax(mask.any(axis=1))) + y0
        if top_row < cam.point(X, d, 0.95)[1]:
            return None
        rgb = self._pattern(h, w, max(size * g, 4.0)) * shade[..., None]
        rgb = np.clip(rgb, 0, 255).astype(np.uint8)
        if over is not None:
            np.copyto(rgb, over, where=over_mask[..., None].astype(bool))
        shadow = (
            'ellipse',
            (bx, by),
            (max(half * g * 1.1, 1.0), max(half * g * 0.18, 1.0)),
            0,
            _scale(self.style['road'], 0.45),
            None,
        )
        return [shadow, ('patch', x0, y0, rgb, mask)]

    # -- post-processing -----------------------------------------------------------------------------
    def _all_casters(self) -> list[tuple[float, float, float, float, float, float]]:
        out = list(self.casters)
        for o in self.objects:
            out.extend(o.casters)
        return out

    def _ground_polygon(self, Xs: np.ndarray, ds: np.ndarray) -> np.ndarray | None:
        """Pixel polygon of a convex ground polygon (world X, d), clipped to d >= a near plane below the frame."""
        cam = self.cam
        d_min = 0.25 * self.d_near
        if ds.min() < d_min:
            if ds.max() <= d_min:
                return None
            # Sutherland-Hodgman against d >= d_min
            px, pd = [], []
            n = len(Xs)
            for i in range(n):
                xa, da, xb, db = Xs[i], ds[i], Xs[(i + 1) % n], ds[(i + 1) % n]
                if da >= d_min:
                    px.append(xa)
                    pd.append(da)
                if (da >= d_min) != (db >= d_min):
                    t = (d_min - da) / (db - da)
                    px.append(xa + t * (xb - xa))
                    pd.append(d_min)
            Xs, ds = np.array(px), np.array(pd)
        if cam.kappa != 0.0:  # the road bends: subdivide edges so that they follow the curve
            t = np.linspace(0.0, 1.0, 5, endpoint=False)[None, :]
            Xs = (Xs[:, None] + (np.roll(Xs, -1)[:, None] - Xs[:, None]) * t).ravel()
            ds = (ds[:, None] + (np.roll(ds, -1)[:, None] - ds[:, None]) * t).ravel()
        return cam.pts(Xs, ds)

    def _shadow_mask(self) -> np.ndarray:
        """uint8 (H, W): 1 where a sun shadow falls on the ground plane (cast by buildings, walls, trees,
        vehicles, persons, poles, street furniture and obstacles). Callers keep it on ground pixels only."""
        sun = self.wx['sun']
        sx, sd = sun['sx'], sun['sd']
        mask = np.zeros((self.H, self.W), dtype=np.uint8)
        corners_x = np.array([0, 1, 1, 0, 0, 1, 1, 0])
        corners_d = np.array([0, 0, 1, 1, 0, 0, 1, 1])
        for X0, X1, d0, d1, Z0, Z1 in self._all_casters():
            zs = np.where(np.arange(8) < 4, Z0, Z1)
            wx_ = np.where(corners_x == 0, X0, X1) + zs * sx
            wd_ = np.where(corners_d == 0, d0, d1) + zs * sd
            hull = cv2.convexHull(np.stack([wx_, wd_], 1).astype(np.float32))[:, 0, :].astype(np.float64)
            pts = self._ground_polygon(hull[:, 0], hull[:, 1])
            if pts is not None and len(pts) >= 3:
                cv2.fillPoly(mask, [pts], 1, _LINE)
        return mask

    def _pool_map(self) -> np.ndarray:
        """float32 (H, W) in [0, 1]: light pools of street lamps and headlights on the ground (soft)."""
        H, W = self.H, self.W
        s = 4
        h, w = max(H // s, 2), max(W // s, 2)
        pools: np.ndarray = np.zeros((h, w), dtype=np.float32)
        for o in self.objects:
            for Xs, ds, strength in o.pools:
                pts = self._ground_polygon(np.asarray(Xs, dtype=np.float64), np.asarray(ds, dtype=np.float64))
                if pts is not None and len(pts) >= 3:
                    cv2.fillPoly(pools, [(pts // s).astype(np.int32)], float(strength), _LINE)
        sigma = max(w / 90.0, 0.8)
        pools = cv2.GaussianBlur(pools, (0, 0), sigma)
        return cv2.resize(pools, (W, H), interpolation=cv2.INTER_LINEAR)

    def _fog_map(self) -> np.ndarray:
        """float32 (H, W) fog alpha from an approximate depth per pixel: ground pixels by row, side
        structures by column (facade planes), objects by their own depth, sky at the far end."""
        cam, H, W = self.cam, self.H, self.W
        fog = self.wx['fog']
        lab = self.canvas.lab
        rows = np.arange(H, dtype=np.float64) + 0.5 - cam.y_h
        d_row = np.where(rows > 0, cam.f / np.maximum(rows, 1e-6), self.d_max)
        a_row = self._fog_alpha(np.minimum(d_row, self.d_max)).astype(np.float32)
        cols = np.arange(W, dtype=np.float64) + 0.5 - cam.vx
        facade = np.where(cols < 0, abs(self.sides[0].facade), abs(self.sides[1].facade))
        d_col = np.minimum(cam.f * facade / np.maximum(np.abs(cols), 1e-6), self.d_max)
        a_col = self._fog_alpha(d_col).astype(np.float32)
        ground = cv2.LUT(lab, _GROUND_LUT).view(bool)
        alpha = np.where(ground, a_row[:, None], a_col[None, :])
        alpha[lab == _SKY] = fog['sky']
        code = self.depth_code
        if code is not None:
            obj = code > 0
            if obj.any():
                lut = np.concatenate([[0.0], np.arange(255) / 254.0]).astype(np.float32)
                alpha[obj] = lut[code[obj]]
        return alpha

    def _rain_layer(self) -> np.ndarray:
        """float32 (H, W): anti-aliased rain streaks (additive grey levels)."""
        H, W = self.H, self.W
        rain = self.wx['rain']
        wr = self.wrng
        n = int(H * W / 1000.0 * rain['density'])
        L = H * rain['length']
        layer = np.zeros((H, W), dtype=np.uint8)
        if n > 0:
            x0 = wr.uniform(-L, W + L, n)
            y0 = wr.uniform(-L, H, n)
            ln = L * wr.uniform(0.5, 1.2, n)
            ang = rain['angle'] + wr.uniform(-0.05, 0.05, n)
            seg = np.stack([np.stack([x0, y0], 1), np.stack([x0 + np.sin(ang) * ln, y0 + np.cos(ang) * ln], 1)], 1)
            seg = np.rint(seg).astype(np.int32)
            half = n // 2
            cv2.polylines(layer, list(seg[:half]), False, 255, 1, cv2.LINE_AA)
            cv2.polylines(layer, list(seg[half:]), False, 150, 1, cv2.LINE_AA)
        return layer.astype(np.float32) * (rain['amp'] / 255.0)

    def _wet_road(self) -> None:
        """Rain: the road mirrors the scene faintly (strongest at grazing angles, near the horizon)."""
        cam, H = self.cam, self.H
        img, lab = self.canvas.img, self.canvas.lab
        r0 = self.wx['rain']['reflect']
        scale = 0.35 * max(H - cam.y_h, 1.0)
        y0 = min(max(int(math.ceil(cam.y_h)), 0), H)
        # rows where the reflection is visible at all (alpha >= 0.02)
        y1 = min(H, int(cam.y_h + scale * math.log(max(r0 / 0.02, 1.0))) + 1)
        if y0 >= y1:
            return
        src = np.clip(np.rint(2.0 * cam.y_h - np.arange(y0, y1)), 0, H - 1).astype(np.intp)
        refl = cv2.blur(img[src], (3, max(3, H // 60)))
        part = img[y0:y1]
        mixed = np.empty_like(part)
        band = max(2, H // 128)
        for ya in range(0, y1 - y0, band):  # alpha is constant over thin bands of rows
            yb = min(ya + band, y1 - y0)
            alpha = r0 * math.exp(-(y0 + 0.5 * (ya + yb) - cam.y_h) / scale)
            cv2.addWeighted(part[ya:yb], 1.0 - alpha, refl[ya:yb], alpha, 0.0, dst=mixed[ya:yb])
        np.copyto(part, mixed, where=(lab[y0:y1] == _ROAD)[..., None])

    def _glow(self, emissive: np.ndarray) -> np.ndarray:
        """float32 (H, W, 3) bloom around emitting pixels."""
        H, W = self.H, self.W
        src = cv2.bitwise_and(self.canvas.img, self.canvas.img, mask=emissive.view(np.uint8))
        s = 8
        small = cv2.resize(src, (max(W // s, 2), max(H // s, 2)), interpolation=cv2.INTER_AREA).astype(np.float32)
        # cv2's stubs widen the dtype; the blur keeps float32 (the += below needs that type)
        small = cast(np.ndarray, cv2.GaussianBlur(small, (0, 0), max(W / s / 160.0, 0.8)))
        small += cv2.GaussianBlur(small, (0, 0), max(W / s / 50.0, 1.5))
        return cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR) * float(self.wx['glow'])

    def _light_map(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(gain, emissive): per-pixel light level (None = uniform) and the pixels that emit light."""
        wx, lab = self.wx, self.canvas.lab
        light: np.ndarray | None = None
        emissive: np.ndarray | None = None
        sky = None
        if wx['sun'] is not None:
            sun = wx['sun']
            ground = cv2.LUT(lab, _GROUND_LUT).view(bool)
            # vertical surfaces: each side of the street faces the sun more or less
            x = np.arange(self.W, dtype=np.float32) + 0.5 - np.float32(self.cam.vx)
            t = np.clip(x / max(self.W * 0.02, 1.0) * 0.5 + 0.5, 0.0, 1.0)
            col_gain = (sun['left'] * (1 - t) + sun['right'] * t).astype(np.float32)
            light = np.where(ground, np.float32(1.0), col_gain[None, :])
            shadow = self._shadow_mask()
            shadow &= ground.view(np.uint8)
            light[shadow.view(bool)] = sun['shade']
            sky = lab == _SKY
            light[sky] = 1.0
        if wx['rain'] is not None:
            wet = np.where(lab == _ROAD, np.float32(wx['rain']['wet']), np.float32(1.0))
            light = wet if light is None else light * wet
        if self.lamps_on:
            amb = wx['ambient']
            night = amb + (1.0 - amb) * np.minimum(self._pool_map() * wx['pool'], 1.0)
            light = night if light is None else light * night
            code = cv2.LUT(lab, _EMIT_LUT)
            emissive = (self.emit == code) & (code > 0)
            if sky is None:
                sky = lab == _SKY
            light[sky] = 1.0
            light[emissive] = 1.0 / max(float(np.mean(wx['tint'])), 0.5)
        return light, emissive

    def _finish(self) -> np.ndarray:
        """Image-only appearance: weather and lighting, per-class texture noise at three scales, colour
        cast, exposure, blur."""
        H, W = self.H, self.W
        rng = self.finish_rng
        wx = self.wx
        lab = self.canvas.lab
        lut = np.zeros((3, 256), dtype=np.float32)
        for cls, amps in _TEXTURE.items():
            lut[:, cls] = amps
        lut *= rng.uniform(0.6, 1.4, size=(3, 1)).astype(np.float32)
        coarse = cv2.resize(
            rng.standard_normal((max(H // 32, 2), max(W // 32, 2))).astype(np.float32),
            (W, H),
            interpolation=cv2.INTER_LINEAR,
        )
        mid = cv2.resize(
            rng.standard_normal((max(H // 6, 2), max(W // 6, 2))).astype(np.float32),
            (W, H),
            interpolation=cv2.INTER_LINEAR,
        )
        table = _fine_noise_table(H, W)
        oy, ox = int(rng.integers(0, H)), int(rng.integers(0, W))
        fine = table[oy : oy + H, ox : ox + W]
        noise = cv2.LUT(lab, lut[0].reshape(1, 256)) * coarse
        noise += cv2.LUT(lab, lut[1].reshape(1, 256)) * mid
        noise += cv2.LUT(lab, lut[2].reshape(1, 256)) * fine
        # colour cast varying down the frame, then per-channel gain (white balance x contrast) and brightness
        rows = np.linspace(0.0, 1.0, H, dtype=np.float32)[:, None]
        cast_top, cast_bottom = rng.uniform(-8, 8, (2, 3)).astype(np.float32)
        cast = cast_top + (cast_bottom - cast_top) * rows  # (H, 3)
        contrast = float(rng.uniform(0.75, 1.2))
        gain = rng.uniform(0.92, 1.08, 3) * contrast
        bias = (float(rng.uniform(-25, 25)) + 128.0 * (1 - contrast)) * wx['bias_k']
        blur = rng.random() < 0.75
        sigma = float(rng.uniform(0.4, 1.0)) * max(min(H / 512.0, 2.0), 0.5)
        # weather (pixels only): wet road, light (sun and shadows, night lamps), fog, rain, glow
        if wx['rain'] is not None:
            self._wet_road()
            noise += self._rain_layer()
        light, emissive = self._light_map()
        ambient = 1.0 if self.lamps_on else wx['ambient']  # at night the light map carries the ambient level
        gain = gain * np.asarray(wx['tint']) * ambient
        fog_alpha = fog_col = None
        if wx['fog'] is not None:
            fog_alpha = self._fog_map()
            fog_col = np.asarray(wx['fog']['color'], dtype=np.float32) / max(ambient, 1e-3)
            keep = 1.0 - fog_alpha
            light = keep if light is None else light * keep
        glow = self._glow(emissive) if emissive is not None and emissive.any() else None
        img = self.canvas.img
        channels = []
        for k in range(3):
            ch = img[:, :, k].astype(np.float32)
            ch += noise
            ch += cast[:, k : k + 1]
            if light is not None:
                ch *= light
            if fog_alpha is not None:
                ch += fog_alpha * float(fog_col[k])  # type: ignore[index]
            ch *= float(gain[k])
            ch += bias
            if glow is not None:
                ch += glow[:, :, k]
            channels.append(ch)
        out = cv2.merge(channels)
        np.clip(out, 0, 255, out=out)
        out = out.astype(np.uint8)
        if blur:
            out = cv2.GaussianBlur(out, (0, 0), sigma)
        return out
