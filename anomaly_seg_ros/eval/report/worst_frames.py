"""Worst-frame images for the report: camera image with the ground-truth contour, the ground-truth mask and
the score heatmap, each downscaled to at most ``MAX_IMAGE_WIDTH`` and encoded as a data URI."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ...classes import ANOMALY_ID, ANOMALY_IGNORE
from ...viz import heatmap_overlay
from ..records import WorstFrame
from .values import data_uri

__all__ = ['JPEG_QUALITY', 'MAX_IMAGE_WIDTH', 'WorstFrameImage', 'WorstFrameView', 'worst_frame_views']

log = logging.getLogger(__name__)

#: worst-frame images are downscaled to at most this width (pixels) before embedding.
MAX_IMAGE_WIDTH = 640
JPEG_QUALITY = 85


@dataclass(frozen=True)
class WorstFrameImage:
    uri: str
    alt: str
    caption: str


@dataclass(frozen=True)
class WorstFrameView:
    """One worst frame on the page: its rank, name, why it was picked, and its images or why they are missing."""

    rank: int
    name: str
    why: str
    images: tuple[WorstFrameImage, ...] = ()
    error: str = ''


def _as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.dtype != np.uint8:
        if np.issubdtype(img.dtype, np.floating) and img.size and float(np.nanmax(img)) <= 1.0:
            img = img * 255.0
        img = np.clip(np.nan_to_num(img), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = np.ascontiguousarray(img[:, :, :3])
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'image must be RGB HxWx3, got shape {img.shape}')
    return img


def _target_size(w: int, h: int) -> tuple[int, int]:
    if w <= MAX_IMAGE_WIDTH:
        return w, h
    return MAX_IMAGE_WIDTH, max(1, round(h * MAX_IMAGE_WIDTH / w))


def _encode(rgb: np.ndarray, fmt: str) -> str:
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if fmt == 'jpeg':
        ok, buf = cv2.imencode('.jpg', bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        mime = 'image/jpeg'
    else:
        ok, buf = cv2.imencode('.png', bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        mime = 'image/png'
    if not ok:
        raise ValueError(f'cv2 could not encode a {rgb.shape} image as {fmt}')
    return data_uri(buf.tobytes(), mime)


def worst_images(w: WorstFrame) -> tuple[str, str, str]:
    """(image with GT contour, GT mask, heatmap) as data URIs, each at most MAX_IMAGE_WIDTH wide."""
    rgb = _as_rgb_uint8(w.image)
    gt = np.asarray(w.anomaly_gt)
    score = np.asarray(w.score, dtype=np.float32)
    if gt.shape != rgb.shape[:2] or score.shape != rgb.shape[:2]:
        raise ValueError(f'image {rgb.shape[:2]}, anomaly_gt {gt.shape} and score {score.shape} differ in size')
    h, w_ = gt.shape
    size = _target_size(w_, h)
    small = rgb if size == (w_, h) else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    gt_small = gt if size == (w_, h) else cv2.resize(gt.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)

    # 1. camera image, ignore region greyed and hatched, GT anomaly contour in green
    annotated = small.copy()
    ignore = gt_small == ANOMALY_IGNORE
    if ignore.any():
        yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
        hatch = ((xx + yy) % 10) < 2
        grey = (annotated.astype(np.float32) * 0.55 + 128 * 0.45).astype(np.uint8)
        annotated[ignore] = grey[ignore]
        annotated[ignore & hatch] = (96, 96, 96)
    contours, _ = cv2.findContours(
        (gt_small == ANOMALY_ID).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    thickness = 2 if size[0] >= 320 else 1
    cv2.drawContours(annotated, contours, -1, (0, 255, 0), thickness, lineType=cv2.LINE_AA)

    # 2. GT mask: 0 black, 1 white, 255 grey (anything else magenta: should not happen)
    lut = np.zeros((256, 3), np.uint8)
    lut[:] = (255, 0, 255)
    lut[0] = (0, 0, 0)
    lut[ANOMALY_ID] = (255, 255, 255)
    lut[ANOMALY_IGNORE] = (128, 128, 128)
    mask = lut[gt_small.astype(np.uint8)]

    # 3. heatmap over the full-resolution frame (scores never interpolated), then downscaled
    lo, hi = (float(v) for v in w.score_range)
    if np.isnan(score).any():  # NaN has no colour: show it as the lowest score
        score = np.where(np.isnan(score), np.float32(lo if math.isfinite(lo) else np.nanmin(score)), score)
    heat = cv2.cvtColor(heatmap_overlay(rgb, score, (lo, hi)), cv2.COLOR_BGR2RGB)
    if size != (w_, h):
        heat = cv2.resize(heat, size, interpolation=cv2.INTER_AREA)
    return _encode(annotated, 'jpeg'), _encode(mask, 'png'), _encode(heat, 'jpeg')


def _range_text(w: WorstFrame) -> str:
    try:
        lo, hi = (float(v) for v in w.score_range)
    except (TypeError, ValueError):
        return 'score range ?'
    return f'score range [{lo:g}, {hi:g}]'


def worst_frame_views(worst: Sequence[WorstFrame]) -> list[WorstFrameView]:
    """One view per worst frame; a frame that cannot be drawn says why instead of losing the whole report."""
    views = []
    for rank, w in enumerate(worst, 1):
        try:
            img, mask, heat = worst_images(w)
        except Exception as exc:  # noqa: BLE001 - one bad frame must not lose the whole report
            log.warning('worst frame %r not drawn: %s', w.name, exc)
            views.append(WorstFrameView(rank, w.name, w.why, error=f'Not drawn: {type(exc).__name__}: {exc}'))
            continue
        images = tuple(
            WorstFrameImage(uri, f'{w.name}: {cap}', cap)
            for uri, cap in (
                (img, 'image + ground-truth anomaly contour (green); ignore hatched'),
                (mask, 'ground truth: black in-distribution, white anomaly, grey ignore'),
                (heat, f'anomaly score (TURBO: blue low \u2192 red high), {_range_text(w)}'),
            )
        )
        views.append(WorstFrameView(rank, w.name, w.why, images))
    return views
