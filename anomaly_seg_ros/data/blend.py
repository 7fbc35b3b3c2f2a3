"""Fishyscapes-style blending: paste RGBA objects into any set of images to build an anomaly validation set.

Implements the overlay procedure of FS Static / FS Web (Blum et al., "The Fishyscapes Benchmark:
Measuring Blind Spots in Semantic Segmentation", sec. 3.1, file ``fishyscapes-benchmark.txt``), so a user
can turn their own drive logs into a labelled anomaly set. Per pasted object, in the paper's order:

1. random placement and size (FS Static: "We randomly size and position the objects"); here adapted to
   road scenes: the object stands below a horizon row and its size follows the ground-plane perspective
   (lower in the image = closer = larger). Objects are never cut by the image border ("Objects cropped
   by the image borders ... are filtered out").
2. "in case the image does not already have a smooth alpha channel, smooth the mask of the objects
   around the borders for a small transparency gradient" (Gaussian, ``smooth_alpha`` px).
3. "adapt the brightness of the object towards the mean brightness of the overlaid pixels" (Lab L
   channel scaled towards the alpha-weighted background mean).
4. "apply the inverse color histogram of the ... image to shift the color distribution towards the
   one found on the underlying image" (partial per-channel mean/std matching in Lab, weight 0.5).
5. "radial motion blur" (a line kernel pointing away from the image centre, longer towards the border
   and for closer objects).
6. "depth blur based on the position in the image" (Gaussian, stronger for small = far objects).
7. "color noise" (per-pixel Gaussian noise of std ``color_noise`` on the object).
8. "glow effects to simulate overexposure" (a blurred, brightened halo added around the object, with
   probability ``glow_prob``).

In-distribution objects (the paper's blended Cityscapes objects, "so that methods do not overfit to any
artifacts created by the blending process") are pasted with the same steps but labelled 0. The paper
skips placement and histogram adaptation for them because they come from the very dataset they are
pasted into, at their original location; user-supplied objects have neither, so here they go through
every step, which keeps the blending artefacts identical for both kinds.

Ground truth uses the Fishyscapes encoding: 1 where an anomalous object's alpha > 0.5, 0 in-distribution
(in-distribution objects included), 255 on the soft border band 0 < alpha <= 0.5. All randomness comes
from the ``np.random.Generator`` passed in (``blend_folder.blend_folder`` seeds one per image from ``config.seed``
and the image index), so output is byte-identical for a seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from anomaly_seg_ros.checks import image_problem, is_int, is_number
from anomaly_seg_ros.classes import ANOMALY_ID, ANOMALY_IGNORE, ANOMALY_IN_DIST, IGNORE_ID
from anomaly_seg_ros.data.sample import Sample
from anomaly_seg_ros.defaults import (
    BLEND_COLOR_NOISE,
    BLEND_GLOW_PROB,
    BLEND_HORIZON,
    BLEND_IN_DISTRIBUTION_PROB,
    BLEND_OBJECTS_PER_IMAGE,
    BLEND_SCALE_RANGE,
    BLEND_SEED,
)
from anomaly_seg_ros.errors import ConfigError, DatasetError

__all__ = [
    'BlendConfig',
    'BlendConfigError',
    'blend_object',
    'blend_sample',
    'blend_sample_records',
    'load_object_files',
    'load_objects',
]

PAPER = 'Blum et al., The Fishyscapes Benchmark, sec. 3.1 (FS Static / FS Web blending)'

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg')
OBJECT_SUFFIXES = ('.png',)
NAME_SUFFIX = '_blend'

_MAX_OBJECT_SIDE = 1024  # larger objects are downscaled once at load time (pasted heights are far smaller)
_ALPHA_BBOX_MIN = 8  # objects are cropped to the bbox of alpha >= this (drops faint stray halo pixels)
_ALPHA_EPS = 1.0 / 255.0  # alpha below this changes no 8-bit pixel value: set to exactly 0
_MIN_HEIGHT_PX = 4
_BRIGHTNESS_WEIGHT = 0.5  # step 3: how far the object's mean brightness moves towards the background's
_BRIGHTNESS_CLAMP = (0.25, 4.0)
_HISTOGRAM_WEIGHT = 0.5  # step 4: partial mean/std matching towards the image's Lab statistics
_STD_RATIO_CLAMP = (0.5, 2.0)
_MOTION_MAX = 0.12  # step 5: blur length at the image corner, as a fraction of the object height
_DEPTH_SIGMA = (0.3, 1.3)  # step 6: Gaussian sigma (px) for the nearest / farthest object
_GLOW_STRENGTH = (0.1, 0.3)  # step 8
_GLOW_SIGMA = 0.12  # glow radius as a fraction of the object height
_HEIGHT_JITTER = (0.85, 1.15)
_MAX_WIDTH_FRACTION = 0.9


class BlendConfigError(ConfigError, ValueError):
    """A ``BlendConfig`` field has a bad value; the field name is in the text."""


@dataclass(frozen=True)
class BlendConfig:
    """How objects are pasted (Fishyscapes sec. 3.1 steps; see the module docstring).

    objects_per_image:    inclusive (min, max) number of objects per image; 0 <= min <= max, max >= 1.
    scale_range:          (min, max) object height as a fraction of the image height, 0 < min <= max <= 1;
                          an object just below the horizon gets about min, one at the bottom edge about
                          max (ground-plane perspective), with +-15 % jitter kept inside the range.
    horizon:              horizon row as a fraction of the image height, in [0, 1); objects lie below it.
    in_distribution_prob: chance that a pasted object comes from the in-distribution set (label 0), [0, 1].
    glow_prob:            chance of a glow (overexposure) halo per object, [0, 1].
    motion_blur:          radial motion blur, stronger towards the image border.
    depth_blur:           Gaussian blur, stronger for small (far) objects.
    color_noise:          std of the per-pixel colour noise on the object (fraction of 255), in [0, 1].
    smooth_alpha:         sigma (px) of the Gaussian smoothing of hard alpha edges, >= 0 (0 = off).
    seed:                 int >= 0; ``blend_folder`` output is byte-identical for a seed.
    """

    objects_per_image: tuple[int, int] = BLEND_OBJECTS_PER_IMAGE
    scale_range: tuple[float, float] = BLEND_SCALE_RANGE
    horizon: float = BLEND_HORIZON
    in_distribution_prob: float = BLEND_IN_DISTRIBUTION_PROB
    glow_prob: float = BLEND_GLOW_PROB
    motion_blur: bool = True
    depth_blur: bool = True
    color_noise: float = BLEND_COLOR_NOISE
    smooth_alpha: float = 1.5
    seed: int = BLEND_SEED

    def __post_init__(self) -> None:
        def fail(name: str, what: str) -> None:
            raise BlendConfigError(f'BlendConfig.{name} must be {what}, got {getattr(self, name)!r}')

        n = self.objects_per_image
        if not isinstance(n, (tuple, list)) or len(n) != 2 or not all(is_int(v) for v in n):
            fail('objects_per_image', 'a pair of ints (min, max)')
        if not 0 <= n[0] <= n[1] or n[1] < 1:
            fail('objects_per_image', 'a pair (min, max) with 0 <= min <= max and max >= 1')
        object.__setattr__(self, 'objects_per_image', (int(n[0]), int(n[1])))

        s = self.scale_range
        if not isinstance(s, (tuple, list)) or len(s) != 2 or not all(is_number(v) for v in s):
            fail('scale_range', 'a pair of numbers (min, max)')
        if not 0.0 < s[0] <= s[1] <= 1.0:
            fail('scale_range', 'a pair (min, max) with 0 < min <= max <= 1')
        object.__setattr__(self, 'scale_range', (float(s[0]), float(s[1])))

        if not is_number(self.horizon) or not 0.0 <= self.horizon < 1.0:
            fail('horizon', 'a number in [0, 1)')
        for name in ('in_distribution_prob', 'glow_prob'):
            v = getattr(self, name)
            if not is_number(v) or not 0.0 <= v <= 1.0:
                fail(name, 'a probability in [0, 1]')
        for name in ('motion_blur', 'depth_blur'):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                fail(name, 'a bool')
        if not is_number(self.color_noise) or not 0.0 <= self.color_noise <= 1.0:
            fail('color_noise', 'a number in [0, 1]')
        if not is_number(self.smooth_alpha) or not 0.0 <= self.smooth_alpha <= 50.0:
            fail('smooth_alpha', 'a number in [0, 50]')
        if not is_int(self.seed) or self.seed < 0:
            fail('seed', 'an int >= 0')


# ---------------------------------------------------------------------------------------------------
# loading


def _premultiplied(rgba: np.ndarray) -> np.ndarray:
    """uint8 straight RGBA -> float32 premultiplied RGBA in [0, 1]."""
    f = rgba.astype(np.float32) * np.float32(1.0 / 255.0)
    f[..., :3] *= f[..., 3:4]
    return f


def _resize_rgba(rgba: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize straight uint8 RGBA in premultiplied space (no colour fringes from transparent pixels).

    Returns (colour HxWx3 float32 [0, 1], straight; alpha HxW float32 [0, 1]).
    """
    p = _premultiplied(rgba)
    shrink = width < rgba.shape[1] or height < rgba.shape[0]
    p = cv2.resize(p, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    alpha = np.clip(p[..., 3], 0.0, 1.0)
    color = p[..., :3] / np.maximum(alpha, 1e-6)[..., None]
    color[alpha < 1e-6] = 0.0
    return np.clip(color, 0.0, 1.0), alpha


def _read_object(path: Path) -> np.ndarray:
    raw: np.ndarray | None = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise DatasetError(f'cannot read object image {path}')
    if raw.ndim != 3 or raw.shape[2] != 4:
        channels = 1 if raw.ndim == 2 else raw.shape[2]
        raise DatasetError(f'object image {path} has no alpha channel ({channels} channel(s)); need RGBA PNG')
    if raw.dtype == np.uint16:
        raw = (raw >> 8).astype(np.uint8)
    elif raw.dtype != np.uint8:
        raise DatasetError(f'object image {path} has unsupported dtype {raw.dtype}; need 8 or 16 bit RGBA')
    rgba = cv2.cvtColor(raw, cv2.COLOR_BGRA2RGBA)
    ys, xs = np.nonzero(rgba[..., 3] >= _ALPHA_BBOX_MIN)
    if ys.size == 0:
        raise DatasetError(f'object image {path} is fully transparent')
    rgba = np.ascontiguousarray(rgba[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])
    side = max(rgba.shape[:2])
    if side > _MAX_OBJECT_SIDE:
        k = _MAX_OBJECT_SIDE / side
        w, h = max(1, round(rgba.shape[1] * k)), max(1, round(rgba.shape[0] * k))
        color, alpha = _resize_rgba(rgba, w, h)
        rgba = np.dstack([color * 255.0 + 0.5, alpha[..., None] * 255.0 + 0.5]).astype(np.uint8)
    return rgba


def load_object_files(folder: str | Path) -> tuple[list[str], list[np.ndarray]]:
    """The file names and RGBA arrays of every object in a folder (names go into blend.json)."""
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f'objects folder {root} does not exist or is not a folder')
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in OBJECT_SUFFIXES)
    if not files:
        others = sum(1 for p in root.iterdir() if p.is_file())
        raise DatasetError(
            f'objects folder {root} holds no RGBA {"/".join(OBJECT_SUFFIXES)} files ({others} other file(s))'
        )
    return [p.name for p in files], [_read_object(p) for p in files]


def load_objects(folder: str | Path) -> list[np.ndarray]:
    """All ``*.png`` objects of a folder (sorted by name) as RGBA uint8 arrays, cropped to their alpha bbox.

    Read with ``cv2.IMREAD_UNCHANGED`` and converted BGRA -> RGBA; 16-bit files are reduced to 8 bit and
    objects with a side over 1024 px are downscaled. Raises ``DatasetError`` naming the file for a file
    without alpha channel, an unreadable or fully transparent file, and for a missing or empty folder.
    """
    return load_object_files(folder)[1]


# ---------------------------------------------------------------------------------------------------
# one object


def _weighted_stats(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel weighted mean and std of HxWxC ``values`` with HxW ``weights``."""
    w = weights.reshape(-1)
    v = values.reshape(-1, values.shape[-1]).astype(np.float64)
    total = max(float(w.sum()), 1e-9)
    mean = (w @ v) / total
    var = (w @ (v - mean) ** 2) / total
    return mean, np.sqrt(np.maximum(var, 0.0))


def _image_lab_stats(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lab mean/std of the whole image (every 4th pixel is plenty for two moments)."""
    small = np.ascontiguousarray(image[::4, ::4]).astype(np.float32) * np.float32(1.0 / 255.0)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2Lab).reshape(-1, 3).astype(np.float64)
    return lab.mean(axis=0), lab.std(axis=0)


def _adapt_colors(
    color: np.ndarray, alpha: np.ndarray, background: np.ndarray, image_stats: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """Steps 3 and 4 of the paper's FS Web list: brightness towards the overlaid pixels, then colour
    distribution partially towards the image's (mean/std per Lab channel)."""
    lab: np.ndarray = cv2.cvtColor(color, cv2.COLOR_RGB2Lab)
    obj_mean, _ = _weighted_stats(lab, alpha)
    bg_lab = cv2.cvtColor(background, cv2.COLOR_RGB2Lab)
    bg_mean, _ = _weighted_stats(bg_lab, alpha)

    # 3. brightness: scale L so its mean moves towards the background's mean under the object.
    target = obj_mean[0] + _BRIGHTNESS_WEIGHT * (bg_mean[0] - obj_mean[0])
    factor = float(np.clip(target / max(obj_mean[0], 1e-3), *_BRIGHTNESS_CLAMP))
    lab[..., 0] *= np.float32(factor)

    # 4. histogram: partial mean/std matching of a, b; contrast (std only) of L, keeping step 3's mean.
    mean, std = _weighted_stats(lab, alpha)
    img_mean, img_std = image_stats
    w = _HISTOGRAM_WEIGHT
    for c in range(3):
        ratio = img_std[c] / std[c] if std[c] > 1e-3 else 1.0
        gain = float(np.clip(1.0 + w * (ratio - 1.0), *_STD_RATIO_CLAMP))
        new_mean = mean[c] if c == 0 else mean[c] + w * (img_mean[c] - mean[c])
        lab[..., c] = (lab[..., c] - np.float32(mean[c])) * np.float32(gain) + np.float32(new_mean)
    np.clip(lab[..., 0], 0.0, 100.0, out=lab[..., 0])
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), 0.0, 1.0)


def _is_hard_edge(alpha: np.ndarray, sigma: float) -> bool:
    """True when the alpha edge is narrower than a Gaussian edge of ``sigma`` would be (paper step 2:
    smooth only "in case the image does not already have a smooth alpha channel")."""
    core = (alpha >= 0.5).astype(np.uint8)
    perimeter = int(np.count_nonzero(core)) - int(np.count_nonzero(cv2.erode(core, np.ones((3, 3), np.uint8))))
    soft = int(np.count_nonzero((alpha > 0.02) & (alpha < 0.98)))
    return soft < 2.0 * sigma * max(perimeter, 1)


def _motion_kernel(length: float, dx: float, dy: float) -> np.ndarray:
    """Normalised line kernel of ``length`` px along the unit direction (dx, dy)."""
    half = int(math.ceil(length / 2.0))
    size = 2 * half + 1
    kernel = np.zeros((size, size), np.float32)
    shift = 4  # sub-pixel end points (1/16 px)
    s = 1 << shift
    p0 = (round((half - dx * length / 2.0) * s), round((half - dy * length / 2.0) * s))
    p1 = (round((half + dx * length / 2.0) * s), round((half + dy * length / 2.0) * s))
    cv2.line(kernel, p0, p1, 1.0, 1, cv2.LINE_AA, shift)
    total = float(kernel.sum())
    if total <= 0.0:
        kernel[half, half] = 1.0
        return kernel
    return kernel / np.float32(total)


def _check_image(image: np.ndarray, what: str) -> None:
    problem = image_problem(image)
    if problem is not None:
        raise DatasetError(f'{what}: {problem}')


def blend_object(
    image: np.ndarray,
    obj_rgba: np.ndarray,
    x: float,
    y: float,
    height_px: float,
    config: BlendConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Paste one RGBA object into ``image`` with the Fishyscapes FS Web steps 2-8 (paper sec. 3.1).

    ``(x, y)`` is the object's bottom-centre (where it touches the ground) in pixels, ``height_px`` its
    height. The object keeps its aspect ratio; parts outside the image are dropped. ``image`` is not
    modified. Returns (new HxWx3 uint8 RGB image, HxW float32 soft alpha in [0, 1], exactly 0 where no
    8-bit pixel value can have changed through the object; glow may brighten pixels around the object
    but is not part of the alpha).
    """
    _check_image(image, 'blend_object')
    if (
        not isinstance(obj_rgba, np.ndarray)
        or obj_rgba.dtype != np.uint8
        or obj_rgba.ndim != 3
        or obj_rgba.shape[2] != 4
    ):
        raise DatasetError('blend_object: obj_rgba must be HxWx4 uint8 RGBA')
    H, W = image.shape[:2]
    oh, ow = obj_rgba.shape[:2]
    h = max(_MIN_HEIGHT_PX, int(round(height_px)))
    w = max(1, int(round(h * ow / oh)))

    # Random draws first, in a fixed order (determinism does not depend on crop sizes).
    motion_rand = rng.uniform(0.5, 1.0)
    depth_rand = rng.uniform(0.8, 1.2)
    glow = rng.random() < config.glow_prob
    glow_strength = rng.uniform(*_GLOW_STRENGTH)

    # 5. radial motion blur: along the ray from the image centre, longer away from it and for closer
    # (taller) objects, since image-plane flow under ego motion grows with both.
    cx, cy = x, y - h / 2.0
    vx, vy = cx - W / 2.0, cy - H / 2.0
    r = math.hypot(vx, vy)
    r_norm = r / (0.5 * math.hypot(W, H))
    motion_len = _MOTION_MAX * h * r_norm * motion_rand if config.motion_blur else 0.0
    if motion_len < 1.5:
        motion_len = 0.0
    # 6. depth blur: far (small) objects blurrier.
    lo, hi = config.scale_range
    far = float(np.clip((hi - h / H) / (hi - lo), 0.0, 1.0)) if hi > lo else 0.5
    depth_sigma = (_DEPTH_SIGMA[0] + (_DEPTH_SIGMA[1] - _DEPTH_SIGMA[0]) * far) * depth_rand
    depth_sigma = min(depth_sigma, 0.1 * h) if config.depth_blur else 0.0
    if depth_sigma < 0.3:
        depth_sigma = 0.0
    glow_sigma = max(2.0, _GLOW_SIGMA * h) if glow else 0.0
    smooth = float(config.smooth_alpha)

    reach = max(3.0 * (2.0 * smooth + 1.0), motion_len / 2.0 + 1.0, 3.0 * depth_sigma, 3.0 * glow_sigma)
    pad = int(math.ceil(reach)) + 2
    ox0, oy0 = int(round(x - w / 2.0)), int(round(y)) - h
    ox1, oy1 = ox0 + w, oy0 + h
    x0, y0 = max(0, ox0 - pad), max(0, oy0 - pad)
    x1, y1 = min(W, ox1 + pad), min(H, oy1 + pad)
    out = image.copy()
    full_alpha = np.zeros((H, W), np.float32)
    ix0, iy0, ix1, iy1 = max(ox0, 0), max(oy0, 0), min(ox1, W), min(oy1, H)
    if ix0 >= ix1 or iy0 >= iy1:
        return out, full_alpha

    color_obj, alpha_obj = _resize_rgba(obj_rgba, w, h)
    ch, cw = y1 - y0, x1 - x0
    color = np.zeros((ch, cw, 3), np.float32)
    alpha = np.zeros((ch, cw), np.float32)
    src = (slice(iy0 - oy0, iy1 - oy0), slice(ix0 - ox0, ix1 - ox0))
    dst = (slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0))
    color[dst] = color_obj[src]
    alpha[dst] = alpha_obj[src]

    # 2. smooth a hard alpha edge; extend the colour outwards first (normalised convolution) so the
    # newly semi-transparent rim takes the object's edge colour, not black.
    if smooth > 0.0 and _is_hard_edge(alpha, smooth):
        ext = 2.0 * smooth + 1.0
        num = cv2.GaussianBlur(color * alpha[..., None], (0, 0), ext)
        den = cv2.GaussianBlur(alpha, (0, 0), ext)
        fill = num / np.maximum(den, 1e-6)[..., None]
        empty = alpha < 1e-3
        color[empty] = fill[empty]
        alpha = cv2.GaussianBlur(alpha, (0, 0), smooth)

    # 3. + 4. brightness and colour distribution.
    background = image[y0:y1, x0:x1].astype(np.float32) * np.float32(1.0 / 255.0)
    color = _adapt_colors(color, alpha, background, _image_lab_stats(image))

    # 5. + 6. blurs act on premultiplied RGBA so colour and coverage spread together.
    rgba = np.dstack([color * alpha[..., None], alpha])
    if motion_len > 0.0:
        kernel = _motion_kernel(motion_len, vx / max(r, 1e-6), vy / max(r, 1e-6))
        rgba = cv2.filter2D(rgba, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    if depth_sigma > 0.0:
        rgba = cv2.GaussianBlur(rgba, (0, 0), depth_sigma, borderType=cv2.BORDER_CONSTANT)
    alpha = np.clip(rgba[..., 3], 0.0, 1.0)
    premul = rgba[..., :3]
    faint = alpha < _ALPHA_EPS
    alpha[faint] = 0.0
    premul[faint] = 0.0

    # 7. colour noise on the object (weighted by its coverage).
    if config.color_noise > 0.0:
        noise = rng.standard_normal((ch, cw, 3), dtype=np.float32) * np.float32(config.color_noise)
        premul += noise * alpha[..., None]

    # Alpha composite (premultiplied "over").
    result = premul + background * (1.0 - alpha)[..., None]

    # 8. glow: a blurred, brightened halo added around (and on) the object, as from overexposure.
    if glow:
        halo = cv2.GaussianBlur(alpha, (0, 0), glow_sigma, borderType=cv2.BORDER_CONSTANT)
        mean_color, _ = _weighted_stats(color, alpha)
        glow_color = (0.5 * mean_color + 0.5).astype(np.float32)
        result += np.float32(glow_strength) * halo[..., None] * glow_color

    out[y0:y1, x0:x1] = np.clip(result * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)
    full_alpha[y0:y1, x0:x1] = alpha
    return out, full_alpha


# ---------------------------------------------------------------------------------------------------
# one sample


def _place(
    obj_shape: tuple[int, ...], H: int, W: int, config: BlendConfig, rng: np.random.Generator
) -> tuple[float, float, float]:
    """Step 1: (x, y, height) with the object fully below the horizon and inside the image, its height
    growing linearly with the distance of its ground point below the horizon (pinhole ground plane)."""
    lo, hi = config.scale_range
    y_h = config.horizon * H
    t = rng.random()  # 0 = at the horizon (far), 1 = at the bottom edge (near)
    frac = float(np.clip((lo + (hi - lo) * t) * rng.uniform(*_HEIGHT_JITTER), lo, hi))
    height = min(frac * H, H - y_h)
    aspect = obj_shape[1] / obj_shape[0]
    if height * aspect > _MAX_WIDTH_FRACTION * W:
        height = _MAX_WIDTH_FRACTION * W / aspect
    height = max(float(_MIN_HEIGHT_PX), height)
    h = max(_MIN_HEIGHT_PX, int(round(height)))
    width = max(1, int(round(h * aspect)))
    top = math.ceil(y_h) + t * max(0.0, H - math.ceil(y_h) - h)
    bottom = min(float(H), round(top) + h)
    half = width / 2.0
    x = rng.uniform(half, max(half, W - half))
    return x, bottom, float(h)


def blend_sample_records(
    sample: Sample,
    anomalies: Sequence[np.ndarray],
    in_dist: Sequence[np.ndarray],
    config: BlendConfig,
    rng: np.random.Generator,
) -> tuple[Sample, list[dict[str, Any]]]:
    _check_image(sample.image, f'sample {sample.name!r}')
    if not anomalies:
        raise DatasetError(f'sample {sample.name!r}: no anomaly objects to paste')
    H, W = sample.image.shape[:2]
    for field in ('labels', 'anomaly'):
        arr = getattr(sample, field)
        if arr is not None and (not isinstance(arr, np.ndarray) or arr.shape != (H, W)):
            shape = getattr(arr, 'shape', None)
            raise DatasetError(f'sample {sample.name!r}: {field} shape {shape} does not match image {(H, W)}')
    image = sample.image
    anomaly = (
        sample.anomaly.astype(np.uint8, copy=True)
        if sample.anomaly is not None
        else np.full((H, W), ANOMALY_IN_DIST, np.uint8)
    )
    labels = sample.labels.astype(np.uint8, copy=True) if sample.labels is not None else None
    records: list[dict[str, Any]] = []
    lo, hi = config.objects_per_image
    for _ in range(int(rng.integers(lo, hi + 1))):
        is_in_dist = bool(in_dist) and rng.random() < config.in_distribution_prob
        pool = in_dist if is_in_dist else anomalies
        index = int(rng.integers(len(pool)))
        obj = pool[index]
        flip = bool(rng.random() < 0.5)
        if flip:
            obj = obj[:, ::-1]
        x, y, height = _place(obj.shape, H, W, config, rng)
        image, alpha = blend_object(image, obj, x, y, height, config, rng)
        core = alpha > 0.5
        band = (alpha > 0.0) & ~core
        anomaly[core] = ANOMALY_IN_DIST if is_in_dist else ANOMALY_ID
        anomaly[band] = ANOMALY_IGNORE
        if labels is not None:
            labels[alpha > 0.0] = IGNORE_ID
        records.append(
            {
                'kind': 'in_dist' if is_in_dist else 'anomaly',
                'index': index,
                'flip': flip,
                'x': round(x, 2),
                'y': round(y, 2),
                'height': round(height, 2),
                'pixels': int(np.count_nonzero(core)),
            }
        )
    if image is sample.image:
        image = image.copy()
    return Sample(image=image, labels=labels, anomaly=anomaly, name=f'{sample.name}{NAME_SUFFIX}'), records


def blend_sample(
    sample: Sample,
    anomalies: Sequence[np.ndarray],
    in_dist: Sequence[np.ndarray],
    config: BlendConfig,
    rng: np.random.Generator,
) -> Sample:
    """Paste ``config.objects_per_image`` objects into a sample (Fishyscapes sec. 3.1, see module doc).

    Each object is in-distribution (from ``in_dist``, when non-empty) with probability
    ``config.in_distribution_prob``, else anomalous (from ``anomalies``, which must be non-empty).
    Returns a new Sample (name + ``'_blend'``) with the blended image and
    anomaly: 1 where an anomalous object's alpha > 0.5, 0 where an in-distribution object's alpha > 0.5,
             255 on the soft band 0 < alpha <= 0.5; elsewhere the sample's anomaly (0 when it had none,
             existing 255 kept); later objects overwrite earlier ones.
    labels:  the sample's trainIds with 255 under every pasted object (alpha > 0; the class of a pasted
             in-distribution object is unknown); None when the sample had none.
    """
    return blend_sample_records(sample, anomalies, in_dist, config, rng)[0]
