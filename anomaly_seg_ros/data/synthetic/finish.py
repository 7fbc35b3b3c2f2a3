"""The image finish: weather and lighting applied to the painted frame, per-class texture noise at three scales,
colour cast, exposure and a mild blur (image only; labels are final before it runs)."""

from __future__ import annotations

import functools

import cv2
import numpy as np

from anomaly_seg_ros.classes import IGNORE_ID

from .labels import (
    BICYCLE,
    BUILDING,
    BUS,
    CAR,
    FENCE,
    LIGHT,
    MOTORCYCLE,
    PERSON,
    POLE,
    RIDER,
    ROAD,
    SIDEWALK,
    SIGN,
    SKY,
    TERRAIN,
    TRAIN,
    TRUCK,
    VEGETATION,
    WALL,
)
from .lighting import bloom, fog_map, light_map, rain_layer, wet_road
from .scene import Scene

__all__ = ['finish']

# Per-class texture amplitudes (coarse blotches, mid-scale texture, fine grain), in grey levels.
_TEXTURE = {
    ROAD: (10, 5, 9),
    SIDEWALK: (8, 5, 7),
    BUILDING: (10, 6, 5),
    WALL: (10, 6, 7),
    FENCE: (4, 3, 4),
    POLE: (4, 2, 3),
    LIGHT: (2, 2, 3),
    SIGN: (2, 2, 3),
    VEGETATION: (18, 22, 20),
    TERRAIN: (16, 10, 12),
    SKY: (12, 3, 2),
    PERSON: (4, 4, 4),
    RIDER: (4, 4, 4),
    CAR: (4, 2, 3),
    TRUCK: (6, 3, 3),
    BUS: (5, 3, 3),
    TRAIN: (5, 3, 3),
    MOTORCYCLE: (4, 3, 3),
    BICYCLE: (3, 3, 3),
    IGNORE_ID: (6, 5, 6),
}


@functools.lru_cache(maxsize=8)
def _fine_noise_table(height: int, width: int) -> np.ndarray:
    """A fixed (2H, 2W) table of fine grain noise in [-1, 1); frames crop it at a random offset."""
    rng = np.random.default_rng(0x5EED_CAFE)
    table = rng.random((2 * height, 2 * width), dtype=np.float32) * 2.0 - 1.0
    table.setflags(write=False)
    return table


def finish(scene: Scene) -> np.ndarray:
    """Image-only appearance: weather and lighting, per-class texture noise at three scales, colour
    cast, exposure, blur."""
    H, W = scene.H, scene.W
    rng = scene.finish_rng
    wx = scene.wx
    lab = scene.canvas.lab
    lut = np.zeros((3, 256), dtype=np.float32)
    for cls, amps in _TEXTURE.items():
        lut[:, cls] = amps
    lut *= rng.uniform(0.6, 1.4, size=(3, 1)).astype(np.float32)
    coarse = cv2.resize(
        rng.standard_normal((max(H // 32, 2), max(W // 32, 2))).astype(np.float32),
        (W, H),
        interpolation=cv2.INTER_LINEAR,
    )
    mid = cv2.resize(
        rng.standard_normal((max(H // 6, 2), max(W // 6, 2))).astype(np.float32),
        (W, H),
        interpolation=cv2.INTER_LINEAR,
    )
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
    bias = (float(rng.uniform(-25, 25)) + 128.0 * (1 - contrast)) * wx['bias_k']
    blur = rng.random() < 0.75
    sigma = float(rng.uniform(0.4, 1.0)) * max(min(H / 512.0, 2.0), 0.5)
    # weather (pixels only): wet road, light (sun and shadows, night lamps), fog, rain, glow
    if wx['rain'] is not None:
        wet_road(scene)
        noise += rain_layer(scene)
    light, emissive = light_map(scene)
    ambient = 1.0 if scene.lamps_on else wx['ambient']  # at night the light map carries the ambient level
    gain = gain * np.asarray(wx['tint']) * ambient
    fog_alpha = fog_col = None
    if wx['fog'] is not None:
        fog_alpha = fog_map(scene)
        fog_col = np.asarray(wx['fog']['color'], dtype=np.float32) / max(ambient, 1e-3)
        keep = 1.0 - fog_alpha
        light = keep if light is None else light * keep
    glow = bloom(scene, emissive) if emissive is not None and emissive.any() else None
    img = scene.canvas.img
    channels = []
    for k in range(3):
        ch = img[:, :, k].astype(np.float32)
        ch += noise
        ch += cast[:, k : k + 1]
        if light is not None:
            ch *= light
        if fog_alpha is not None:
            ch += fog_alpha * float(fog_col[k])  # type: ignore[index]
        ch *= float(gain[k])
        ch += bias
        if glow is not None:
            ch += glow[:, :, k]
        channels.append(ch)
    out = cv2.merge(channels)
    np.clip(out, 0, 255, out=out)
    out = out.astype(np.uint8)
    if blur:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    return out
