"""Road obstacles (the anomalies): where they stand, which family they belong to, and their rasterised patch.

Obstacles (boxes, barrels, rocks, tyre stacks, toppled chairs, animals, ...) belong to no Cityscapes class and
stand on the road, from a few pixels far away to a quarter of the frame width near by; their visible pixels are
``anomaly == 1`` and ``labels == 255``. The two families ('test', 'proxy') use disjoint shape sets, hue bands and
patterns. All draws come from the obstacle stream, so frames with and without obstacles share their layout.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .colors import scale_color
from .obstacle_shapes import OBSTACLE_SHAPES, ObstacleParts, obstacle_shape
from .obstacle_textures import obstacle_texture
from .raster import LINE
from .scene import Scene

__all__ = ['FAMILY_SHAPES', 'place_obstacles']

# Obstacle shapes per family: disjoint sets (hues and patterns are in obstacle_textures).
FAMILY_SHAPES: dict[str, tuple[str, ...]] = {
    'test': ('crate', 'taped_box', 'barrel', 'lying_barrel', 'rock', 'tyre_stack', 'chair', 'sack', 'animal'),
    'proxy': ('cone', 'ball', 'tyre', 'star', 'plank', 'bucket', 'bag', 'pallet'),
}
_unknown = {name for shapes in FAMILY_SHAPES.values() for name in shapes} - set(OBSTACLE_SHAPES)
if _unknown:  # pragma: no cover - programming error
    raise ImportError(f'obstacle families name unregistered shapes: {sorted(_unknown)}')


def place_obstacles(scene: Scene) -> None:
    """With probability ``anomaly_prob``, 1..max_anomalies obstacles (25 tries each; one fallback if none fits)."""
    with scene.drawing_from(scene.obstacle_rng):
        cfg = scene.cfg
        if cfg.max_anomalies <= 0 or not scene.chance(cfg.anomaly_prob):
            return
        n = int(scene.rng.integers(1, cfg.max_anomalies + 1))
        placed = 0
        for _ in range(n):
            for _attempt in range(25):
                if _try_obstacle(scene):
                    placed += 1
                    break
        if placed == 0:
            _try_obstacle(scene, fallback=True)


def _try_obstacle(scene: Scene, fallback: bool = False) -> bool:
    """One placement attempt: an obstacle on the road, inside the frame, clear of other obstacles.

    Sizes are log-uniform from small debris to large objects (world units are camera heights, about
    1.5 m), the base row uniform below the horizon (uniform in 1/depth), so frames show anything
    from a few pixels far away to a quarter of the frame width near by.
    """
    cam, u = scene.cam, scene.u
    shape = scene.pick(FAMILY_SHAPES[scene.cfg.anomaly_family])
    xl, xr = scene.road
    min_px = max(3.0, 0.006 * scene.H)
    y_floor = scene.y_floor  # rows below are hidden by the ego bonnet
    if fallback:  # a medium obstacle in front of the camera (the camera is always on the road)
        y_base = cam.y_h + 0.75 * (y_floor - cam.y_h)
        size = 0.5
    else:
        size = math.exp(u(math.log(0.12), math.log(1.3)))
        y_lo = cam.y_h + max(cam.g(scene.d_max) * 1.5, 2.0)
        y_base = u(y_lo, y_floor - 1.0)
    d = cam.f / (y_base - cam.y_h)
    g = cam.g(d)
    size = min(size, (scene.W / 4.0) / g, 0.8 * (xr - xl))
    if size * g < min_px and not fallback:
        return False
    # lateral range: on the road with a margin, and horizontally inside the frame at this depth
    margin = 0.1 + size / 2
    bend = cam.kappa * d * d
    x_lo = max(xl + margin, (0.5 * size * g + 1 - cam.vx) / g - bend)
    x_hi = min(xr - margin, (scene.W - 2 - 0.5 * size * g - cam.vx) / g - bend)
    if x_lo > x_hi:
        if not fallback:
            return False
        x_lo = x_hi = min(max(-bend, xl + margin), xr - margin)
    X = u(x_lo, x_hi) if not fallback else 0.5 * (x_lo + x_hi)
    prims = _obstacle_prims(scene, shape, X, d, size)
    if prims is None:
        return False
    footprint = (X - size / 2, X + size / 2, d - size / 2, d + size / 2)
    casters = [(X - 0.4 * size, X + 0.4 * size, d, d + 0.5 * size, 0.0, 0.6 * size)]
    return scene.add(d, prims, footprint, anomaly=True, casters=casters)


def _obstacle_prims(scene: Scene, shape: str, X: float, d: float, size: float) -> list[tuple] | None:
    """Obstacle standing on the road at (X, d): a contact shadow plus one 'patch' primitive."""
    cam = scene.cam
    g = cam.g(d)
    bx, by = cam.point(X, d)
    parts = ObstacleParts(X, d, size, g, bx, by)
    obstacle_shape(shape)(scene, parts)
    faces, ellipses, rings, arcs, overlays = parts.faces, parts.ellipses, parts.rings, parts.arcs, parts.overlays
    half = parts.half

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
    if x1 - x0 > 4 * scene.W or y1 - y0 > 4 * scene.H or x1 <= 0 or x0 >= scene.W or y1 <= 0 or y0 >= scene.H:
        return None
    h, w = y1 - y0, x1 - x0
    shade = np.zeros((h, w), dtype=np.float32)
    off = np.array([x0, y0])
    for pts, s in faces:
        cv2.fillPoly(shade, [(pts - off).astype(np.int32)], float(s), LINE)
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
            LINE,
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
            LINE,
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
            LINE,
        )
    over = None
    if overlays:
        over = np.zeros((h, w, 3), dtype=np.uint8)
        over_mask = np.zeros((h, w), dtype=np.uint8)
        for pts, col in overlays:
            cv2.fillPoly(over, [(pts - off).astype(np.int32)], col, LINE)
            cv2.fillPoly(over_mask, [(pts - off).astype(np.int32)], 1, LINE)
            cv2.fillPoly(shade, [(pts - off).astype(np.int32)], 1.0, LINE)
    mask = shade > 0
    if not mask.any():
        return None
    # the obstacle must stand on the road: clip anything below its base row
    base_row = int(round(cam.point(X, d)[1])) - y0
    if base_row + 1 < h:
        mask[base_row + 1 :] = False
    # enough of it must be visible inside the frame
    vis = mask[max(-y0, 0) : max(scene.H - y0, 0), max(-x0, 0) : max(scene.W - x0, 0)]
    n_vis = int(vis.sum())
    if n_vis < max(6.0, (0.008 * scene.H) ** 2) or n_vis < 0.6 * mask.sum():
        return None
    # obstacles are lower than the camera: nothing reaches the horizon
    top_row = int(np.argmax(mask.any(axis=1))) + y0
    if top_row < cam.point(X, d, 0.95)[1]:
        return None
    rgb = obstacle_texture(scene, h, w, max(size * g, 4.0)) * shade[..., None]
    rgb = np.clip(rgb, 0, 255).astype(np.uint8)
    if over is not None:
        np.copyto(rgb, over, where=over_mask[..., None].astype(bool))
    shadow = (
        'ellipse',
        (bx, by),
        (max(half * g * 1.1, 1.0), max(half * g * 0.18, 1.0)),
        0,
        scale_color(scene.style['road'], 0.45),
        None,
    )
    return [shadow, ('patch', x0, y0, rgb, mask)]
