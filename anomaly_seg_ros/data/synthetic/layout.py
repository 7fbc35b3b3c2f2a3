"""Street layout of a frame: camera, road width, the two sides (sidewalk / terrain strips), colours, ego bonnet.

`setup` draws them from the scene stream before anything is painted; the drawing modules read them from the
`Scene`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anomaly_seg_ros.classes import IGNORE_ID

from .camera import Camera
from .colors import Color, hsv, mix_colors, scale_color
from .labels import SIDEWALK, TERRAIN
from .scene import Scene, Side
from .vehicles import car_color
from .weather import weather_sky

__all__ = ['setup']


def setup(scene: Scene) -> None:
    """Draw the camera, road and sides of the frame (and the ego bonnet, from a child stream)."""
    H, W = scene.H, scene.W
    y_h = H * scene.u(0.35, 0.5)
    vx = W * (0.5 + scene.u(-0.12, 0.12))
    f = W * scene.u(0.85, 1.25)
    g_b = H - y_h
    scene.d_near = f / g_b  # depth of the bottom image row
    d_max = scene.u(30.0, 130.0)
    d_max = min(d_max, f / 3.0)
    d_max = max(d_max, 4.0 * scene.d_near)
    scene.d_max = d_max
    scene.d_lo = 0.5 * scene.d_near
    # road and sides (signed lateral X, camera at 0)
    x_left = -scene.u(1.2, 4.5)
    x_right = scene.u(1.2, 4.5)
    if scene.chance(0.15):  # narrow street
        x_left, x_right = x_left * 0.6, x_right * 0.6
    scene.road = (x_left, x_right)
    scene.style = _style(scene)
    scene.sides = [_make_side(scene, -1, x_left), _make_side(scene, +1, x_right)]
    kmax = 0.6 * min(abs(s.facade) for s in scene.sides) / (d_max * d_max)
    kappa = scene.u(-kmax, kmax) if scene.chance(0.5) else 0.0
    scene.cam = Camera(H, W, y_h, vx, f, kappa)
    # tram line: rails along one lane (drawn with the road), trams run on it
    scene.tram_line = scene.chance(0.33) and x_right - x_left > 2.0
    scene.tram_X = None
    with scene.substream():
        _make_bonnet(scene)


def _style(scene: Scene) -> dict[str, Any]:
    """Per-frame base colours of the stuff classes."""
    u = scene.u
    road_v = u(0.28, 0.55)
    road = hsv(u(0, 360), u(0.0, 0.1), road_v)
    walk_kind = scene.pick(['grey', 'beige', 'red', 'dark'], [0.45, 0.25, 0.15, 0.15])
    if walk_kind == 'grey':
        walk = hsv(u(0, 360), u(0.0, 0.08), u(0.5, 0.75))
    elif walk_kind == 'beige':
        walk = hsv(u(30, 50), u(0.12, 0.28), u(0.55, 0.78))
    elif walk_kind == 'red':
        walk = hsv(u(0, 20), u(0.25, 0.45), u(0.45, 0.65))
    else:
        walk = hsv(u(0, 360), u(0.0, 0.08), road_v + u(0.03, 0.15))
    veg = hsv(u(70, 125), u(0.35, 0.7), u(0.25, 0.5))
    if scene.chance(0.12):  # autumn / dry
        veg = hsv(u(40, 60), u(0.4, 0.7), u(0.3, 0.5))
    terrain = hsv(u(55, 95), u(0.3, 0.6), u(0.4, 0.65))
    if scene.chance(0.25):  # dirt / dry grass
        terrain = hsv(u(25, 50), u(0.25, 0.5), u(0.4, 0.6))
    top, hor = weather_sky(scene.wrng, scene.weather, scene.wx)
    return {
        'road': road,
        'walk': walk,
        'curb': scale_color(walk, u(1.05, 1.3)),
        'veg': veg,
        'terrain': terrain,
        'sky_top': top,
        'sky_hor': hor,
        'marking': hsv(0, 0, u(0.8, 0.97)),
        'yellow_marking': hsv(u(45, 52), u(0.6, 0.85), u(0.75, 0.95)),
        'rail': hsv(u(20, 40), u(0.0, 0.15), u(0.45, 0.7)),
    }


def _make_side(scene: Scene, sign: int, road_edge: float) -> Side:
    """One street side: its kind and its strips of sidewalk and terrain from the road edge outwards."""
    u = scene.u
    kind = scene.pick(['buildings', 'vegetation', 'open'], [0.6, 0.27, 0.13])
    layout = scene.pick(['walk', 'walk+terrain', 'terrain+walk', 'terrain'], [0.55, 0.2, 0.15, 0.1])
    if kind == 'buildings' and layout == 'terrain':
        layout = 'walk'
    strips: list[tuple[int, float, float, Color]] = []
    x = road_edge
    walk = None
    style = scene.style
    for part in layout.split('+'):
        if part == 'walk':
            curb = 0.1
            strips.append((SIDEWALK, x, x + sign * curb, style['curb']))
            x += sign * curb
            w = u(1.2, 3.5)
            walk = (x, x + sign * w)
            strips.append((SIDEWALK, x, x + sign * w, style['walk']))
            x += sign * w
        else:
            w = u(0.6, 3.0)
            strips.append((TERRAIN, x, x + sign * w, scene.jitter(style['terrain'], 0.08)))
            x += sign * w
    beyond = SIDEWALK if kind == 'buildings' else TERRAIN
    return Side(sign, kind, road_edge, strips, x, walk, beyond)


def _make_bonnet(scene: Scene) -> None:
    """The ego vehicle's bonnet along the bottom edge (Cityscapes 'ego vehicle': void) in some frames."""
    if not scene.cfg.void_objects or not scene.chance(0.22):
        return
    H, W, u = scene.H, scene.W, scene.u
    hc = H * u(0.05, 0.11)
    he = hc * u(0.0, 0.6)
    xc = W * (0.5 + u(-0.08, 0.08))
    xs = np.linspace(-2.0, W + 1.0, 41)
    t = np.clip(((xs - xc) / (0.55 * W)) ** 2, 0.0, 1.0)
    ys = H - (hc - (hc - he) * t)
    col = car_color(scene)
    body = np.concatenate([np.stack([xs, ys], 1), [[W + 1.0, H + 1.0], [-2.0, H + 1.0]]])
    prims: list[tuple] = [('poly', np.rint(body).astype(np.int32), col, IGNORE_ID)]
    # image-only shading inside the body: a darker lower half and a sky highlight near the top edge
    lower = np.concatenate([np.stack([xs, ys + 0.5 * (H - ys) + 1], 1), [[W + 1.0, H + 1.0], [-2.0, H + 1.0]]])
    prims.append(('poly', np.rint(lower).astype(np.int32), scale_color(col, u(0.7, 0.9)), None))
    hi = 0.15 + 0.15 * u(0, 1)
    band = np.concatenate(
        [np.stack([xs, ys + hi * (H - ys) + 1], 1), np.stack([xs, ys + (hi + 0.08) * (H - ys) + 1], 1)[::-1]]
    )
    prims.append(('poly', np.rint(band).astype(np.int32), mix_colors(col, scene.style['sky_hor'], u(0.2, 0.5)), None))
    scene.bonnet = prims
    scene.y_floor = float(H - hc)
