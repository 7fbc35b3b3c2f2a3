"""Image-only lighting maps: sun shadows, night light pools and glow, fog depth, rain streaks and the wet road."""

from __future__ import annotations

import math
from typing import Any, cast

import cv2
import numpy as np

from .labels import ROAD, SIDEWALK, SKY, TERRAIN
from .raster import LINE
from .scene import Scene

__all__ = ['bloom', 'fog_alpha', 'fog_code', 'fog_map', 'light_map', 'rain_layer', 'wet_road']

# ground classes (sun shadows fall on them, fog depth follows the image row) and emitter codes (label + 1)
_GROUND_LUT = np.zeros((1, 256), dtype=np.uint8)
_GROUND_LUT[0, [ROAD, SIDEWALK, TERRAIN]] = 1
_EMIT_LUT = np.zeros((1, 256), dtype=np.uint8)
_EMIT_LUT[0, :19] = np.arange(1, 20)


def _ground_polygon(scene: Scene, Xs: np.ndarray, ds: np.ndarray) -> np.ndarray | None:
    """Pixel polygon of a convex ground polygon (world X, d), clipped to d >= a near plane below the frame."""
    cam = scene.cam
    d_min = 0.25 * scene.d_near
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


def _shadow_mask(scene: Scene) -> np.ndarray:
    """uint8 (H, W): 1 where a sun shadow falls on the ground plane (cast by buildings, walls, trees,
    vehicles, persons, poles, street furniture and obstacles). Callers keep it on ground pixels only."""
    sun = scene.wx['sun']
    sx, sd = sun['sx'], sun['sd']
    mask = np.zeros((scene.H, scene.W), dtype=np.uint8)
    corners_x = np.array([0, 1, 1, 0, 0, 1, 1, 0])
    corners_d = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    for X0, X1, d0, d1, Z0, Z1 in scene.all_casters():
        zs = np.where(np.arange(8) < 4, Z0, Z1)
        wx_ = np.where(corners_x == 0, X0, X1) + zs * sx
        wd_ = np.where(corners_d == 0, d0, d1) + zs * sd
        hull = cv2.convexHull(np.stack([wx_, wd_], 1).astype(np.float32))[:, 0, :].astype(np.float64)
        pts = _ground_polygon(scene, hull[:, 0], hull[:, 1])
        if pts is not None and len(pts) >= 3:
            cv2.fillPoly(mask, [pts], 1, LINE)
    return mask


def _pool_map(scene: Scene) -> np.ndarray:
    """float32 (H, W) in [0, 1]: light pools of street lamps and headlights on the ground (soft)."""
    H, W = scene.H, scene.W
    s = 4
    h, w = max(H // s, 2), max(W // s, 2)
    pools: np.ndarray = np.zeros((h, w), dtype=np.float32)
    for o in scene.objects:
        for Xs, ds, strength in o.pools:
            pts = _ground_polygon(scene, np.asarray(Xs, dtype=np.float64), np.asarray(ds, dtype=np.float64))
            if pts is not None and len(pts) >= 3:
                cv2.fillPoly(pools, [(pts // s).astype(np.int32)], float(strength), LINE)
    sigma = max(w / 90.0, 0.8)
    pools = cv2.GaussianBlur(pools, (0, 0), sigma)
    return cv2.resize(pools, (W, H), interpolation=cv2.INTER_LINEAR)


def fog_map(scene: Scene) -> np.ndarray:
    """float32 (H, W) fog alpha from an approximate depth per pixel: ground pixels by row, side
    structures by column (facade planes), objects by their own depth, sky at the far end."""
    cam, H, W = scene.cam, scene.H, scene.W
    fog = scene.wx['fog']
    lab = scene.canvas.lab
    rows = np.arange(H, dtype=np.float64) + 0.5 - cam.y_h
    d_row = np.where(rows > 0, cam.f / np.maximum(rows, 1e-6), scene.d_max)
    a_row = fog_alpha(scene, np.minimum(d_row, scene.d_max)).astype(np.float32)
    cols = np.arange(W, dtype=np.float64) + 0.5 - cam.vx
    facade = np.where(cols < 0, abs(scene.sides[0].facade), abs(scene.sides[1].facade))
    d_col = np.minimum(cam.f * facade / np.maximum(np.abs(cols), 1e-6), scene.d_max)
    a_col = fog_alpha(scene, d_col).astype(np.float32)
    ground = cv2.LUT(lab, _GROUND_LUT).view(bool)
    alpha = np.where(ground, a_row[:, None], a_col[None, :])
    alpha[lab == SKY] = fog['sky']
    code = scene.depth_code
    if code is not None:
        obj = code > 0
        if obj.any():
            lut = np.concatenate([[0.0], np.arange(255) / 254.0]).astype(np.float32)
            alpha[obj] = lut[code[obj]]
    return alpha


def fog_alpha(scene: Scene, d: Any) -> Any:
    """Fog opacity at depth d (scalar or array) for this frame's visibility."""
    fog = scene.wx['fog']
    return 1.0 - np.exp(-3.0 * np.asarray(d, dtype=np.float64) / fog['vis'])


def fog_code(scene: Scene, d: float) -> int:
    """1..255 encodes the fog alpha of an object at depth d (0 = no object)."""
    return 1 + int(round(254.0 * min(float(fog_alpha(scene, max(d, 0.0))), 1.0)))


def rain_layer(scene: Scene) -> np.ndarray:
    """float32 (H, W): anti-aliased rain streaks (additive grey levels)."""
    H, W = scene.H, scene.W
    rain = scene.wx['rain']
    wr = scene.wrng
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


def wet_road(scene: Scene) -> None:
    """Rain: the road mirrors the scene faintly (strongest at grazing angles, near the horizon)."""
    cam, H = scene.cam, scene.H
    img, lab = scene.canvas.img, scene.canvas.lab
    r0 = scene.wx['rain']['reflect']
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
    np.copyto(part, mixed, where=(lab[y0:y1] == ROAD)[..., None])


def bloom(scene: Scene, emissive: np.ndarray) -> np.ndarray:
    """float32 (H, W, 3) bloom around emitting pixels."""
    H, W = scene.H, scene.W
    src = cv2.bitwise_and(scene.canvas.img, scene.canvas.img, mask=emissive.view(np.uint8))
    s = 8
    small = cv2.resize(src, (max(W // s, 2), max(H // s, 2)), interpolation=cv2.INTER_AREA).astype(np.float32)
    # cv2's stubs widen the dtype; the blur keeps float32 (the += below needs that type)
    small = cast(np.ndarray, cv2.GaussianBlur(small, (0, 0), max(W / s / 160.0, 0.8)))
    small += cv2.GaussianBlur(small, (0, 0), max(W / s / 50.0, 1.5))
    return cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR) * float(scene.wx['glow'])


def light_map(scene: Scene) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(gain, emissive): per-pixel light level (None = uniform) and the pixels that emit light."""
    wx, lab = scene.wx, scene.canvas.lab
    light: np.ndarray | None = None
    emissive: np.ndarray | None = None
    sky = None
    if wx['sun'] is not None:
        sun = wx['sun']
        ground = cv2.LUT(lab, _GROUND_LUT).view(bool)
        # vertical surfaces: each side of the street faces the sun more or less
        x = np.arange(scene.W, dtype=np.float32) + 0.5 - np.float32(scene.cam.vx)
        t = np.clip(x / max(scene.W * 0.02, 1.0) * 0.5 + 0.5, 0.0, 1.0)
        col_gain = (sun['left'] * (1 - t) + sun['right'] * t).astype(np.float32)
        light = np.where(ground, np.float32(1.0), col_gain[None, :])
        shadow = _shadow_mask(scene)
        shadow &= ground.view(np.uint8)
        light[shadow.view(bool)] = sun['shade']
        sky = lab == SKY
        light[sky] = 1.0
    if wx['rain'] is not None:
        wet = np.where(lab == ROAD, np.float32(wx['rain']['wet']), np.float32(1.0))
        light = wet if light is None else light * wet
    if scene.lamps_on:
        amb = wx['ambient']
        night = amb + (1.0 - amb) * np.minimum(_pool_map(scene) * wx['pool'], 1.0)
        light = night if light is None else light * night
        code = cv2.LUT(lab, _EMIT_LUT)
        emissive = (scene.emit == code) & (code > 0)
        if sky is None:
            sky = lab == SKY
        light[sky] = 1.0
        light[emissive] = 1.0 / max(float(np.mean(wx['tint'])), 0.5)
    return light, emissive
