"""A procedural road-scene world with exact Cityscapes labels and road-obstacle anomalies.

No dataset can be downloaded where this package is developed, so training and evaluation run on this
world: a camera looking down a (possibly gently curving) street with road, lane markings, sidewalks,
terrain, building facades with windows, vegetation, walls/fences, poles with traffic signs and lights,
cars, trucks, buses, persons and cyclists, all drawn far-to-near with a pinhole ground-plane model so
that sizes follow perspective. Road obstacles (boxes, barrels, rocks, ...) that belong to no Cityscapes
class stand on the road; their pixels are ``anomaly == 1`` and ``labels == 255``.

Geometry: world units are camera heights (about 1.5 m). A ground point at lateral offset ``X`` and
depth ``d`` (plus height ``Z`` above ground) projects to
``x = vx + f * (X + kappa * d**2) / d`` and ``y = y_h + f * (1 - Z) / d`` (horizon row ``y_h``,
vanishing column ``vx``, focal ``f`` in pixels, road curvature ``kappa``).

Every drawing call paints the image and the label map with the same polygon and ``cv2.LINE_8`` (no
anti-aliasing), so labels align with pixels exactly; only the final texture noise, colour jitter and a
mild blur touch the image alone. Randomness comes from ``np.random.default_rng(seed)`` only; the same
seed and config give byte-identical frames.
"""

from __future__ import annotations

import colorsys
import contextlib
import functools
import math
import operator
from dataclasses import dataclass, replace
from typing import Any, Iterator

import cv2
import numpy as np

from anomaly_seg_ros.classes import ANOMALY_ID, ANOMALY_IGNORE, IGNORE_ID, TRAIN_ID
from anomaly_seg_ros.data.sample import Sample
from anomaly_seg_ros.errors import ConfigError

__all__ = ['ANOMALY_FAMILIES', 'SyntheticWorld', 'WorldConfig', 'WorldConfigError', 'generate']

ANOMALY_FAMILIES: tuple[str, ...] = ('test', 'proxy')
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

# Obstacle appearance per family: disjoint shape sets and disjoint hue bands (degrees).
_FAMILY_SHAPES: dict[str, tuple[str, ...]] = {
    'test': ('crate', 'barrel', 'rock', 'lying_barrel'),
    'proxy': ('cone', 'ball', 'tyre', 'star', 'plank'),
}
_FAMILY_HUES: dict[str, tuple[float, ...]] = {
    'test': (300.0, 180.0, 25.0),  # magenta, cyan, orange
    'proxy': (270.0, 335.0, 57.0, 100.0),  # violet, hot pink, yellow, lime
}
_FAMILY_PATTERNS: dict[str, tuple[str, ...]] = {
    'test': ('solid', 'stripes', 'checker', 'speckle'),
    'proxy': ('dots', 'rings', 'gradient', 'zigzag'),
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
    """

    height: int = 512
    width: int = 1024
    anomaly_prob: float = 0.5
    max_anomalies: int = 3
    anomaly_family: str = 'test'
    ignore_band: int = 0

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
            raise WorldConfigError(
                f'WorldConfig.max_anomalies must be >= 1 when anomaly_prob > 0 (anomaly_prob={p!r})'
            )
        if self.anomaly_family not in ANOMALY_FAMILIES:
            raise WorldConfigError(
                f'WorldConfig.anomaly_family must be one of {ANOMALY_FAMILIES}, got {self.anomaly_family!r}'
            )
        if not _is_int(self.ignore_band) or self.ignore_band < 0:
            raise WorldConfigError(f'WorldConfig.ignore_band must be an int >= 0, got {self.ignore_band!r}')


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
    _ROAD: (10, 5, 9), _SIDEWALK: (8, 5, 7), _BUILDING: (10, 6, 5), _WALL: (10, 6, 7),
    _FENCE: (4, 3, 4), _POLE: (4, 2, 3), _LIGHT: (2, 2, 3), _SIGN: (2, 2, 3),
    _VEGETATION: (18, 22, 20), _TERRAIN: (16, 10, 12), _SKY: (12, 3, 2), _PERSON: (4, 4, 4),
    _RIDER: (4, 4, 4), _CAR: (4, 2, 3), _TRUCK: (6, 3, 3), _BUS: (5, 3, 3), TRAIN_ID['train']: (5, 3, 3),
    _MOTORCYCLE: (4, 3, 3), _BICYCLE: (3, 3, 3), IGNORE_ID: (6, 5, 6),
}


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

    def box_faces(self, X0: float, X1: float, d0: float, d1: float, Z0: float, Z1: float) -> list[tuple[str, np.ndarray]]:
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
            xs0.append(pts[:, 0].min()), ys0.append(pts[:, 1].min())
            xs1.append(pts[:, 0].max()), ys1.append(pts[:, 1].max())
        elif kind == 'ellipse':
            (cx, cy), (ax, ay) = p[1], p[2]
            r = max(ax, ay)
            xs0.append(cx - r), ys0.append(cy - r), xs1.append(cx + r), ys1.append(cy + r)
        elif kind == 'circle':
            (cx, cy), r, t = p[1], p[2], max(p[5], 0)
            xs0.append(cx - r - t), ys0.append(cy - r - t), xs1.append(cx + r + t), ys1.append(cy + r + t)
        elif kind == 'line':
            (ax, ay), (bx, by), t = p[1], p[2], p[5]
            xs0.append(min(ax, bx) - t), ys0.append(min(ay, by) - t)
            xs1.append(max(ax, bx) + t), ys1.append(max(ay, by) + t)
        elif kind == 'patch':
            x0, y0, mask = p[1], p[2], p[4]
            xs0.append(x0), ys0.append(y0), xs1.append(x0 + mask.shape[1]), ys1.append(y0 + mask.shape[0])
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


class _Canvas:
    def __init__(self, height: int, width: int) -> None:
        self.img = np.zeros((height, width, 3), dtype=np.uint8)
        self.lab = np.full((height, width), _SKY, dtype=np.uint8)
        self.anom = np.zeros((height, width), dtype=np.uint8)

    def poly(self, pts: np.ndarray, color: Color, label: int | None) -> None:
        cv2.fillPoly(self.img, [pts], color, _LINE)
        if label is not None:
            cv2.fillPoly(self.lab, [pts], int(label), _LINE)

    def polys(self, pts: list[np.ndarray], color: Color, label: int | None) -> None:
        if not pts:
            return
        cv2.fillPoly(self.img, pts, color, _LINE)
        if label is not None:
            cv2.fillPoly(self.lab, pts, int(label), _LINE)

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
            elif kind == 'circle':
                center = (int(round(p[1][0])), int(round(p[1][1])))
                r = max(int(round(p[2])), 1)
                cv2.circle(self.img, center, r, p[3], p[5], _LINE)
                if p[4] is not None:
                    cv2.circle(self.lab, center, r, int(p[4]), p[5], _LINE)
            elif kind == 'line':
                a = (int(round(p[1][0])), int(round(p[1][1])))
                b = (int(round(p[2][0])), int(round(p[2][1])))
                t = max(int(round(p[5])), 1)
                cv2.line(self.img, a, b, p[3], t, _LINE)
                if p[4] is not None:
                    cv2.line(self.lab, a, b, int(p[4]), t, _LINE)
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
        # Three independent streams: the scene, the obstacles and the image finish. A frame with and
        # without obstacles (or with either family) then shares its layout, up to objects that an
        # obstacle displaces.
        self.rng = rng
        self.obstacle_rng, self.finish_rng = rng.spawn(2)
        self.cfg = config
        self.H, self.W = config.height, config.width
        self.canvas = _Canvas(self.H, self.W)
        self.objects: list[_Object] = []

    # -- random helpers ------------------------------------------------------------------------------
    def u(self, a: float, b: float) -> float:
        return float(self.rng.uniform(a, b))

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
        for obj in sorted(self.objects, key=lambda o: -o.depth):
            self.canvas.draw(obj.prims)
        image = self._finish()
        anomaly = self.canvas.anom
        band = self.cfg.ignore_band
        if band > 0 and anomaly.any():
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
            grown = cv2.dilate(anomaly, kernel)
            anomaly[(grown > 0) & (anomaly == 0)] = ANOMALY_IGNORE
        return image, self.canvas.lab, anomaly

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
        sky_kind = self.pick(['blue', 'overcast', 'evening'], [0.55, 0.35, 0.10])
        if sky_kind == 'blue':
            top = _hsv(u(200, 225), u(0.35, 0.65), u(0.7, 0.95))
            hor = _hsv(u(195, 215), u(0.08, 0.25), u(0.85, 1.0))
        elif sky_kind == 'overcast':
            v = u(0.65, 0.92)
            top = _hsv(u(190, 230), u(0.0, 0.1), v)
            hor = _hsv(u(190, 230), u(0.0, 0.06), min(v + u(0.0, 0.1), 1.0))
        else:
            top = _hsv(u(210, 240), u(0.3, 0.5), u(0.55, 0.75))
            hor = _hsv(u(20, 40), u(0.25, 0.5), u(0.85, 1.0))
        return {
            'road': road, 'walk': walk, 'curb': _scale(walk, u(1.05, 1.3)), 'veg': veg, 'terrain': terrain,
            'sky_top': top, 'sky_hor': hor, 'marking': _hsv(0, 0, u(0.8, 0.97)),
            'yellow_marking': _hsv(u(45, 52), u(0.6, 0.85), u(0.75, 0.95)),
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

    def _paving(self, side: _Side) -> None:
        if self.chance(0.4):
            return
        xa, xb = side.walk  # type: ignore[misc]
        step = self.u(0.7, 1.6)
        col = _scale(self.style['walk'], self.u(0.75, 0.9))
        cam = self.cam
        lines = []
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
            if self.chance(0.12):
                self._tree_line(side, d0, d1, dense=True, setback=self.u(0.5, 3.0))
                self._barrier(side, d0, d1)
            else:
                self._building(side, d0, d1)

    def _building(self, side: _Side, d0: float, d1: float) -> None:
        cam, u = self.cam, self.u
        X = side.facade + side.sign * u(0.0, 0.8)
        Z = u(3.0, 16.0)
        col = self._building_color()
        c = self.canvas
        c.poly(cam.wall(X, d0, d1, 0.0, Z), col, _BUILDING)
        # end wall facing the camera (visible when the nearer neighbour is set back further)
        c.poly(cam.pts([X, X + side.sign * 2.0, X + side.sign * 2.0, X], d0, [0, 0, Z, Z]), _scale(col, 0.8), _BUILDING)
        # cornice / storey lines
        if self.chance(0.5):
            band = _scale(col, u(0.7, 1.2))
            for z in np.arange(u(2.5, 3.5), Z - 0.3, u(1.8, 2.4)):
                c.poly(cam.wall(X, d0, d1, z, z + 0.12), band, _BUILDING)
        # windows
        win_col = self.pick([_hsv(u(190, 230), u(0.1, 0.35), u(0.15, 0.45)), _hsv(0, 0, u(0.05, 0.25)),
                             _hsv(u(30, 50), u(0.2, 0.5), u(0.55, 0.8))], [0.55, 0.35, 0.10])
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
            quads = np.stack([np.stack([xs_a, ys_a], 1), np.stack([xs_b, ys_b], 1),
                              np.stack([xs_c, ys_c], 1), np.stack([xs_d, ys_d], 1)], axis=1)
            quads = np.clip(np.rint(quads), -cam.lim, cam.lim).astype(np.int32)
            widths = np.abs(quads[:, 0, 0] - quads[:, 1, 0])
            keep = (widths >= 1) & (quads[:, :, 0].max(1) >= 0) & (quads[:, :, 0].min(1) < self.W) & (quads[:, :, 1].max(1) >= 0)
            c.polys(list(quads[keep]), win_col, _BUILDING)
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
            self._tree_prims(X, d, r, out=None)
        if dense and self.chance(0.6):  # hedge / undergrowth along the facade line
            n = 40
            ds = np.geomspace(max(d0, 1e-3), d1, n)
            Z = u(0.5, 1.6) + self.rng.uniform(-0.15, 0.15, n)
            X = base + side.sign * 0.3
            pts = np.concatenate([cam.pts(X, ds, 0.0), cam.pts(X, ds, Z)[::-1]])
            self.canvas.poly(pts, _scale(self.jitter(self.style['veg'], 0.08), 0.85), _VEGETATION)

    def _tree_prims(self, X: float, d: float, r: float, out: list[tuple] | None) -> list[tuple]:
        cam, u = self.cam, self.u
        g = cam.g(d)
        prims: list[tuple] = []
        trunk_h = u(1.0, 3.0)
        tw = u(0.12, 0.3)
        trunk_col = _hsv(u(20, 40), u(0.2, 0.5), u(0.15, 0.35))
        prims.append(('poly', cam.pts([X - tw / 2, X + tw / 2, X + tw / 2, X - tw / 2], d,
                                      [0, 0, trunk_h + r * 0.5, trunk_h + r * 0.5]), trunk_col, _VEGETATION))
        cx, cy = cam.point(X, d, trunk_h + r * 0.8)
        col = self.jitter(self.style['veg'], 0.1)
        prims.append(('ellipse', (cx, cy), (r * g, r * g * u(0.8, 1.2)), 0, col, _VEGETATION))
        for _ in range(int(self.rng.integers(2, 5))):
            ox, oy = self.rng.uniform(-0.6, 0.6, 2) * r * g
            rr = r * g * u(0.35, 0.65)
            prims.append(('ellipse', (cx + ox, cy + oy), (rr, rr * u(0.7, 1.2)), u(0, 180),
                          _scale(col, u(0.7, 1.25)), _VEGETATION))
        if out is None:
            self.canvas.draw(prims)
        else:
            out.extend(prims)
        return prims

    def _barrier(self, side: _Side, d0: float, d1: float) -> None:
        cam, u, c = self.cam, self.u, self.canvas
        X = side.facade
        if self.chance(0.45):  # wall
            col = self.pick([_hsv(u(0, 360), u(0, 0.08), u(0.45, 0.75)), _hsv(u(5, 20), u(0.4, 0.6), u(0.35, 0.55)),
                             _hsv(u(30, 45), u(0.15, 0.3), u(0.55, 0.75))])
            Z = u(0.5, 1.6)
            c.poly(cam.wall(X, d0, d1, 0.0, Z), col, _WALL)
            c.poly(cam.wall(X, d0, d1, Z - 0.08, Z), _scale(col, 1.15), _WALL)
        else:  # fence: posts and rails
            col = self.pick([_hsv(0, 0, u(0.2, 0.5)), _hsv(u(90, 150), u(0.3, 0.6), u(0.2, 0.4)),
                             _hsv(u(20, 35), u(0.4, 0.6), u(0.3, 0.5))])
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
    def _free(self, bbox: tuple[float, float, float, float], footprint: tuple[float, float, float, float] | None,
              anomaly: bool = False) -> bool:
        W, H = self.W, self.H
        if bbox[2] < 0 or bbox[0] >= W or bbox[3] < 0 or bbox[1] >= H:
            return False  # entirely outside the frame
        margin = 2.0 + self.cfg.ignore_band
        for o in self.objects:
            if (o.anomaly or anomaly) and _boxes_overlap(o.bbox, bbox, margin):
                return False
            if footprint is not None and o.footprint is not None:
                a, b = o.footprint, footprint
                if not (a[1] < b[0] or b[1] < a[0] or a[3] < b[2] or b[3] < a[2]):
                    return False
        return True

    def _add(self, depth: float, prims: list[tuple], footprint: tuple[float, float, float, float] | None,
             anomaly: bool = False) -> bool:
        bbox = _bbox(prims)
        if not self._free(bbox, footprint, anomaly):
            return False
        self.objects.append(_Object(depth, prims, bbox, footprint, anomaly))
        return True

    def _place_objects(self) -> None:
        d_lo = self.d_near * 0.8
        for side in self.sides:
            self._poles(side)
            if self.chance(0.35):
                self._street_trees(side)
        for side in self.sides:
            if self.chance(0.45):
                self._parked_cars(side)
        if self.chance(0.4):  # large vehicles first: they are the hardest to fit
            self._moving_vehicle(self.pick(['truck', 'bus']))
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
        if self.chance(0.4):
            with self._substream():
                for _ in range(3):
                    if self._two_wheeler(rider=self.chance(0.75), motor=self.chance(0.25)):
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
        kind = self.pick(['sign', 'light', 'lamp', 'plain', 'signpost'], [0.33, 0.2, 0.22, 0.05, 0.2])
        top = u(2.0, 2.8) if kind == 'signpost' else u(3.0, 5.5)
        w = u(0.07, 0.12)
        pole_col = self.pick([_hsv(0, 0, u(0.35, 0.65)), _hsv(u(100, 160), u(0.2, 0.4), u(0.15, 0.3)), _hsv(0, 0, u(0.1, 0.2))])
        g = cam.g(d)
        prims: list[tuple] = [('poly', cam.pts([X - w / 2, X + w / 2, X + w / 2, X - w / 2], d, [0, 0, top, top]), pole_col, _POLE)]
        if kind in ('sign', 'signpost'):
            n = 1 if self.chance(0.7) else 2
            z = top - u(0.2, 0.4)
            for _ in range(n):
                size = u(0.35, 0.55)
                x, y = cam.point(X, d, z)
                prims.extend(self._sign_prims(x, y, size * g))
                z -= size * 1.15
        elif kind == 'light':
            lw, lh = u(0.22, 0.32), u(0.65, 0.85)
            z0 = top - lh
            house = self.pick([_hsv(0, 0, u(0.08, 0.2)), _hsv(u(45, 55), u(0.7, 0.9), u(0.6, 0.8))], [0.8, 0.2])
            prims.append(('poly', cam.pts([X - lw / 2, X + lw / 2, X + lw / 2, X - lw / 2], d, [z0, z0, top, top]), house, _LIGHT))
            lit = int(self.rng.integers(0, 3))
            lamp_cols = [(230, 40, 30), (240, 170, 20), (40, 220, 120)]
            for k in range(3):
                zc = top - lh * (k + 0.5) / 3
                x, y = cam.point(X, d, zc)
                col = lamp_cols[k] if k == lit else _scale(lamp_cols[k], 0.25)
                prims.append(('circle', (x, y), max(lw * 0.3 * g, 1.0), col, _LIGHT, -1))
        elif kind == 'lamp':
            reach = u(0.8, 2.0)
            xa, ya = cam.point(X, d, top)
            xb, yb = cam.point(X - side.sign * reach, d, top + 0.15)
            prims.append(('line', (xa, ya), (xb, yb), pole_col, _POLE, max(w * 0.7 * g, 1.0)))
            prims.append(('ellipse', (xb, yb + 0.05 * g), (0.25 * g, 0.07 * g), 0, _scale(pole_col, 1.2), _POLE))
        self._add(d, prims, (X - 0.2, X + 0.2, d - 0.2, d + 0.2))

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
            return [('poly', np.rint(outer).astype(np.int32), red, _SIGN), ('poly', np.rint(inner).astype(np.int32), white, _SIGN)]
        if kind == 'blue':
            blue = _hsv(u(205, 225), u(0.7, 0.95), u(0.5, 0.8))
            prims: list[tuple] = [('circle', (x, y), r, blue, _SIGN, -1)] if self.chance(0.5) else [
                ('poly', np.rint(np.array([[x - r, y - r], [x + r, y - r], [x + r, y + r], [x - r, y + r]])).astype(np.int32), blue, _SIGN)]
            prims.append(('line', (x - r * 0.5, y), (x + r * 0.4, y), white, _SIGN, max(r * 0.2, 1)))
            return prims
        if kind == 'octagon':
            ang = np.deg2rad(22.5 + 45 * np.arange(8))
            pts = np.stack([x + r * np.cos(ang), y + r * np.sin(ang)], 1)
            return [('poly', np.rint(pts).astype(np.int32), red, _SIGN),
                    ('line', (x - r * 0.5, y), (x + r * 0.5, y), white, _SIGN, max(r * 0.25, 1))]
        if kind == 'diamond':
            yellow = _hsv(u(45, 55), u(0.75, 0.95), u(0.8, 0.95))
            pts = np.array([[x, y - r], [x + r, y], [x, y + r], [x - r, y]])
            inner = (pts - [x, y]) * 0.7 + [x, y]
            return [('poly', np.rint(pts).astype(np.int32), white, _SIGN), ('poly', np.rint(inner).astype(np.int32), yellow, _SIGN)]
        col = self.pick([white, _hsv(u(205, 225), u(0.7, 0.9), u(0.5, 0.75)), _hsv(u(110, 140), u(0.6, 0.9), u(0.35, 0.55))])
        h = r * u(0.5, 0.8)
        w = r * u(1.0, 1.6)
        return [('poly', np.rint(np.array([[x - w, y - h], [x + w, y - h], [x + w, y + h], [x - w, y + h]])).astype(np.int32), col, _SIGN)]

    def _street_trees(self, side: _Side) -> None:
        X0 = side.walk[1] - side.sign * 0.5 if side.walk is not None else side.facade - side.sign * 0.5
        d = self.d_near * self.u(0.8, 3.0)
        while d < self.d_max * 0.8:
            r = self.u(0.9, 2.2)
            prims: list[tuple] = []
            self._tree_prims(X0, d, r, out=prims)
            self._add(d, prims, (X0 - 0.2, X0 + 0.2, d - 0.2, d + 0.2))
            d += self.u(5.0, 14.0)

    def _car_color(self) -> Color:
        u = self.u
        kind = self.pick(['white', 'black', 'silver', 'grey', 'blue', 'red', 'green', 'beige'],
                         [0.2, 0.18, 0.17, 0.15, 0.1, 0.1, 0.05, 0.05])
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
            w = self.u(1.1, 1.3)
            X = side.road_edge - side.sign * (0.15 + w / 2)
            length = self.u(2.6, 3.3)
            if self.chance(0.85):
                self._vehicle('car', X, d, w, length, front=self.chance(0.3))
            d += length + self.u(0.3, 6.0)

    def _moving_vehicle(self, kind: str, attempts: int = 4) -> bool:
        with self._substream():
            return self._moving_vehicle_tries(kind, attempts)

    def _moving_vehicle_tries(self, kind: str, attempts: int) -> bool:
        for _ in range(attempts):
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

    def _vehicle(self, kind: str, X: float, d0: float, w: float, length: float, front: bool) -> bool:
        cam, u = self.cam, self.u
        X0, X1, d1 = X - w / 2, X + w / 2, d0 + length
        prims: list[tuple] = []
        shadow = _scale(self.style['road'], u(0.3, 0.5))
        prims.append(('poly', cam.pts([X0 - 0.05, X1 + 0.05, X1 + 0.05, X0 - 0.05], [d0, d0, d1, d1], 0.0), shadow, None))
        tyre = _hsv(0, 0, u(0.04, 0.1))
        glass = self.pick([_hsv(u(190, 220), u(0.15, 0.35), u(0.12, 0.3)), _hsv(0, 0, u(0.05, 0.18))])
        label = {'car': _CAR, 'truck': _TRUCK, 'bus': _BUS}[kind]
        # wheels (under the body, seen at the front/rear corners)
        wz = 0.33 if kind == 'car' else 0.5
        for xa in (X0 + 0.02, X1 - 0.24 if kind == 'car' else X1 - 0.32):
            xb = xa + (0.22 if kind == 'car' else 0.3)
            prims.append(('poly', cam.pts([xa, xb, xb, xa], d0 + 0.3, [0, 0, wz, wz]), tyre, label))
        if kind == 'car':
            col = self._car_color()
            z_body = u(0.5, 0.62)
            self._box(prims, X0, X1, d0, d1, 0.18, z_body, col, label, side_wheels=(0.22, tyre, (0.18, 0.82)))
            cab = (X0 + 0.08, X1 - 0.08, d0 + length * u(0.25, 0.35), d0 + length * u(0.72, 0.8))
            z_roof = u(0.88, 0.99)
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
            prims.append(('poly', cam.pts([X0 + 0.04, X0 + 0.3, X0 + 0.3, X0 + 0.04], d0, [zl0, zl0, zl1, zl1]), lamp, label))
            prims.append(('poly', cam.pts([X1 - 0.3, X1 - 0.04, X1 - 0.04, X1 - 0.3], d0, [zl0, zl0, zl1, zl1]), lamp, label))
            plate = self.pick([_hsv(0, 0, 0.92), _hsv(50, 0.8, 0.9)], [0.8, 0.2])
            prims.append(('poly', cam.pts([X - 0.2, X + 0.2, X + 0.2, X - 0.2], d0, [0.25, 0.25, 0.33, 0.33]), plate, label))
        elif kind == 'truck':
            cargo_col = self.pick([_hsv(0, 0, u(0.8, 0.95)), _hsv(u(0, 360), u(0.3, 0.7), u(0.35, 0.7)), _hsv(0, 0, u(0.4, 0.6))])
            cab_col = self._car_color()
            cab_len = 1.6
            cargo = (d0, d1 - cab_len) if not front else (d0 + cab_len, d1)
            cab = (d1 - cab_len, d1) if not front else (d0, d0 + cab_len)
            z_top = u(2.0, 2.6)
            parts = [('cab', cab), ('cargo', cargo)] if not front else [('cargo', cargo), ('cab', cab)]
            for name, (da, db) in parts:
                if name == 'cab':
                    self._box(prims, X0 + 0.05, X1 - 0.05, da, db, 0.35, 1.85, cab_col, label, side_wheels=(0.32, tyre, (0.5,)))
                    if front:
                        prims.append(('poly', self._inset(cam.pts([X0 + 0.1, X1 - 0.1, X1 - 0.1, X0 + 0.1], da, [1.15, 1.15, 1.75, 1.75]), 0.05), glass, label))
                else:
                    self._box(prims, X0, X1, da, db, 0.45, z_top, cargo_col, label, side_wheels=(0.32, tyre, (0.2, 0.8)))
            prims.append(('poly', cam.pts([X0, X1, X1, X0], d0, [0.25, 0.25, 0.45, 0.45]), _hsv(0, 0, 0.15), label))
        else:  # bus
            col = self.pick([_hsv(u(45, 55), u(0.7, 0.9), u(0.75, 0.9)), _hsv(0, 0, u(0.8, 0.95)),
                             _hsv(u(355, 365), u(0.6, 0.85), u(0.5, 0.7)), _hsv(u(200, 220), u(0.5, 0.8), u(0.4, 0.6))])
            z_top = u(2.0, 2.3)
            faces = cam.box_faces(X0, X1, d0, d1, 0.25, z_top)
            for name, pts in faces:
                prims.append(('poly', pts, _scale(col, {'side': 0.85, 'top': 1.05, 'front': 1.0}[name]), label))
                if name == 'side':
                    Xs = X0 if X0 + cam.kappa * d0 * d0 > 0 else X1
                    prims.append(('poly', cam.pts([Xs] * 4, [d0 + 0.4, d1 - 0.4, d1 - 0.4, d0 + 0.4], [1.1, 1.1, z_top - 0.2, z_top - 0.2]), glass, label))
                    for dw in (0.15, 0.75):
                        self._wheel(prims, Xs, d0 + length * dw, 0.35, tyre, label)
                elif name == 'front':
                    zg = 1.1 if not front else 0.9
                    prims.append(('poly', cam.pts([X0 + 0.1, X1 - 0.1, X1 - 0.1, X0 + 0.1], d0, [zg, zg, z_top - 0.15, z_top - 0.15]), glass, label))
        ok = self._add(d0, prims, (X0 - 0.1, X1 + 0.1, d0 - 0.3, d1 + 0.3))
        return ok

    def _inset(self, pts: np.ndarray, k: float) -> np.ndarray:
        c = pts.mean(axis=0)
        return np.rint(c + (pts - c) * (1 - k)).astype(np.int32)

    def _box(self, prims: list[tuple], X0: float, X1: float, d0: float, d1: float, Z0: float, Z1: float,
             col: Color, label: int, side_wheels: tuple[float, Color, tuple[float, ...]] | None = None) -> None:
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
        return self._add(d, prims, (X - 0.25, X + 0.25, d - 0.25, d + 0.25))

    def _person_prims(self, bx: float, by: float, hp: float, label: int, walking: bool, seated: bool = False) -> list[tuple]:
        u = self.u
        skin = _hsv(u(15, 35), u(0.25, 0.6), u(0.3, 0.9))
        top = self.pick([_hsv(u(0, 360), u(0.1, 0.6), u(0.15, 0.8)), _hsv(0, 0, u(0.05, 0.9))])
        legs = self.pick([_hsv(u(210, 230), u(0.3, 0.6), u(0.15, 0.4)), _hsv(0, 0, u(0.05, 0.35)), _hsv(u(30, 40), u(0.2, 0.4), u(0.4, 0.7))])
        hair = _hsv(u(20, 40), u(0.2, 0.7), u(0.05, 0.5))
        lw = 0.075 * hp
        prims: list[tuple] = []
        hip = by - 0.48 * hp
        if not seated:
            spread = u(0.0, 0.12) * hp if walking else 0.02 * hp
            for s in (-1, 1):
                foot = bx + s * spread
                prims.append(('poly', np.rint(np.array([[foot - lw, by], [foot + lw, by], [bx + s * lw * 1.4 + lw, hip], [bx + s * lw * 1.4 - lw, hip]])).astype(np.int32), legs, label))
        tw = u(0.13, 0.17) * hp
        shoulder = by - 0.82 * hp
        coat = self.chance(0.3)
        bottom = hip + (0.15 * hp if coat else 0.03 * hp)
        prims.append(('poly', np.rint(np.array([[bx - tw, bottom], [bx + tw, bottom], [bx + tw * 1.05, shoulder], [bx - tw * 1.05, shoulder]])).astype(np.int32), top, label))
        for s in (-1, 1):
            ax = bx + s * (tw + 0.03 * hp)
            prims.append(('line', (ax, shoulder + 0.02 * hp), (ax + s * u(0, 0.05) * hp, hip + 0.02 * hp), _scale(top, 0.85), label, max(0.06 * hp, 1)))
        prims.append(('line', (bx, shoulder), (bx, shoulder - 0.05 * hp), skin, label, max(0.06 * hp, 1)))
        hc = by - 0.92 * hp
        prims.append(('ellipse', (bx, hc), (0.065 * hp, 0.08 * hp), 0, skin, label))
        prims.append(('ellipse', (bx, hc - 0.03 * hp), (0.068 * hp, 0.055 * hp), 0, hair, label))
        if self.chance(0.2):  # bag
            s = self.pick([-1, 1])
            prims.append(('poly', np.rint(np.array([[bx + s * tw, hip], [bx + s * (tw + 0.12 * hp), hip], [bx + s * (tw + 0.12 * hp), hip - 0.12 * hp], [bx + s * tw, hip - 0.12 * hp]])).astype(np.int32),
                          _hsv(u(0, 360), u(0.1, 0.5), u(0.1, 0.6)), label))
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
        d = self._depth(self.d_near * 1.0, min(40.0, self.d_max * 0.7))
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
            prims.append(('poly', np.rint(np.array([[back[0], by - 1.5 * r], [front_[0] - facing * 0.3 * g, by - 1.5 * r], [bar[0], bar[1]], [seat[0], seat[1]]])).astype(np.int32), col, label))
            prims.append(('line', front_, bar, col, label, t))
        else:
            for a, b in ((back, crank), (crank, seat), (seat, back), (crank, bar), (bar, front_), (seat, bar)):
                prims.append(('line', a, b, col, label, t))
        if rider:
            hp = u(1.05, 1.2) * g
            prims.extend(self._person_prims(seat[0], seat[1] + 0.48 * hp, hp, _RIDER, walking=False, seated=True))
            leg = _hsv(u(210, 230), u(0.2, 0.5), u(0.1, 0.3))
            prims.append(('line', (seat[0], seat[1]), (crank[0] + facing * 0.1 * g, crank[1] + 0.2 * r), leg, _RIDER, max(0.12 * hp, 1)))
        footprint = (X - 0.4, X + 0.4, d - 0.8, d + 0.8)
        return self._add(d, prims, footprint)

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
        """One placement attempt: an obstacle on the road, inside the frame, clear of other objects."""
        cam, u = self.cam, self.u
        shape = self.pick(_FAMILY_SHAPES[self.cfg.anomaly_family])
        xl, xr = self.road
        min_px = max(3.0, 0.012 * self.H)
        if fallback:  # a medium obstacle in front of the camera (the camera is always on the road)
            y_base = cam.y_h + 0.75 * (self.H - cam.y_h)
            size = 0.5
        else:
            size = u(0.25, 1.0)
            y_lo = cam.y_h + max(cam.g(self.d_max) * 1.5, 2.0)
            y_base = u(y_lo, self.H - 1.0)
        d = cam.f / (y_base - cam.y_h)
        g = cam.g(d)
        size = min(size, (self.W / 6.0) / g, 0.8 * (xr - xl))
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
        return self._add(d, prims, footprint, anomaly=True)

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
        """(h, w, 3) float32 colour texture of the current family."""
        family = self.cfg.anomaly_family
        kind = self.pick(_FAMILY_PATTERNS[family])
        c1, c2 = (np.array(c, dtype=np.float32) for c in self._anomaly_colors())
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        p = max(scale * self.u(0.12, 0.3), 2.0)
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
        else:  # zigzag
            tri = np.abs((xx / p) % 2 - 1) * p
            t = (np.floor((yy + tri) / p) % 2).astype(np.float32)
        return c1[None, None, :] * (1 - t[..., None]) + c2[None, None, :] * t[..., None]

    def _anomaly_prims(self, shape: str, X: float, d: float, size: float) -> list[tuple] | None:
        """Obstacle standing on the road at (X, d): a contact shadow plus one 'patch' primitive."""
        cam, u = self.cam, self.u
        g = cam.g(d)
        faces: list[tuple[np.ndarray, float]] = []  # (polygon, shade); drawn in order; shade 0 = hole
        ellipses: list[tuple[tuple[float, float], tuple[float, float], float, float]] = []
        rings: list[tuple[tuple[float, float], tuple[float, float], float, int]] = []
        half = size / 2
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
                faces.append((np.rint(np.array([[bx - w, by - e], [bx + w, by - e], [bx + w, by - h], [bx - w, by - h]])).astype(np.int32), 1.0))
                ellipses.append(((bx, by - e), (w, e), 1.0, 0))
                for k in range(1, 3):
                    yk = by - e - (h - e) * k / 3
                    rings.append(((bx, yk), (w, e), 0.6, max(int(0.05 * h), 1)))
                ellipses.append(((bx, by - h), (w, e), 1.2, 0))
            else:
                w, h = height * g / 2, rad * g
                faces.append((np.rint(np.array([[bx - w, by], [bx + w, by], [bx + w, by - 2 * h], [bx - w, by - 2 * h]])).astype(np.int32), 1.0))
                end = self.pick([-1, 1])
                ellipses.append(((bx + end * w, by - h), (max(h * 0.35, 1.0), h), 1.2, 0))
                for k in (-0.4, 0.4):
                    faces.append((np.rint(np.array([[bx + k * w - 0.03 * w, by], [bx + k * w + 0.03 * w, by], [bx + k * w + 0.03 * w, by - 2 * h], [bx + k * w - 0.03 * w, by - 2 * h]])).astype(np.int32), 0.6))
        elif shape == 'rock':
            bx, by = cam.point(X, d)
            n = int(self.rng.integers(7, 13))
            ang = np.sort(self.rng.uniform(0, 2 * math.pi, n))
            rad = half * g * self.rng.uniform(0.55, 1.0, n)
            hk = u(0.5, 1.0)
            xs = bx + rad * np.cos(ang)
            ys = -rad * hk * np.sin(ang)
            ys += by - ys.max()  # rests on the road
            faces.append((np.rint(np.stack([xs, ys], 1)).astype(np.int32), 1.0))
            for _ in range(int(self.rng.integers(1, 4))):
                ox = bx + u(-0.5, 0.5) * half * g
                oy = float(ys.mean()) + u(-0.3, 0.3) * half * g * hk
                ellipses.append(((ox, oy), (half * g * u(0.15, 0.35), half * g * u(0.1, 0.25)), u(0.55, 0.8), u(0, 180)))
        elif shape == 'cone':
            bx, by = cam.point(X, d)
            w, h = half * g * u(0.6, 0.9), min(size * u(0.9, 1.4), 0.9) * g
            faces.append((np.rint(np.array([[bx - w * 1.25, by], [bx + w * 1.25, by], [bx + w * 1.25, by - 0.08 * h], [bx - w * 1.25, by - 0.08 * h]])).astype(np.int32), 0.7))
            faces.append((np.rint(np.array([[bx - w, by - 0.08 * h], [bx + w, by - 0.08 * h], [bx, by - h]])).astype(np.int32), 1.0))
            faces.append((np.rint(np.array([[bx, by - 0.08 * h], [bx + w, by - 0.08 * h], [bx, by - h]])).astype(np.int32), 0.75))
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
            ang = u(0, math.pi) + np.arange(2 * n) * math.pi / n
            rad = np.where(np.arange(2 * n) % 2 == 0, half * g, half * g * u(0.3, 0.5))
            hk = u(0.5, 1.0)
            xs = bx + rad * np.cos(ang)
            ys = -rad * hk * np.sin(ang)
            ys += by - ys.max()
            faces.append((np.rint(np.stack([xs, ys], 1)).astype(np.int32), 1.0))
        else:  # plank: a long thin slab leaning or lying on the road
            bx, by = cam.point(X, d)
            L, T = size * g, max(size * g * u(0.1, 0.2), 2.0)
            ang = math.radians(u(-30, 30))
            along = np.array([math.cos(ang), math.sin(ang)]) * L / 2
            normal = np.array([-math.sin(ang), math.cos(ang)]) * T / 2
            top = np.array([-along - normal, along - normal, along + normal, -along + normal])
            side = top + [0.0, T * 0.8]  # the slab's edge, seen below its face
            shift = np.array([bx, by - side[:, 1].max()])
            faces.append((np.rint(side + shift).astype(np.int32), 0.6))
            faces.append((np.rint(top + shift).astype(np.int32), 1.0))

        # bounding box of all parts
        xs0, ys0, xs1, ys1 = [], [], [], []
        for pts, _s in faces:
            xs0.append(pts[:, 0].min()), ys0.append(pts[:, 1].min()), xs1.append(pts[:, 0].max()), ys1.append(pts[:, 1].max())
        extents = [(c, max(a), 0) for c, a, _s, _ang in ellipses] + [(c, max(a), t) for c, a, _s, t in rings]
        for (cx, cy), r, t in extents:
            xs0.append(cx - r - t), ys0.append(cy - r - t), xs1.append(cx + r + t), ys1.append(cy + r + t)
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
            cv2.ellipse(shade, (int(round(cx - x0)), int(round(cy - y0))), (max(int(round(ax)), 1), max(int(round(ay)), 1)),
                        float(ang), 0, 360, float(s), -1, _LINE)
        for (cx, cy), (ax, ay), s, t in rings:
            cv2.ellipse(shade, (int(round(cx - x0)), int(round(cy - y0))), (max(int(round(ax)), 1), max(int(round(ay)), 1)),
                        0, 0, 360, float(s), t, _LINE)
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
        if n_vis < max(6.0, (0.012 * self.H) ** 2) or n_vis < 0.6 * mask.sum():
            return None
        # obstacles are lower than the camera: nothing reaches the horizon
        top_row = int(np.argmax(mask.any(axis=1))) + y0
        if top_row < cam.point(X, d, 0.95)[1]:
            return None
        rgb = self._pattern(h, w, max(size * g, 4.0)) * shade[..., None]
        rgb = np.clip(rgb, 0, 255).astype(np.uint8)
        bx, by = cam.point(X, d)
        shadow = ('ellipse', (bx, by), (max(half * g * 1.1, 1.0), max(half * g * 0.18, 1.0)), 0,
                  _scale(self.style['road'], 0.45), None)
        return [shadow, ('patch', x0, y0, rgb, mask)]

    # -- post-processing -----------------------------------------------------------------------------
    def _finish(self) -> np.ndarray:
        """Image-only appearance: per-class texture noise at three scales, colour cast, exposure, blur."""
        H, W = self.H, self.W
        rng = self.finish_rng
        lab = self.canvas.lab
        lut = np.zeros((3, 256), dtype=np.float32)
        for cls, amps in _TEXTURE.items():
            lut[:, cls] = amps
        lut *= rng.uniform(0.6, 1.4, size=(3, 1)).astype(np.float32)
        coarse = cv2.resize(rng.standard_normal((max(H // 32, 2), max(W // 32, 2))).astype(np.float32), (W, H),
                            interpolation=cv2.INTER_LINEAR)
        mid = cv2.resize(rng.standard_normal((max(H // 6, 2), max(W // 6, 2))).astype(np.float32), (W, H),
                         interpolation=cv2.INTER_LINEAR)
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
        bias = float(rng.uniform(-25, 25)) + 128.0 * (1 - contrast)
        img = self.canvas.img
        channels = []
        for k in range(3):
            ch = img[:, :, k].astype(np.float32)
            ch += noise
            ch += cast[:, k : k + 1]
            ch *= float(gain[k])
            ch += bias
            channels.append(ch)
        out = cv2.merge(channels)
        np.clip(out, 0, 255, out=out)
        out = out.astype(np.uint8)
        if rng.random() < 0.75:
            sigma = float(rng.uniform(0.4, 1.0)) * max(min(H / 512.0, 2.0), 0.5)
            out = cv2.GaussianBlur(out, (0, 0), sigma)
        return out
