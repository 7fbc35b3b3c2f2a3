"""Stuff on the ground plane and behind it: sky gradient, far skyline, road, sidewalks, terrain, markings, rails."""

from __future__ import annotations

import cv2
import numpy as np

from .colors import mix_colors, scale_color
from .labels import BUILDING, ROAD, SIDEWALK, VEGETATION
from .raster import LINE
from .roadside import building_color
from .scene import Scene, Side

__all__ = ['backdrop', 'ground', 'sky']


def sky(scene: Scene) -> None:
    """Fill the image with the sky gradient, top colour to horizon colour (labels start as sky)."""
    H = scene.H
    y_h = scene.cam.y_h
    t = np.clip(np.arange(H, dtype=np.float32) / max(y_h, 1.0), 0.0, 1.0) ** scene.u(0.6, 1.6)
    top = np.array(scene.style['sky_top'], dtype=np.float32)
    hor = np.array(scene.style['sky_hor'], dtype=np.float32)
    grad = top[None, :] + (hor - top)[None, :] * t[:, None]
    scene.canvas.img = cv2.resize(grad.astype(np.uint8)[:, None, :], (scene.W, H), interpolation=cv2.INTER_NEAREST)


def backdrop(scene: Scene) -> None:
    """A far skyline at depth d_max across the whole width (covers the horizon)."""
    cam, d = scene.cam, scene.d_max
    g = cam.g(d)
    haze_target = scene.style['sky_hor']
    y_base = cam.y_h + g
    urban = sum(s.kind == 'buildings' for s in scene.sides) / 2.0
    x = -5.0
    while x < scene.W + 5:
        w_world = scene.u(3.0, 18.0)
        x1 = x + max(w_world * g, 3.0)
        if scene.chance(0.25 + 0.7 * urban):
            Z = scene.u(2.0, 16.0)
            col = mix_colors(building_color(scene), haze_target, scene.u(0.25, 0.55))
            pts = np.array([[x, y_base], [x1, y_base], [x1, cam.y_h + g * (1 - Z)], [x, cam.y_h + g * (1 - Z)]])
            scene.canvas.poly(np.rint(pts).astype(np.int32), col, BUILDING)
        else:
            n = max(int((x1 - x) / 3) + 2, 3)
            xs = np.linspace(x, x1, n)
            Zs = scene.u(2.0, 6.0) + scene.rng.uniform(-0.6, 0.6, n)
            top = np.stack([xs, cam.y_h + g * (1 - Zs)], axis=1)[::-1]
            pts = np.concatenate([np.array([[x, y_base], [x1, y_base]]), top])
            col = mix_colors(scene.jitter(scene.style['veg'], 0.1), haze_target, scene.u(0.2, 0.45))
            scene.canvas.poly(np.rint(pts).astype(np.int32), col, VEGETATION)
        x = x1


def ground(scene: Scene) -> None:
    """The ground plane: beyond-facade ground, side strips with paving, road with patches and markings, rails."""
    cam, c = scene.cam, scene.canvas
    d0, d1 = scene.d_lo, scene.d_max
    far = 2.0 * scene.W * d1 / cam.f + 10.0
    for side in scene.sides:
        col = scene.style['walk'] if side.beyond == SIDEWALK else scene.style['terrain']
        c.poly(cam.strip(side.facade, side.sign * far, d0, d1), scene.jitter(col, 0.05), side.beyond)
        for label, xa, xb, col in side.strips:
            c.poly(cam.strip(xa, xb, d0, d1), col, label)
        if side.walk is not None:
            _paving(scene, side)
    xl, xr = scene.road
    c.poly(cam.strip(xl, xr, d0, d1), scene.style['road'], ROAD)
    _road_patches(scene)
    _markings(scene)
    if scene.tram_line:
        _rails(scene)


def _rails(scene: Scene) -> None:
    """Two embedded tram rails along one lane (labelled road, as in Cityscapes)."""
    cam, c = scene.cam, scene.canvas
    X = scene.pick(scene.lanes)
    scene.tram_X = X
    gauge = 0.48
    if scene.chance(0.4):  # the track bed is paved differently
        c.poly(
            cam.strip(X - gauge - 0.25, X + gauge + 0.25, scene.d_lo, scene.d_max),
            scale_color(scene.style['road'], scene.u(0.8, 1.2)),
            ROAD,
        )
    rail, groove = scene.style['rail'], scale_color(scene.style['road'], 0.35)
    for off in (-gauge, gauge):
        c.poly(cam.strip(X + off - 0.05, X + off + 0.05, scene.d_lo, scene.d_max), groove, ROAD)
        c.poly(cam.strip(X + off - 0.035, X + off + 0.0, scene.d_lo, scene.d_max), rail, ROAD)


def _paving(scene: Scene, side: Side) -> None:
    if scene.chance(0.4):
        return
    xa, xb = side.walk  # type: ignore[misc]
    step = scene.u(0.7, 1.6)
    col = scale_color(scene.style['walk'], scene.u(0.75, 0.9))
    cam = scene.cam
    lines: list[np.ndarray] = []
    d = scene.d_lo
    while d < scene.d_max and cam.g(d) * step > 4 and len(lines) < 80:
        lines.append(cam.pts([xa, xb], [d, d]))
        d += step
    if lines:
        cv2.polylines(scene.canvas.img, lines, False, col, 1, LINE)


def _road_patches(scene: Scene) -> None:
    cam = scene.cam
    xl, xr = scene.road
    for _ in range(int(scene.rng.integers(0, 4))):
        d0 = scene.u(scene.d_near, min(scene.d_max * 0.6, 40.0))
        length = scene.u(1.0, 6.0)
        xa = scene.u(xl, xr - 0.5)
        xb = min(xa + scene.u(0.5, 3.0), xr)
        col = scale_color(scene.style['road'], scene.u(0.7, 1.25))
        scene.canvas.poly(cam.strip(xa, xb, d0, d0 + length), col, ROAD)
    if scene.chance(0.3):  # manhole cover
        d = scene.u(scene.d_near * 1.2, 25.0)
        X = scene.u(xl + 0.5, xr - 0.5)
        x, y = cam.point(X, d)
        g = cam.g(d)
        scene.canvas.draw(
            [('ellipse', (x, y), (0.35 * g, 0.35 * g / d), 0, scale_color(scene.style['road'], 0.6), ROAD)]
        )


def _markings(scene: Scene) -> None:
    """Lane lines (dashed, solid or double), edge lines and zebra crossings; sets ``scene.lanes``."""
    cam, c, st = scene.cam, scene.canvas, scene.style
    xl, xr = scene.road
    width = xr - xl
    n_lanes = max(1, int(round(width / scene.u(2.2, 2.7))))
    lane = width / n_lanes
    scene.lanes = [xl + lane * (i + 0.5) for i in range(n_lanes)]
    w = scene.u(0.07, 0.12)
    dash, gap = scene.u(1.5, 3.0), scene.u(2.5, 6.0)
    d0 = scene.d_lo
    for i in range(1, n_lanes):
        X = xl + lane * i
        centre = n_lanes >= 2 and abs(i - n_lanes / 2) < 0.6
        style = scene.pick(['dashed', 'solid', 'double'], [0.7, 0.2, 0.1]) if centre else 'dashed'
        col = st['yellow_marking'] if centre and scene.chance(0.15) else st['marking']
        if style == 'solid':
            c.poly(cam.strip(X - w / 2, X + w / 2, d0, scene.d_max), col, ROAD)
        elif style == 'double':
            for off in (-1.5 * w, 1.5 * w):
                c.poly(cam.strip(X + off - w / 2, X + off + w / 2, d0, scene.d_max), col, ROAD)
        else:
            phase = scene.u(0, dash + gap)
            dd = d0 - phase
            polys = []
            while dd < scene.d_max:
                a, b = max(dd, d0), min(dd + dash, scene.d_max)
                if b > a and cam.g(a) * w > 0.3:
                    polys.append(cam.strip(X - w / 2, X + w / 2, a, b))
                dd += dash + gap
            c.polys(polys, col, ROAD)
    if scene.chance(0.5):  # edge lines
        for X in (xl + 0.25, xr - 0.25):
            c.poly(cam.strip(X - w / 2, X + w / 2, d0, scene.d_max), st['marking'], ROAD)
    if scene.chance(0.15):  # zebra crossing
        dc = scene.u(scene.d_near * 1.3, min(30.0, scene.d_max * 0.5))
        depth = scene.u(2.0, 3.5)
        sw = scene.u(0.35, 0.55)
        polys = []
        X = xl + 0.2
        while X + sw < xr:
            polys.append(cam.strip(X, X + sw, dc, dc + depth))
            X += 2 * sw
        c.polys(polys, st['marking'], ROAD)
