"""What stands along the street sides: building facades with windows, tree lines and hedges, walls and fences,
and street trees at the road edge."""

from __future__ import annotations

from typing import cast

import cv2
import numpy as np

from .colors import Color, hsv, scale_color
from .labels import BUILDING, FENCE, VEGETATION, WALL
from .raster import LINE
from .scene import Caster, Scene, Side

__all__ = ['building_color', 'side_start', 'side_structures', 'street_trees', 'tree_prims']


def building_color(scene: Scene) -> Color:
    """A facade colour: plaster, brick, grey, dark or white."""
    u = scene.u
    kind = scene.pick(['plaster', 'brick', 'grey', 'dark', 'white'], [0.3, 0.2, 0.25, 0.1, 0.15])
    if kind == 'plaster':
        return hsv(u(20, 55), u(0.15, 0.45), u(0.5, 0.85))
    if kind == 'brick':
        return hsv(u(5, 22), u(0.4, 0.65), u(0.35, 0.6))
    if kind == 'grey':
        return hsv(u(0, 360), u(0.0, 0.08), u(0.3, 0.65))
    if kind == 'dark':
        return hsv(u(0, 360), u(0.0, 0.15), u(0.15, 0.3))
    return hsv(u(30, 60), u(0.0, 0.1), u(0.75, 0.92))


def side_start(scene: Scene, side: Side) -> float:
    """Nearest depth at which side structures start (just below the frame edge)."""
    return 0.5 * min(scene.d_lo, abs(side.facade) * scene.cam.f / scene.W)


def side_structures(scene: Scene, side: Side) -> None:
    """Buildings, or a tree line, or open land with scattered trees, with walls and fences."""
    if side.kind == 'buildings':
        _buildings(scene, side)
    elif side.kind == 'vegetation':
        _tree_line(scene, side, side_start(scene, side), scene.d_max, dense=True)
        if scene.chance(0.5):
            _barrier(scene, side, side_start(scene, side), scene.d_max)
    else:
        _tree_line(scene, side, scene.d_max * scene.u(0.2, 0.6), scene.d_max, dense=False, setback=scene.u(3.0, 12.0))
        if scene.chance(0.6):
            _barrier(scene, side, side_start(scene, side), scene.d_max)


def _buildings(scene: Scene, side: Side) -> None:
    segs = []
    d = side_start(scene, side)
    while d < scene.d_max:
        length = scene.u(6.0, 25.0)
        segs.append((d, min(d + length, scene.d_max)))
        d += length
    for d0, d1 in reversed(segs):  # far to near
        if scene.chance(0.15):
            _tree_line(scene, side, d0, d1, dense=True, setback=scene.u(0.5, 3.0))
            _barrier(scene, side, d0, d1)
        else:
            _building(scene, side, d0, d1)
            if scene.chance(0.18):  # front-garden wall or fence along the facade
                _barrier(scene, side, d0 + scene.u(0.0, 0.3) * (d1 - d0), d1, X=side.facade - side.sign * 0.05)


def _building(scene: Scene, side: Side, d0: float, d1: float) -> None:
    cam, u = scene.cam, scene.u
    X = side.facade + side.sign * u(0.0, 0.8)
    Z = u(3.0, 16.0)
    col = building_color(scene)
    c = scene.canvas
    c.poly(cam.wall(X, d0, d1, 0.0, Z), col, BUILDING)
    scene.casters.append((min(X, X + side.sign * 8.0), max(X, X + side.sign * 8.0), d0, d1, 0.0, Z))
    # end wall facing the camera (visible when the nearer neighbour is set back further)
    c.poly(cam.pts([X, X + side.sign * 2.0, X + side.sign * 2.0, X], d0, [0, 0, Z, Z]), scale_color(col, 0.8), BUILDING)
    # cornice / storey lines
    if scene.chance(0.5):
        band = scale_color(col, u(0.7, 1.2))
        for z in np.arange(u(2.5, 3.5), Z - 0.3, u(1.8, 2.4)):
            c.poly(cam.wall(X, d0, d1, z, z + 0.12), band, BUILDING)
    # windows
    win_col = scene.pick(
        [
            hsv(u(190, 230), u(0.1, 0.35), u(0.15, 0.45)),
            hsv(0, 0, u(0.05, 0.25)),
            hsv(u(30, 50), u(0.2, 0.5), u(0.55, 0.8)),
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
            & (quads[:, :, 0].min(1) < scene.W)
            & (quads[:, :, 1].max(1) >= 0)
        )
        kept = quads[keep]
        c.polys(list(kept), win_col, BUILDING)
        if scene.lamps_on and len(kept):  # some windows lit (image only; weather stream)
            lit = kept[scene.wrng.random(len(kept)) < (0.3 if scene.weather == 'night' else 0.15)]
            if len(lit):
                warm = hsv(scene.wu(30, 50), scene.wu(0.3, 0.6), scene.wu(0.8, 1.0))
                c.polys(list(lit), warm, None)
                emit = cast(np.ndarray, scene.emit)  # allocated whenever lamps_on (see __init__)
                cv2.fillPoly(emit, list(lit), BUILDING + 1, LINE)
    # shop / door band at the ground floor
    if scene.chance(0.4):
        c.poly(cam.wall(X, d0 + 0.3, d1 - 0.3, 0.2, u(0.9, 1.4)), scale_color(win_col, u(0.6, 1.0)), BUILDING)


def _tree_line(scene: Scene, side: Side, d0: float, d1: float, dense: bool, setback: float = 0.0) -> None:
    cam, u = scene.cam, scene.u
    base = side.facade + side.sign * setback
    trees = []
    d = d0
    while d < d1:
        trees.append(d)
        d += u(2.5, 6.0) if dense else u(6.0, 20.0)
    for d in reversed(trees):
        r = u(1.2, 3.5)
        X = base + side.sign * (r * u(0.6, 1.2))
        tree_prims(scene, X, d, r, out=None, casters=scene.casters)
    if dense and scene.chance(0.6):  # hedge / undergrowth along the facade line
        n = 40
        ds = np.geomspace(max(d0, 1e-3), d1, n)
        Z = u(0.5, 1.6) + scene.rng.uniform(-0.15, 0.15, n)
        X = base + side.sign * 0.3
        pts = np.concatenate([cam.pts(X, ds, 0.0), cam.pts(X, ds, Z)[::-1]])
        scene.canvas.poly(pts, scale_color(scene.jitter(scene.style['veg'], 0.08), 0.85), VEGETATION)
        scene.casters.append(
            (min(X, X + side.sign * 0.6), max(X, X + side.sign * 0.6), ds[0], ds[-1], 0.0, float(Z.mean()))
        )


def tree_prims(
    scene: Scene,
    X: float,
    d: float,
    r: float,
    out: list[tuple] | None,
    casters: list[Caster] | None = None,
) -> list[tuple]:
    """A tree at (X, d) of crown radius r: drawn now (``out`` None) or appended to ``out``."""
    cam, u = scene.cam, scene.u
    g = cam.g(d)
    prims: list[tuple] = []
    trunk_h = u(1.0, 3.0)
    tw = u(0.12, 0.3)
    trunk_col = hsv(u(20, 40), u(0.2, 0.5), u(0.15, 0.35))
    prims.append(
        (
            'poly',
            cam.pts([X - tw / 2, X + tw / 2, X + tw / 2, X - tw / 2], d, [0, 0, trunk_h + r * 0.5, trunk_h + r * 0.5]),
            trunk_col,
            VEGETATION,
        )
    )
    cx, cy = cam.point(X, d, trunk_h + r * 0.8)
    col = scene.jitter(scene.style['veg'], 0.1)
    prims.append(('ellipse', (cx, cy), (r * g, r * g * u(0.8, 1.2)), 0, col, VEGETATION))
    for _ in range(int(scene.rng.integers(2, 5))):
        ox, oy = scene.rng.uniform(-0.6, 0.6, 2) * r * g
        rr = r * g * u(0.35, 0.65)
        prims.append(
            (
                'ellipse',
                (cx + ox, cy + oy),
                (rr, rr * u(0.7, 1.2)),
                u(0, 180),
                scale_color(col, u(0.7, 1.25)),
                VEGETATION,
            )
        )
    if casters is not None:
        casters.append((X - tw / 2, X + tw / 2, d - tw / 2, d + tw / 2, 0.0, trunk_h))
        casters.append((X - 0.8 * r, X + 0.8 * r, d - 0.8 * r, d + 0.8 * r, trunk_h, trunk_h + 1.6 * r))
    if out is None:
        scene.canvas.draw(prims)
    else:
        out.extend(prims)
    return prims


def _barrier(scene: Scene, side: Side, d0: float, d1: float, X: float | None = None) -> None:
    cam, u, c = scene.cam, scene.u, scene.canvas
    X = side.facade if X is None else X
    if scene.chance(0.5):  # wall
        col = scene.pick(
            [
                hsv(u(0, 360), u(0, 0.08), u(0.45, 0.75)),
                hsv(u(5, 20), u(0.4, 0.6), u(0.35, 0.55)),
                hsv(u(30, 45), u(0.15, 0.3), u(0.55, 0.75)),
            ]
        )
        Z = u(0.5, 1.6)
        c.poly(cam.wall(X, d0, d1, 0.0, Z), col, WALL)
        c.poly(cam.wall(X, d0, d1, Z - 0.08, Z), scale_color(col, 1.15), WALL)
        scene.casters.append((min(X, X + side.sign * 0.2), max(X, X + side.sign * 0.2), d0, d1, 0.0, Z))
    else:  # fence: posts and rails
        col = scene.pick(
            [
                hsv(0, 0, u(0.2, 0.5)),
                hsv(u(90, 150), u(0.3, 0.6), u(0.2, 0.4)),
                hsv(u(20, 35), u(0.4, 0.6), u(0.3, 0.5)),
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
            c.draw([('line', (x, y0), (x, y1), col, FENCE, t)])
            d += step
        ds = np.geomspace(d0, d1, 12)
        for z in np.linspace(0.25, Z, int(scene.rng.integers(2, 4))):
            pts = cam.pts(X, ds, z)
            # rails are drawn piecewise, thinner with distance
            for k in range(len(pts) - 1):
                tk = max(1, int(round(0.04 * cam.g(ds[k]))))
                c.draw([('line', pts[k], pts[k + 1], col, FENCE, tk)])


def street_trees(scene: Scene, side: Side) -> None:
    """Trees as objects along the sidewalk edge (they can hide and be hidden by others)."""
    X0 = side.walk[1] - side.sign * 0.5 if side.walk is not None else side.facade - side.sign * 0.5
    d = scene.d_near * scene.u(0.8, 3.0)
    while d < scene.d_max * 0.8:
        r = scene.u(0.9, 2.2)
        prims: list[tuple] = []
        casters: list[Caster] = []
        tree_prims(scene, X0, d, r, out=prims, casters=casters)
        scene.add(d, prims, (X0 - 0.2, X0 + 0.2, d - 0.2, d + 0.2), casters=casters)
        d += scene.u(5.0, 14.0)
