"""Road obstacle shapes: a registry of silhouette builders, one per shape, looked up by name.

A builder fills the `ObstacleParts` of one obstacle with shaded polygons, ellipses, rings, arcs and tape overlays in
pixel coordinates around its base point; `obstacles` rasterises them into one textured patch. Builders draw their
random numbers from ``scene.rng`` (the obstacle stream while obstacles are placed).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .colors import Color, hsv, scale_color
from .scene import Scene

__all__ = ['OBSTACLE_SHAPES', 'ObstacleParts', 'ShapeBuilder', 'obstacle_shape']

Point = tuple[float, float]


@dataclass
class ObstacleParts:
    """One obstacle standing on the road at world (X, d) with the given size; base point (bx, by) in pixels."""

    X: float
    d: float
    size: float
    g: float  # pixels per world unit at depth d
    bx: float
    by: float
    faces: list[tuple[np.ndarray, float]] = field(default_factory=list)  # (polygon, shade), in order; 0 = hole
    ellipses: list[tuple[Point, Point, float, float]] = field(default_factory=list)  # centre, axes, shade, angle
    rings: list[tuple[Point, Point, float, int]] = field(default_factory=list)  # centre, axes, shade, thickness
    # centre, axes, shade, thickness, start and end angle in degrees
    arcs: list[tuple[Point, Point, float, int, float, float]] = field(default_factory=list)
    overlays: list[tuple[np.ndarray, Color]] = field(default_factory=list)  # polygons in their own colour (tape)

    @property
    def half(self) -> float:
        return self.size / 2


ShapeBuilder = Callable[[Scene, ObstacleParts], None]

OBSTACLE_SHAPES: dict[str, ShapeBuilder] = {}


def register(name: str) -> Callable[[ShapeBuilder], ShapeBuilder]:
    """Register a shape builder under ``name`` (each name once)."""

    def add(builder: ShapeBuilder) -> ShapeBuilder:
        if name in OBSTACLE_SHAPES:
            raise ValueError(f'obstacle shape {name!r} is registered twice')
        OBSTACLE_SHAPES[name] = builder
        return builder

    return add


def obstacle_shape(name: str) -> ShapeBuilder:
    """The builder of the shape ``name``; an unknown name raises KeyError listing the known ones."""
    try:
        return OBSTACLE_SHAPES[name]
    except KeyError:
        raise KeyError(f'unknown obstacle shape {name!r}; known: {sorted(OBSTACLE_SHAPES)}') from None


def _bar(p0: Point, p1: Point, thick: float) -> np.ndarray:
    """A straight bar from p0 to p1 (pixels) as a quad."""
    v = np.array([p1[0] - p0[0], p1[1] - p0[1]], dtype=np.float64)
    n = np.array([-v[1], v[0]]) / max(float(np.hypot(*v)), 1e-6) * max(thick, 1.0) / 2
    q = np.array([[p0[0], p0[1]], [p1[0], p1[1]], [p1[0], p1[1]], [p0[0], p0[1]]]) + np.array([n, n, -n, -n])
    return np.rint(q).astype(np.int32)


@register('crate')
def _crate(scene: Scene, parts: ObstacleParts) -> None:
    """A wooden crate, upright or tipped."""
    cam, u = scene.cam, scene.u
    X, d, size, half = parts.X, parts.d, parts.size, parts.half
    faces = parts.faces
    depth = size * u(0.6, 1.0)
    height = size * u(0.5, 1.0)
    X0, X1 = X - half, X + half
    for name, pts in cam.box_faces(X0, X1, d, d + depth, 0.0, height):
        faces.append((pts, {'side': 0.7, 'top': 1.15, 'front': 1.0}[name]))
    if scene.chance(0.5):  # tipped: rotate the silhouette a little
        ang = math.radians(u(-25, 25))
        cx, cy = cam.point(X, d)
        rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
        faces[:] = [(np.rint((p - [cx, cy]) @ rot.T + [cx, cy]).astype(np.int32), s) for p, s in faces]
        lift = max(int(max(p[:, 1].max() for p, _s in faces) - round(cy)), 0)
        faces[:] = [((p - [0, lift]).astype(np.int32), s) for p, s in faces]


@register('barrel')
def _barrel(scene: Scene, parts: ObstacleParts) -> None:
    """An upright barrel with two hoops."""
    u = scene.u
    size, g, half, bx, by = parts.size, parts.g, parts.half, parts.bx, parts.by
    faces, ellipses, rings = parts.faces, parts.ellipses, parts.rings
    rad, height = half * u(0.6, 0.9), min(size * u(0.9, 1.5), 0.9)
    w, h = rad * g, height * g
    e = max(w * 0.3, 1.0)
    faces.append(
        (
            np.rint(np.array([[bx - w, by - e], [bx + w, by - e], [bx + w, by - h], [bx - w, by - h]])).astype(
                np.int32
            ),
            1.0,
        )
    )
    ellipses.append(((bx, by - e), (w, e), 1.0, 0))
    for k in range(1, 3):
        yk = by - e - (h - e) * k / 3
        rings.append(((bx, yk), (w, e), 0.6, max(int(0.05 * h), 1)))
    ellipses.append(((bx, by - h), (w, e), 1.2, 0))


@register('lying_barrel')
def _lying_barrel(scene: Scene, parts: ObstacleParts) -> None:
    """A barrel lying across the road, one end cap showing."""
    u = scene.u
    size, g, half, bx, by = parts.size, parts.g, parts.half, parts.bx, parts.by
    faces, ellipses = parts.faces, parts.ellipses
    rad, height = half * u(0.35, 0.5), size
    w, h = height * g / 2, rad * g
    faces.append(
        (
            np.rint(np.array([[bx - w, by], [bx + w, by], [bx + w, by - 2 * h], [bx - w, by - 2 * h]])).astype(
                np.int32
            ),
            1.0,
        )
    )
    end = scene.pick([-1, 1])
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


@register('rock')
def _rock(scene: Scene, parts: ObstacleParts) -> None:
    """A rock: a random convex-ish outline with darker patches."""
    u = scene.u
    g, half, bx, by = parts.g, parts.half, parts.bx, parts.by
    faces, ellipses = parts.faces, parts.ellipses
    n = int(scene.rng.integers(7, 13))
    ang_ = np.sort(scene.rng.uniform(0, 2 * math.pi, n))
    rad_ = half * g * scene.rng.uniform(0.55, 1.0, n)
    hk = u(0.5, 1.0)
    xs = bx + rad_ * np.cos(ang_)
    ys = -rad_ * hk * np.sin(ang_)
    ys += by - ys.max()  # rests on the road
    faces.append((np.rint(np.stack([xs, ys], 1)).astype(np.int32), 1.0))
    for _ in range(int(scene.rng.integers(1, 4))):
        ox = bx + u(-0.5, 0.5) * half * g
        oy = float(ys.mean()) + u(-0.3, 0.3) * half * g * hk
        ellipses.append(((ox, oy), (half * g * u(0.15, 0.35), half * g * u(0.1, 0.25)), u(0.55, 0.8), u(0, 180)))


@register('cone')
def _cone(scene: Scene, parts: ObstacleParts) -> None:
    """A traffic-cone-like pyramid on a square foot."""
    u = scene.u
    size, g, half, bx, by = parts.size, parts.g, parts.half, parts.bx, parts.by
    faces = parts.faces
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
            np.rint(np.array([[bx - w, by - 0.08 * h], [bx + w, by - 0.08 * h], [bx, by - h]])).astype(np.int32),
            1.0,
        )
    )
    faces.append(
        (np.rint(np.array([[bx, by - 0.08 * h], [bx + w, by - 0.08 * h], [bx, by - h]])).astype(np.int32), 0.75)
    )


@register('ball')
def _ball(scene: Scene, parts: ObstacleParts) -> None:
    """A ball with a highlight."""
    u = scene.u
    g, half, bx, by = parts.g, parts.half, parts.bx, parts.by
    ellipses = parts.ellipses
    r = half * g * u(0.7, 1.0)
    ellipses.append(((bx, by - r), (r, r), 1.0, 0))
    ellipses.append(((bx - 0.3 * r, by - 1.35 * r), (0.35 * r, 0.3 * r), 1.3, 0))


@register('tyre')
def _tyre(scene: Scene, parts: ObstacleParts) -> None:
    """A single tyre standing on its tread."""
    u = scene.u
    g, half, bx, by = parts.g, parts.half, parts.bx, parts.by
    rings = parts.rings
    r = half * g
    squash = u(0.35, 1.0)
    thick = max(int(round(r * u(0.3, 0.45))), 1)
    ro = r - thick / 2
    rings.append(((bx, by - r * squash), (max(ro, 1.0), max(ro * squash, 1.0)), 1.0, thick))


@register('star')
def _star(scene: Scene, parts: ObstacleParts) -> None:
    """A flat star shape."""
    u = scene.u
    g, half, bx, by = parts.g, parts.half, parts.bx, parts.by
    faces = parts.faces
    n = int(scene.rng.integers(4, 7))
    ang_ = u(0, math.pi) + np.arange(2 * n) * math.pi / n
    rad_ = np.where(np.arange(2 * n) % 2 == 0, half * g, half * g * u(0.3, 0.5))
    hk = u(0.5, 1.0)
    xs = bx + rad_ * np.cos(ang_)
    ys = -rad_ * hk * np.sin(ang_)
    ys += by - ys.max()
    faces.append((np.rint(np.stack([xs, ys], 1)).astype(np.int32), 1.0))


@register('taped_box')
def _taped_box(scene: Scene, parts: ObstacleParts) -> None:
    """A cardboard-like box with tape across its front and top."""
    cam, u = scene.cam, scene.u
    X, d, size, half = parts.X, parts.d, parts.size, parts.half
    faces, overlays = parts.faces, parts.overlays
    depth = size * u(0.6, 1.0)
    height = size * u(0.45, 0.9)
    X0, X1 = X - half, X + half
    for name, pts in cam.box_faces(X0, X1, d, d + depth, 0.0, height):
        faces.append((pts, {'side': 0.7, 'top': 1.15, 'front': 1.0}[name]))
    tape = scene.pick([hsv(u(30, 45), u(0.25, 0.45), u(0.6, 0.8)), hsv(0, 0, u(0.8, 0.95)), hsv(0, 0, u(0.1, 0.2))])
    tw = size * u(0.08, 0.15)
    overlays.append((cam.pts([X - tw, X + tw, X + tw, X - tw], d, [0.0, 0.0, height, height]), tape))
    if height < 1.0:
        overlays.append(
            (cam.pts([X - tw, X + tw, X + tw, X - tw], [d, d, d + depth, d + depth], height), scale_color(tape, 1.1))
        )


@register('tyre_stack')
def _tyre_stack(scene: Scene, parts: ObstacleParts) -> None:
    """Tyres lying on top of each other, seen from the side."""
    cam, u = scene.cam, scene.u
    X, d, g, half, bx = parts.X, parts.d, parts.g, parts.half, parts.bx
    faces, ellipses = parts.faces, parts.ellipses
    R = half * u(0.75, 1.0)
    th = R * u(0.45, 0.6)
    n = int(scene.rng.integers(2, 5))
    n = max(1, min(n, int(0.85 / th)))
    rx = R * g
    for k in range(n):
        za, zb = k * th, (k + 1) * th
        ya, yb = cam.point(X, d, za)[1], cam.point(X, d, zb)[1]
        faces.append(
            (
                np.rint(np.array([[bx - rx, ya], [bx + rx, ya], [bx + rx, yb], [bx - rx, yb]])).astype(np.int32),
                0.95 if k % 2 == 0 else 0.8,
            )
        )
        ey = max(R * g * (1.0 - za) / d, 0.5)
        ellipses.append(((bx, ya), (rx, ey), 0.95 if k % 2 == 0 else 0.8, 0.0))
        for sx_ in (-1.0, 1.0):  # rounded flanks: darker towards the silhouette edges
            xa_, xb_ = bx + sx_ * 0.7 * rx, bx + sx_ * rx
            faces.append((np.rint(np.array([[xa_, ya], [xb_, ya], [xb_, yb], [xa_, yb]])).astype(np.int32), 0.62))
        faces.append((_bar((bx - rx, yb), (bx + rx, yb), max(0.1 * th * g, 1.0)), 0.4))
    zt = n * th
    yt = cam.point(X, d, zt)[1]
    ey = max(R * g * (1.0 - zt) / d, 0.5)
    ellipses.append(((bx, yt), (rx, ey), 1.15, 0.0))
    ellipses.append(((bx, yt), (rx * 0.55, ey * 0.55), 0.3, 0.0))


@register('chair')
def _chair(scene: Scene, parts: ObstacleParts) -> None:
    """A toppled chair: seat, backrest and legs, lying at an angle."""
    u = scene.u
    size, g, bx, by = parts.size, parts.g, parts.bx, parts.by
    faces = parts.faces
    sz = size * g * 0.9
    legs_d = 0.12 * sz
    limbs = [  # (start, end, thickness, shade) in units of the chair size
        ((0.0, 0.45), (0.5, 0.45), 0.07, 1.0),
        ((0.0, 0.45), (0.0, 1.0), 0.07, 0.85),
        ((0.05, 0.45), (0.05, 0.0), 0.05, 0.7),
        ((0.45, 0.45), (0.45, 0.0), 0.05, 0.7),
        ((0.0, 0.75), (0.0, 0.7), 0.2, 0.85),
    ]
    ang = math.radians(u(60, 120) * scene.pick([-1, 1]) if scene.chance(0.8) else u(150, 210))
    ca, sa = math.cos(ang), math.sin(ang)
    polys = []
    for back in (True, False):  # far legs first, a little offset
        for (ax_, ay_), (bx_, by_), t, sh in limbs:
            if back and sh != 0.7:
                continue
            pa = (ax_ * ca - ay_ * sa, -(ax_ * sa + ay_ * ca))
            pb = (bx_ * ca - by_ * sa, -(bx_ * sa + by_ * ca))
            q = _bar((pa[0] * sz, pa[1] * sz), (pb[0] * sz, pb[1] * sz), t * sz).astype(np.float64)
            if back:
                q += [legs_d, -legs_d * 0.5]
            polys.append((q, sh * (0.75 if back else 1.0)))
    lowest = max(q[:, 1].max() for q, _sh in polys)
    cx = 0.5 * (min(q[:, 0].min() for q, _sh in polys) + max(q[:, 0].max() for q, _sh in polys))
    for q, sh in polys:
        faces.append((np.rint(q + [bx - cx, by - lowest]).astype(np.int32), sh))


@register('sack')
def _sack(scene: Scene, parts: ObstacleParts) -> None:
    """A filled sack with a tied neck, resting on the road."""
    u = scene.u
    g, half, bx, by = parts.g, parts.half, parts.bx, parts.by
    faces, ellipses = parts.faces, parts.ellipses
    a_, b_ = half * g * u(0.8, 1.0), half * g * u(0.7, 1.2)
    th_ = np.linspace(0, 2 * math.pi, 28, endpoint=False)
    wob = 1.0 + 0.08 * np.sin(3 * th_ + u(0, 6.28)) + 0.05 * np.sin(5 * th_ + u(0, 6.28))
    xs = bx + a_ * np.cos(th_) * wob
    ys = by - b_ - b_ * np.sin(th_) * wob
    ys = np.minimum(ys, by)
    faces.append((np.rint(np.stack([xs, ys], 1)).astype(np.int32), 1.0))
    side_ = scene.pick([-1.0, 1.0])
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


@register('animal')
def _animal(scene: Scene, parts: ObstacleParts) -> None:
    """A quadruped standing on the road, seen from the side."""
    u = scene.u
    size, g, bx, by = parts.size, parts.g, parts.bx, parts.by
    faces, ellipses = parts.faces, parts.ellipses
    sz = size * g
    f_ = scene.pick([-1.0, 1.0])
    leg, body_h = u(0.3, 0.42), u(0.12, 0.17)
    yb_ = by - (leg + body_h) * sz
    for k, (lx, sh) in enumerate(((-0.3, 0.6), (0.26, 0.6), (-0.24, 0.8), (0.32, 0.8))):  # far legs first
        xk = bx + f_ * lx * sz + (0.03 * sz if k < 2 else 0.0)
        faces.append((_bar((xk, yb_), (xk + f_ * u(-0.04, 0.04) * sz, by), 0.065 * sz), sh))
    ellipses.append(((bx, yb_), (0.42 * sz, body_h * sz), 1.0, 0.0))
    neck0 = (bx + f_ * 0.33 * sz, yb_ - 0.02 * sz)
    head = (bx + f_ * u(0.5, 0.58) * sz, yb_ - u(0.2, 0.32) * sz)
    faces.append((_bar(neck0, head, 0.13 * sz), 0.95))
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
            _bar((bx - f_ * 0.4 * sz, yb_ - 0.05 * sz), (bx - f_ * 0.55 * sz, yb_ + u(0.0, 0.2) * sz), 0.04 * sz),
            0.8,
        )
    )


@register('bucket')
def _bucket(scene: Scene, parts: ObstacleParts) -> None:
    """A bucket: tapered body, rim, dark inside and a handle."""
    cam, u = scene.cam, scene.u
    X, d, size, g, half, bx, by = parts.X, parts.d, parts.size, parts.g, parts.half, parts.bx, parts.by
    faces, ellipses, arcs = parts.faces, parts.ellipses, parts.arcs
    rb, rt = half * u(0.55, 0.7), half * u(0.8, 0.95)
    hgt = min(size * u(0.8, 1.1), 0.8)
    yt = cam.point(X, d, hgt)[1]
    faces.append(
        (
            np.rint(np.array([[bx - rb * g, by], [bx + rb * g, by], [bx + rt * g, yt], [bx - rt * g, yt]])).astype(
                np.int32
            ),
            1.0,
        )
    )
    ellipses.append(((bx, by), (rb * g, max(rb * g / d, 0.5)), 0.9, 0.0))
    faces.append(
        (
            np.rint(
                np.array([[bx + 0.4 * rb * g, by], [bx + rb * g, by], [bx + rt * g, yt], [bx + 0.4 * rt * g, yt]])
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


@register('bag')
def _bag(scene: Scene, parts: ObstacleParts) -> None:
    """A shopping / plastic bag with two handles."""
    u = scene.u
    size, g, half, bx, by = parts.size, parts.g, parts.half, parts.bx, parts.by
    faces, arcs = parts.faces, parts.arcs
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


@register('pallet')
def _pallet(scene: Scene, parts: ObstacleParts) -> None:
    """A wooden pallet lying flat: slats on top, blocks and gaps at the front."""
    cam, u = scene.cam, scene.u
    X, d, size, half = parts.X, parts.d, parts.size, parts.half
    faces = parts.faces
    depth = size * u(0.6, 0.8)
    height = size * u(0.12, 0.16)
    X0, X1 = X - half, X + half
    for name, pts in cam.box_faces(X0, X1, d, d + depth, 0.0, height):
        faces.append((pts, {'side': 0.7, 'top': 1.1, 'front': 0.9}[name]))
    n = int(scene.rng.integers(4, 7))
    for k in range(n - 1):  # gaps between the top slats
        xa = X0 + (X1 - X0) * (k + 1) / n - 0.02 * size
        faces.append((cam.pts([xa, xa + 0.04 * size, xa + 0.04 * size, xa], [d, d, d + depth, d + depth], height), 0.3))
    for k in range(2):  # openings between the three blocks of the front face
        xa = X0 + (X1 - X0) * (0.12 + 0.42 * k)
        xb = xa + (X1 - X0) * 0.3
        faces.append((cam.pts([xa, xb, xb, xa], d, [0.0, 0.0, 0.6 * height, 0.6 * height]), 0.25))


@register('plank')
def _plank(scene: Scene, parts: ObstacleParts) -> None:
    """A long thin slab leaning or lying on the road."""
    u = scene.u
    size, g, bx, by = parts.size, parts.g, parts.bx, parts.by
    faces = parts.faces
    L, T = size * g, max(size * g * u(0.1, 0.2), 2.0)
    ang = math.radians(u(-30, 30))
    along = np.array([math.cos(ang), math.sin(ang)]) * L / 2
    normal = np.array([-math.sin(ang), math.cos(ang)]) * T / 2
    top_ = np.array([-along - normal, along - normal, along + normal, -along + normal])
    side = top_ + [0.0, T * 0.8]  # the slab's edge, seen below its face
    shift = np.array([bx, by - side[:, 1].max()])
    faces.append((np.rint(side + shift).astype(np.int32), 0.6))
    faces.append((np.rint(top_ + shift).astype(np.int32), 1.0))
