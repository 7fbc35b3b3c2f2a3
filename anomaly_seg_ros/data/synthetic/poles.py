"""Poles along the road edge: traffic signs, traffic lights (also on masts over the road), street lamps."""

from __future__ import annotations

import math

import numpy as np

from .colors import hsv, mix_colors, scale_color
from .labels import LIGHT, POLE, SIGN
from .scene import Pool, Scene, Side

__all__ = ['poles']


def poles(scene: Scene, side: Side) -> None:
    """A row of poles along the road edge of ``side`` (sign, light, lamp, plain, signpost or mast)."""
    if scene.chance(0.15):
        return
    inner = side.road_edge + side.sign * scene.u(0.35, 0.7)
    d = scene.d_near * scene.u(0.8, 2.5)
    while d < scene.d_max * 0.9:
        X = inner if side.walk is None or scene.chance(0.8) else side.walk[1] - side.sign * 0.3
        _pole(scene, side, X, d)
        d += scene.u(6.0, 25.0)


def _pole(scene: Scene, side: Side, X: float, d: float) -> None:
    cam, u = scene.cam, scene.u
    kind = scene.pick(['sign', 'light', 'lamp', 'plain', 'signpost', 'mast'], [0.3, 0.2, 0.22, 0.04, 0.16, 0.08])
    top = u(2.0, 2.8) if kind == 'signpost' else u(3.0, 5.5)
    w = u(0.07, 0.12)
    pole_col = scene.pick(
        [hsv(0, 0, u(0.35, 0.65)), hsv(u(100, 160), u(0.2, 0.4), u(0.15, 0.3)), hsv(0, 0, u(0.1, 0.2))]
    )
    g = cam.g(d)
    prims: list[tuple] = [
        ('poly', cam.pts([X - w / 2, X + w / 2, X + w / 2, X - w / 2], d, [0, 0, top, top]), pole_col, POLE)
    ]
    casters = [(X - w / 2, X + w / 2, d - w / 2, d + w / 2, 0.0, top)]
    glow: list[tuple[int, tuple]] = []
    pools: list[Pool] = []
    if kind in ('sign', 'signpost'):
        n = 1 if scene.chance(0.7) else 2
        z = top - u(0.2, 0.4)
        for _ in range(n):
            size = u(0.35, 0.55)
            x, y = cam.point(X, d, z)
            prims.extend(_sign_prims(scene, x, y, size * g))
            z -= size * 1.15
    elif kind in ('light', 'mast'):
        Xl = X
        if kind == 'mast':  # an arm reaching over the road, the signal head hanging at its end
            reach = u(1.2, 3.2)
            Xl = X - side.sign * reach
            xa, ya = cam.point(X, d, top)
            xb, yb = cam.point(Xl, d, top)
            prims.append(('line', (xa, ya), (xb, yb), pole_col, POLE, max(w * 0.8 * g, 1.0)))
        lw, lh = u(0.22, 0.32), u(0.65, 0.85)
        z1 = top if kind == 'light' else top - 0.05
        z0 = z1 - lh
        house = scene.pick([hsv(0, 0, u(0.08, 0.2)), hsv(u(45, 55), u(0.7, 0.9), u(0.6, 0.8))], [0.8, 0.2])
        prims.append(
            (
                'poly',
                cam.pts([Xl - lw / 2, Xl + lw / 2, Xl + lw / 2, Xl - lw / 2], d, [z0, z0, z1, z1]),
                house,
                LIGHT,
            )
        )
        lit = int(scene.rng.integers(0, 3))
        lamp_cols = [(230, 40, 30), (240, 170, 20), (40, 220, 120)]
        for k in range(3):
            zc = z1 - lh * (k + 0.5) / 3
            x, y = cam.point(Xl, d, zc)
            col = lamp_cols[k] if k == lit else scale_color(lamp_cols[k], 0.25)
            prims.append(('circle', (x, y), max(lw * 0.3 * g, 1.0), col, LIGHT, -1))
            if k == lit and scene.lamps_on:
                glow.append(
                    (
                        LIGHT + 1,
                        ('circle', (x, y), max(lw * 0.3 * g, 1.0), mix_colors(col, (255, 255, 255), 0.3), None, -1),
                    )
                )
        casters.append((Xl - lw / 2, Xl + lw / 2, d - 0.1, d + 0.1, z0, z1))
    elif kind == 'lamp':
        reach = u(0.8, 2.0)
        xa, ya = cam.point(X, d, top)
        xb, yb = cam.point(X - side.sign * reach, d, top + 0.15)
        prims.append(('line', (xa, ya), (xb, yb), pole_col, POLE, max(w * 0.7 * g, 1.0)))
        head = ((xb, yb + 0.05 * g), (0.25 * g, 0.07 * g))
        prims.append(('ellipse', head[0], head[1], 0, scale_color(pole_col, 1.2), POLE))
        if scene.lamps_on:  # weather stream only
            light = scene.pick_w([(255, 238, 200), (255, 200, 120), (235, 240, 255)])
            glow.append((POLE + 1, ('ellipse', head[0], head[1], 0, light, None)))
            R = scene.wu(2.2, 4.0) * min(top / 4.0, 1.2)
            ang = np.linspace(0.0, 2.0 * math.pi, 16, endpoint=False)
            pools.append((X - side.sign * reach + R * np.cos(ang), d + R * np.sin(ang), scene.wu(0.7, 1.0)))
    scene.add(d, prims, (X - 0.2, X + 0.2, d - 0.2, d + 0.2), casters=casters, glow=glow, pools=pools)


def _sign_prims(scene: Scene, x: float, y: float, s: float) -> list[tuple]:
    u = scene.u
    kind = scene.pick(['round', 'triangle', 'blue', 'octagon', 'diamond', 'rect'])
    r = s / 2
    red = hsv(u(355, 365), u(0.75, 0.95), u(0.65, 0.9))
    white = hsv(0, 0, u(0.85, 0.97))
    if kind == 'round':
        inner = scene.pick([white, hsv(u(210, 225), u(0.7, 0.9), u(0.5, 0.75))])
        return [('circle', (x, y), r, red, SIGN, -1), ('circle', (x, y), r * 0.75, inner, SIGN, -1)]
    if kind == 'triangle':
        inv = scene.chance(0.3)
        k = -1 if inv else 1
        outer = np.array([[x, y - k * r], [x + r, y + k * r * 0.75], [x - r, y + k * r * 0.75]])
        inner = (outer - [x, y]) * 0.6 + [x, y]
        return [
            ('poly', np.rint(outer).astype(np.int32), red, SIGN),
            ('poly', np.rint(inner).astype(np.int32), white, SIGN),
        ]
    if kind == 'blue':
        blue = hsv(u(205, 225), u(0.7, 0.95), u(0.5, 0.8))
        prims: list[tuple] = (
            [('circle', (x, y), r, blue, SIGN, -1)]
            if scene.chance(0.5)
            else [
                (
                    'poly',
                    np.rint(np.array([[x - r, y - r], [x + r, y - r], [x + r, y + r], [x - r, y + r]])).astype(
                        np.int32
                    ),
                    blue,
                    SIGN,
                )
            ]
        )
        prims.append(('line', (x - r * 0.5, y), (x + r * 0.4, y), white, SIGN, max(r * 0.2, 1)))
        return prims
    if kind == 'octagon':
        ang = np.deg2rad(22.5 + 45 * np.arange(8))
        pts = np.stack([x + r * np.cos(ang), y + r * np.sin(ang)], 1)
        return [
            ('poly', np.rint(pts).astype(np.int32), red, SIGN),
            ('line', (x - r * 0.5, y), (x + r * 0.5, y), white, SIGN, max(r * 0.25, 1)),
        ]
    if kind == 'diamond':
        yellow = hsv(u(45, 55), u(0.75, 0.95), u(0.8, 0.95))
        pts = np.array([[x, y - r], [x + r, y], [x, y + r], [x - r, y]])
        inner = (pts - [x, y]) * 0.7 + [x, y]
        return [
            ('poly', np.rint(pts).astype(np.int32), white, SIGN),
            ('poly', np.rint(inner).astype(np.int32), yellow, SIGN),
        ]
    col = scene.pick([white, hsv(u(205, 225), u(0.7, 0.9), u(0.5, 0.75)), hsv(u(110, 140), u(0.6, 0.9), u(0.35, 0.55))])
    h = r * u(0.5, 0.8)
    w = r * u(1.0, 1.6)
    return [
        (
            'poly',
            np.rint(np.array([[x - w, y - h], [x + w, y - h], [x + w, y + h], [x - w, y + h]])).astype(np.int32),
            col,
            SIGN,
        )
    ]
