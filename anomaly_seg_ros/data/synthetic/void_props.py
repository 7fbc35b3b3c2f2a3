"""Void street furniture on the sidewalks: bins, benches, bollards, advertising columns, parking meters,
construction barriers and planters (no Cityscapes training class: label 255, anomaly 255)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from anomaly_seg_ros.classes import IGNORE_ID

from .colors import hsv, scale_color
from .scene import Caster, Scene, Side
from .solids import box, cylinder

__all__ = ['VOID_KINDS', 'place_void_objects']

VOID_KINDS = ('bin', 'bench', 'bollards', 'column', 'meter', 'barrier', 'planter')
VOID = IGNORE_ID  # the label of every part


@dataclass
class _Prop:
    """One void object being built: where it stands and what it adds."""

    side: Side
    X: float
    d: float  # centre depth
    d0: float
    d1: float
    half_w: float
    prims: list[tuple]
    casters: list[Caster]


def place_void_objects(scene: Scene) -> None:
    """Street furniture of no Cityscapes training class on the sidewalks (labels 255, anomaly 255).

    Placed last, from a child stream: they fill gaps left by everything else and never move it.
    """
    with scene.substream():
        if not scene.cfg.void_objects:
            return
        walks = [s for s in scene.sides if s.walk is not None and abs(s.walk[1] - s.walk[0]) > 0.9]
        if not walks:
            return
        for _ in range(int(scene.rng.integers(0, 9))):
            side = scene.pick(walks)
            kind = scene.pick(VOID_KINDS, [0.22, 0.14, 0.18, 0.1, 0.1, 0.16, 0.1])
            _void_object(scene, side, kind)


def _void_object(scene: Scene, side: Side, kind: str) -> bool:
    """One object of ``kind`` on the sidewalk of ``side``; False when it does not fit there."""
    u = scene.u
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
    X = side.sign * (u(lo, hi) if kind not in ('bollards', 'barrier') or scene.chance(0.3) else lo)
    d = scene.depth(scene.d_near * 0.9, min(scene.d_max * 0.75, 50.0)) + half_d
    d0, d1 = d - half_d, d + half_d
    prims: list[tuple] = []
    casters: list[Caster] = []
    _BUILDERS[kind](scene, _Prop(side, X, d, d0, d1, half_w, prims, casters))
    footprint = (X - half_w, X + half_w, d0, d1)
    return scene.add(d0, prims, footprint, casters=casters, void=True)


def _bin(scene: Scene, p: _Prop) -> None:
    """A litter bin: a lidded box or a cylinder."""
    u = scene.u
    X, d, d0, d1, half_w, prims, casters = p.X, p.d, p.d0, p.d1, p.half_w, p.prims, p.casters
    col = scene.pick(
        [
            hsv(u(100, 150), u(0.4, 0.7), u(0.2, 0.45)),
            hsv(0, 0, u(0.15, 0.5)),
            hsv(u(20, 35), u(0.7, 0.9), u(0.7, 0.9)),
            hsv(u(205, 225), u(0.5, 0.8), u(0.3, 0.55)),
        ]
    )
    Z = u(0.6, 0.8)
    if scene.chance(0.5):
        box(scene, prims, X - half_w, X + half_w, d0, d1, 0.0, Z, col, VOID)
        box(
            scene,
            prims,
            X - half_w - 0.03,
            X + half_w + 0.03,
            d0 - 0.03,
            d1 + 0.03,
            Z,
            Z + 0.06,
            scale_color(col, 0.7),
            VOID,
        )
    else:
        cylinder(scene, prims, X, d, half_w, 0.0, Z, col, VOID)
    casters.append((X - half_w, X + half_w, d0, d1, 0.0, Z))


def _bench(scene: Scene, p: _Prop) -> None:
    """A bench: metal legs, a wooden seat and a backrest on the outer edge."""
    u = scene.u
    X, d0, d1, half_w, side, prims, casters = p.X, p.d0, p.d1, p.half_w, p.side, p.prims, p.casters
    wood = scene.pick(
        [
            hsv(u(20, 35), u(0.4, 0.65), u(0.35, 0.6)),
            hsv(u(100, 150), u(0.3, 0.6), u(0.2, 0.4)),
            hsv(0, 0, u(0.2, 0.5)),
        ]
    )
    metal = hsv(0, 0, u(0.1, 0.3))
    Xo = X + side.sign * half_w  # backrest on the outer edge
    for dl in (d0 + 0.05, d1 - 0.1):
        box(scene, prims, X - half_w, X + half_w, dl, dl + 0.05, 0.0, 0.3, metal, VOID)
    box(scene, prims, X - half_w, X + half_w, d0, d1, 0.28, 0.33, wood, VOID)
    box(scene, prims, min(Xo, Xo - side.sign * 0.05), max(Xo, Xo - side.sign * 0.05), d0, d1, 0.36, 0.6, wood, VOID)
    casters.append((X - half_w, X + half_w, d0, d1, 0.28, 0.6))


def _bollards(scene: Scene, p: _Prop) -> None:
    """A row of bollards with a reflective band."""
    u = scene.u
    X, d0, d1, prims, casters = p.X, p.d0, p.d1, p.prims, p.casters
    col = scene.pick([hsv(0, 0, u(0.08, 0.3)), hsv(0, 0, u(0.55, 0.8)), hsv(u(0, 10), u(0.6, 0.85), u(0.45, 0.7))])
    n = max(2, int((d1 - d0) / u(0.8, 1.4)) + 1)
    Z = u(0.5, 0.75)
    band = scene.pick([hsv(0, 0, 0.95), hsv(50, 0.8, 0.9)])
    for k in reversed(range(n)):  # far to near
        dk = d0 + (d1 - d0) * k / max(n - 1, 1)
        box(scene, prims, X - 0.06, X + 0.06, dk - 0.06, dk + 0.06, 0.0, Z, col, VOID)
        box(scene, prims, X - 0.061, X + 0.061, dk - 0.061, dk + 0.061, Z - 0.15, Z - 0.08, band, VOID)
        casters.append((X - 0.06, X + 0.06, dk - 0.06, dk + 0.06, 0.0, Z))


def _column(scene: Scene, p: _Prop) -> None:
    """An advertising column with posters and a dome cap."""
    cam, u = scene.cam, scene.u
    X, d, d0, d1, half_w, prims, casters = p.X, p.d, p.d0, p.d1, p.half_w, p.prims, p.casters
    Z = u(1.7, 2.3)
    base = scene.pick([hsv(u(90, 150), u(0.3, 0.6), u(0.2, 0.4)), hsv(0, 0, u(0.3, 0.6))])
    cylinder(scene, prims, X, d, half_w, 0.0, Z, base, VOID)
    z = 0.3
    while z < Z - 0.35:
        zh = min(u(0.35, 0.7), Z - 0.3 - z)
        cylinder(
            scene, prims, X, d, half_w + 0.01, z, z + zh, hsv(u(0, 360), u(0.2, 0.9), u(0.4, 0.95)), VOID, caps=False
        )
        z += zh + 0.04
    cylinder(scene, prims, X, d, half_w + 0.05, Z - 0.06, Z, scale_color(base, 0.8), VOID)
    x, y = cam.point(X, d, Z)
    g = cam.g(d)
    prims.append(('ellipse', (x, y), (half_w * g, 0.25 * g), 0, scale_color(base, 1.15), VOID))
    casters.append((X - half_w, X + half_w, d0, d1, 0.0, Z + 0.2))


def _meter(scene: Scene, p: _Prop) -> None:
    """A parking meter: a post with a head."""
    u = scene.u
    X, d, prims, casters = p.X, p.d, p.prims, p.casters
    col = hsv(0, 0, u(0.2, 0.5))
    box(scene, prims, X - 0.03, X + 0.03, d - 0.03, d + 0.03, 0.0, 0.8, col, VOID)
    box(
        scene,
        prims,
        X - 0.1,
        X + 0.1,
        d - 0.07,
        d + 0.07,
        0.8,
        1.05,
        scene.pick([col, hsv(u(200, 220), 0.6, 0.5)]),
        VOID,
    )
    casters.append((X - 0.1, X + 0.1, d - 0.07, d + 0.07, 0.0, 1.05))


def _barrier(scene: Scene, p: _Prop) -> None:
    """A construction barrier: a striped board on two feet."""
    cam, u = scene.cam, scene.u
    X, d0, d1, prims, casters = p.X, p.d0, p.d1, p.prims, p.casters
    red = scene.pick([hsv(u(355, 365), u(0.75, 0.95), u(0.7, 0.9)), hsv(u(20, 30), u(0.8, 1.0), u(0.85, 1.0))])
    white = hsv(0, 0, u(0.85, 0.97))
    zb0, zb1 = u(0.45, 0.6), u(0.7, 0.85)
    for dl in (d0, d1 - 0.05):
        box(scene, prims, X - 0.2, X + 0.2, dl, dl + 0.05, 0.0, 0.08, hsv(0, 0, 0.15), VOID)
        box(scene, prims, X - 0.02, X + 0.02, dl, dl + 0.04, 0.0, zb1, white, VOID)
    n = max(2, int((d1 - d0) / 0.3))
    Xb = X - 0.02
    for k in range(n):
        da, db = d0 + (d1 - d0) * k / n, d0 + (d1 - d0) * (k + 1) / n
        prims.append(
            ('poly', cam.pts([Xb] * 4, [da, db, db, da], [zb0, zb0, zb1, zb1]), red if k % 2 == 0 else white, VOID)
        )
    casters.append((X - 0.02, X + 0.02, d0, d1, zb0, zb1))


def _planter(scene: Scene, p: _Prop) -> None:
    """A concrete trough with bushes (the plants are part of the object: void)."""
    cam, u = scene.cam, scene.u
    X, d, d0, d1, half_w, prims, casters = p.X, p.d, p.d0, p.d1, p.half_w, p.prims, p.casters
    concrete = hsv(u(20, 40), u(0.0, 0.15), u(0.45, 0.7))
    Z = u(0.35, 0.5)
    box(scene, prims, X - half_w, X + half_w, d0, d1, 0.0, Z, concrete, VOID)
    g = cam.g(d)
    x, y = cam.point(X, d, Z)
    green = hsv(u(80, 130), u(0.4, 0.7), u(0.25, 0.5))
    for _ in range(3):
        ox = u(-0.6, 0.6) * half_w * g
        r = half_w * g * u(0.5, 0.9)
        prims.append(('ellipse', (x + ox, y - 0.5 * r), (r, 0.7 * r), 0, scale_color(green, u(0.8, 1.2)), VOID))
    casters.append((X - half_w, X + half_w, d0, d1, 0.0, Z + 0.3))


_BUILDERS: dict[str, Callable[[Scene, _Prop], None]] = {
    'bin': _bin,
    'bench': _bench,
    'bollards': _bollards,
    'column': _column,
    'meter': _meter,
    'barrier': _barrier,
    'planter': _planter,
}
