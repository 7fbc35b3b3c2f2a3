"""The state of one frame being rendered (`Scene`) and what is placed in it (`SceneObject`, `Side`).

Every scene module is a set of functions that take the `Scene` first: they draw stuff straight onto its canvas or
add objects to it, and draw their randomness from ``scene.rng`` through the helpers here. ``scene.rng`` is
swapped for a child stream (`substream`) or the obstacle stream (`drawing_from`) around parts whose retries must
not shift the draws of what follows, so the same seed and config give byte-identical frames.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .camera import Camera
from .colors import Color, clip_color
from .config import WEATHER_P, WEATHERS, WorldConfig
from .raster import Box, Canvas, boxes_overlap, prim_bbox
from .weather import weather_params

__all__ = ['Caster', 'Pool', 'Scene', 'SceneObject', 'Side']

Caster = tuple[float, float, float, float, float, float]  # world prism X0, X1, d0, d1, Z0, Z1 casting a sun shadow
Pool = tuple[np.ndarray, np.ndarray, float]  # ground polygon (X array, d array) lit at night, with its intensity


@dataclass
class SceneObject:
    """An object drawn far to near after the stuff classes: its primitives and what it adds to the lighting."""

    depth: float
    prims: list[tuple]
    bbox: Box
    footprint: tuple[float, float, float, float] | None  # X0, X1, d0, d1 in world units
    anomaly: bool = False
    void: bool = False
    occluded: bool = False  # (obstacles) an object in front hides part of it
    casters: list[Caster] = field(default_factory=list)
    # emitters lit at night / dusk: (label the emitting pixels carry, image-only primitive)
    glow: list[tuple[int, tuple]] = field(default_factory=list)
    pools: list[Pool] = field(default_factory=list)


@dataclass
class Side:
    """One side of the street, from the road edge outwards."""

    sign: int  # -1 left, +1 right
    kind: str  # 'buildings' | 'vegetation' | 'open'
    road_edge: float  # lateral X of the road edge (signed)
    strips: list[tuple[int, float, float, Color]]  # (label, X_inner, X_outer, colour), signed X
    facade: float  # signed X where the side structures start
    walk: tuple[float, float] | None  # (X_inner, X_outer) of the sidewalk, signed, if any
    beyond: int  # ground class beyond the facade line


class Scene:
    """One frame in the making: random streams, weather, canvas, layout and placed objects."""

    # set by layout.setup: camera and street layout
    cam: Camera
    d_near: float  # depth of the bottom image row
    d_max: float  # depth of the far backdrop
    d_lo: float  # nearest depth drawn
    road: tuple[float, float]  # lateral X of the left and right road edges
    style: dict[str, Any]  # per-frame base colours of the stuff classes
    sides: list[Side]
    tram_line: bool
    tram_X: float | None
    lanes: list[float]  # lane centres (set while drawing the markings)
    depth_code: np.ndarray | None  # fog: per-pixel object depth code (set while drawing the objects)

    def __init__(self, rng: np.random.Generator, config: WorldConfig) -> None:
        # Independent streams: the scene, the obstacles, the image finish, the weather pick and the
        # weather's own draws. A frame with and without obstacles (or with either family) then shares
        # its layout, up to objects that an obstacle displaces; every weather shares the same geometry.
        self.rng = rng
        self.obstacle_rng, self.finish_rng, pick_rng, self.wrng = rng.spawn(4)
        self.cfg = config
        self.H, self.W = config.height, config.width
        self.canvas = Canvas(self.H, self.W)
        self.objects: list[SceneObject] = []
        self.casters: list[Caster] = []  # static shadow casters
        weather = config.weather
        if weather == 'random':
            weather = WEATHERS[int(pick_rng.choice(len(WEATHERS), p=WEATHER_P))]
        self.weather = weather
        self.wx = weather_params(self.wrng, weather)
        self.lamps_on = bool(self.wx['lamps'])
        self.emit = np.zeros((self.H, self.W), dtype=np.uint8) if self.lamps_on else None
        self.bonnet: list[tuple] | None = None
        self.y_floor = float(self.H)  # first row hidden by the ego bonnet (H: none)

    # -- random helpers ------------------------------------------------------------------------------
    def u(self, a: float, b: float) -> float:
        """A uniform draw in [a, b) from the current scene stream."""
        return float(self.rng.uniform(a, b))

    def wu(self, a: float, b: float) -> float:
        """A draw from the weather stream (never the scene stream: weather must not move geometry)."""
        return float(self.wrng.uniform(a, b))

    @contextlib.contextmanager
    def substream(self) -> Iterator[None]:
        """Draw from a child stream, so that retries inside do not shift the parent stream."""
        parent = self.rng
        self.rng = parent.spawn(1)[0]
        try:
            yield
        finally:
            self.rng = parent

    def chance(self, p: float) -> bool:
        """True with probability p."""
        return bool(self.rng.random() < p)

    def pick(self, items: Any, p: Any = None) -> Any:
        """One of ``items`` (weights p, uniform when None)."""
        return items[int(self.rng.choice(len(items), p=p))]

    def jitter(self, c: Color, amount: float) -> Color:
        """The colour with random brightness and per-channel offsets of relative size ``amount``."""
        k = self.u(1 - amount, 1 + amount)
        return clip_color(tuple(c[i] * k + self.u(-amount, amount) * 40 for i in range(3)))

    def pick_w(self, items: Any) -> Any:
        """Pick from the weather stream."""
        return items[int(self.wrng.integers(0, len(items)))]

    @contextlib.contextmanager
    def drawing_from(self, rng: np.random.Generator) -> Iterator[None]:
        """Draw from another stream (the obstacles'), so that the scene stream is left where it was."""
        parent, self.rng = self.rng, rng
        try:
            yield
        finally:
            self.rng = parent

    def depth(self, d0: float, d1: float) -> float:
        """Depth with screen-uniform row: uniform in 1/d."""
        d1 = max(d1, d0 * 1.01)
        return 1.0 / self.u(1.0 / d1, 1.0 / d0)

    # -- placing objects -----------------------------------------------------------------------------
    def free(
        self,
        bbox: Box,
        footprint: tuple[float, float, float, float] | None,
        anomaly: bool = False,
        depth: float = 0.0,
    ) -> list[SceneObject] | None:
        """None if the object may not go there, else the obstacles it would partly hide.

        Footprints never overlap. Obstacles keep clear of each other (and of objects placed before
        them). An object placed after an obstacle may stand behind it, or in front of it if it hides at
        most 45% of its width, so part of the obstacle's base stays visible (one such object each).
        """
        W, H = self.W, self.H
        if bbox[2] < 0 or bbox[0] >= W or bbox[3] < 0 or bbox[1] >= H:
            return None  # entirely outside the frame
        margin = 2.0 + self.cfg.ignore_band
        hidden: list[SceneObject] = []
        for o in self.objects:
            if (o.anomaly or anomaly) and boxes_overlap(o.bbox, bbox, margin):
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

    def add(
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
        """Place an object unless `free` refuses; marks the obstacles it partly hides. True when placed."""
        bbox = prim_bbox(prims)
        hidden = self.free(bbox, footprint, anomaly, depth)
        if hidden is None:
            return False
        for o in hidden:
            o.occluded = True
        self.objects.append(
            SceneObject(depth, prims, bbox, footprint, anomaly, void, False, casters or [], glow or [], pools or [])
        )
        return True

    def all_casters(self) -> list[Caster]:
        """Static shadow casters plus those of every placed object."""
        out = list(self.casters)
        for o in self.objects:
            out.extend(o.casters)
        return out
