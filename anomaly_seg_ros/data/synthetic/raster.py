"""Drawing primitives and the canvas: image, labels and anomaly GT painted with the same polygons.

A primitive is a tuple: ``('poly', pts, color, label|None)``, ``('polys', [pts], color, label|None)``,
``('ellipse', (cx, cy), (ax, ay), angle, color, label|None)``, ``('circle', (cx, cy), r, color, label, thickness)``,
``('line', p0, p1, color, label, thickness)`` or ``('patch', x0, y0, rgb, mask)`` (an obstacle: labels 255,
anomaly 1). A label of None paints the image only. Every call uses ``cv2.LINE_8`` (no anti-aliasing), so labels
align with pixels exactly.
"""

from __future__ import annotations

import cv2
import numpy as np

from anomaly_seg_ros.classes import ANOMALY_ID, ANOMALY_IGNORE, IGNORE_ID

from .colors import Color
from .labels import SKY

__all__ = ['LINE', 'Box', 'Canvas', 'boxes_overlap', 'prim_bbox', 'raster']

LINE = cv2.LINE_8

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


def prim_bbox(prims: list[tuple]) -> Box:
    """Pixel bounding box of primitives (x0 > x1 when there are none)."""
    xs0, ys0, xs1, ys1 = [], [], [], []
    for p in prims:
        kind = p[0]
        if kind == 'poly':
            pts = p[1]
            xs0.append(pts[:, 0].min())
            ys0.append(pts[:, 1].min())
            xs1.append(pts[:, 0].max())
            ys1.append(pts[:, 1].max())
        elif kind == 'ellipse':
            (cx, cy), (ax, ay) = p[1], p[2]
            r = max(ax, ay)
            xs0.append(cx - r)
            ys0.append(cy - r)
            xs1.append(cx + r)
            ys1.append(cy + r)
        elif kind == 'circle':
            (cx, cy), r, t = p[1], p[2], max(p[5], 0)
            xs0.append(cx - r - t)
            ys0.append(cy - r - t)
            xs1.append(cx + r + t)
            ys1.append(cy + r + t)
        elif kind == 'line':
            (ax, ay), (bx, by), t = p[1], p[2], p[5]
            xs0.append(min(ax, bx) - t)
            ys0.append(min(ay, by) - t)
            xs1.append(max(ax, bx) + t)
            ys1.append(max(ay, by) + t)
        elif kind == 'patch':
            x0, y0, mask = p[1], p[2], p[4]
            xs0.append(x0)
            ys0.append(y0)
            xs1.append(x0 + mask.shape[1])
            ys1.append(y0 + mask.shape[0])
    if not xs0:
        return (0.0, 0.0, -1.0, -1.0)
    return (float(min(xs0)), float(min(ys0)), float(max(xs1)), float(max(ys1)))


def boxes_overlap(a: Box, b: Box, margin: float) -> bool:
    """Whether two pixel boxes come within ``margin`` of each other."""
    return not (a[2] + margin < b[0] or b[2] + margin < a[0] or a[3] + margin < b[1] or b[3] + margin < a[1])


def raster(buf: np.ndarray, prims: list[tuple], value: int, labelled_only: bool = True) -> None:
    """Draw the shapes of ``prims`` into a single-channel buffer with one value (colours ignored)."""
    v = int(value)
    for p in prims:
        kind = p[0]
        if kind == 'poly':
            if p[3] is not None or not labelled_only:
                cv2.fillPoly(buf, [p[1]], v, LINE)
        elif kind == 'polys':
            if p[1] and (p[3] is not None or not labelled_only):
                cv2.fillPoly(buf, p[1], v, LINE)
        elif kind == 'ellipse':
            if p[5] is not None or not labelled_only:
                center = (int(round(p[1][0])), int(round(p[1][1])))
                axes = (max(int(round(p[2][0])), 1), max(int(round(p[2][1])), 1))
                cv2.ellipse(buf, center, axes, p[3], 0, 360, v, -1, LINE)
        elif kind == 'circle':
            if p[4] is not None or not labelled_only:
                center = (int(round(p[1][0])), int(round(p[1][1])))
                cv2.circle(buf, center, max(int(round(p[2])), 1), v, p[5], LINE)
        elif kind == 'line':
            if p[4] is not None or not labelled_only:
                a = (int(round(p[1][0])), int(round(p[1][1])))
                b = (int(round(p[2][0])), int(round(p[2][1])))
                cv2.line(buf, a, b, v, max(int(round(p[5])), 1), LINE)
        elif kind == 'patch':
            x0, y0, mask = p[1], p[2], p[4]
            H, W = buf.shape[:2]
            h, w = mask.shape
            ax0, ay0, ax1, ay1 = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
            if ax0 < ax1 and ay0 < ay1:
                buf[ay0:ay1, ax0:ax1][mask[ay0 - y0 : ay1 - y0, ax0 - x0 : ax1 - x0]] = v


class Canvas:
    """Image, labels and anomaly GT. A void label (255) also marks the anomaly GT 255 (ignore); obstacle
    patches mark labels 255 and anomaly 1. Nearer labelled objects that hide part of an obstacle leave
    its anomaly 1 underneath; ``render`` clears anomaly 1 wherever the final label is not 255."""

    def __init__(self, height: int, width: int) -> None:
        self.img = np.zeros((height, width, 3), dtype=np.uint8)
        self.lab = np.full((height, width), SKY, dtype=np.uint8)
        self.anom = np.zeros((height, width), dtype=np.uint8)

    def poly(self, pts: np.ndarray, color: Color, label: int | None) -> None:
        """Fill one polygon in the image (and the labels, when labelled)."""
        cv2.fillPoly(self.img, [pts], color, LINE)
        if label is not None:
            cv2.fillPoly(self.lab, [pts], int(label), LINE)
            if label == IGNORE_ID:
                cv2.fillPoly(self.anom, [pts], ANOMALY_IGNORE, LINE)

    def polys(self, pts: list[np.ndarray], color: Color, label: int | None) -> None:
        """Fill several polygons with one colour and label."""
        if not pts:
            return
        cv2.fillPoly(self.img, pts, color, LINE)
        if label is not None:
            cv2.fillPoly(self.lab, pts, int(label), LINE)
            if label == IGNORE_ID:
                cv2.fillPoly(self.anom, pts, ANOMALY_IGNORE, LINE)

    def draw(self, prims: list[tuple]) -> None:
        """Draw primitives in order."""
        for p in prims:
            kind = p[0]
            if kind == 'poly':
                self.poly(p[1], p[2], p[3])
            elif kind == 'polys':
                self.polys(p[1], p[2], p[3])
            elif kind == 'ellipse':
                center = (int(round(p[1][0])), int(round(p[1][1])))
                axes = (max(int(round(p[2][0])), 1), max(int(round(p[2][1])), 1))
                cv2.ellipse(self.img, center, axes, p[3], 0, 360, p[4], -1, LINE)
                if p[5] is not None:
                    cv2.ellipse(self.lab, center, axes, p[3], 0, 360, int(p[5]), -1, LINE)
                    if p[5] == IGNORE_ID:
                        cv2.ellipse(self.anom, center, axes, p[3], 0, 360, ANOMALY_IGNORE, -1, LINE)
            elif kind == 'circle':
                center = (int(round(p[1][0])), int(round(p[1][1])))
                r = max(int(round(p[2])), 1)
                cv2.circle(self.img, center, r, p[3], p[5], LINE)
                if p[4] is not None:
                    cv2.circle(self.lab, center, r, int(p[4]), p[5], LINE)
                    if p[4] == IGNORE_ID:
                        cv2.circle(self.anom, center, r, ANOMALY_IGNORE, p[5], LINE)
            elif kind == 'line':
                a = (int(round(p[1][0])), int(round(p[1][1])))
                b = (int(round(p[2][0])), int(round(p[2][1])))
                t = max(int(round(p[5])), 1)
                cv2.line(self.img, a, b, p[3], t, LINE)
                if p[4] is not None:
                    cv2.line(self.lab, a, b, int(p[4]), t, LINE)
                    if p[4] == IGNORE_ID:
                        cv2.line(self.anom, a, b, ANOMALY_IGNORE, t, LINE)
            elif kind == 'patch':
                self._patch(p[1], p[2], p[3], p[4])
            else:  # pragma: no cover - programming error
                raise AssertionError(kind)

    def _patch(self, x0: int, y0: int, rgb: np.ndarray, mask: np.ndarray) -> None:
        H, W = self.lab.shape
        h, w = mask.shape
        ax0, ay0, ax1, ay1 = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
        if ax0 >= ax1 or ay0 >= ay1:
            return
        m = mask[ay0 - y0 : ay1 - y0, ax0 - x0 : ax1 - x0]
        self.img[ay0:ay1, ax0:ax1][m] = rgb[ay0 - y0 : ay1 - y0, ax0 - x0 : ax1 - x0][m]
        self.lab[ay0:ay1, ax0:ax1][m] = IGNORE_ID
        self.anom[ay0:ay1, ax0:ax1][m] = ANOMALY_ID
