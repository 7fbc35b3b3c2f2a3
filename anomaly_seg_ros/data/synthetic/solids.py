"""Primitive builders for solids in world units: boxes, upright cylinders, wheels, inset polygons."""

from __future__ import annotations

import numpy as np

from .colors import Color, scale_color
from .scene import Scene

__all__ = ['box', 'cylinder', 'inset_polygon', 'wheel']


def inset_polygon(pts: np.ndarray, k: float) -> np.ndarray:
    """The polygon shrunk towards its centroid by the fraction k (windows inside a face)."""
    c = pts.mean(axis=0)
    return np.rint(c + (pts - c) * (1 - k)).astype(np.int32)


def box(
    scene: Scene,
    prims: list[tuple],
    X0: float,
    X1: float,
    d0: float,
    d1: float,
    Z0: float,
    Z1: float,
    col: Color,
    label: int,
    side_wheels: tuple[float, Color, tuple[float, ...]] | None = None,
) -> None:
    """Visible faces of an axis-aligned box, shaded per face, with optional wheels on its side."""
    cam = scene.cam
    for name, pts in cam.box_faces(X0, X1, d0, d1, Z0, Z1):
        prims.append(('poly', pts, scale_color(col, {'side': 0.82, 'top': 1.12, 'front': 1.0}[name]), label))
        if name == 'side' and side_wheels is not None:
            r, tyre, where = side_wheels
            dm = 0.5 * (d0 + d1)
            Xs = X0 if X0 + cam.kappa * dm * dm > 0 else X1
            for t in where:
                wheel(scene, prims, Xs, d0 + (d1 - d0) * t, r, tyre, label)


def wheel(scene: Scene, prims: list[tuple], X: float, d: float, r: float, col: Color, label: int) -> None:
    """A wheel on the vertical plane at lateral X, centred at depth d (an ellipse)."""
    cam = scene.cam
    xa, _ = cam.point(X, d - r)
    xb, _ = cam.point(X, d + r)
    xc, yc = cam.point(X, d, r)
    _, yb = cam.point(X, d, 0.0)
    ay = max((yb - yc), 1.0)
    prims.append(('ellipse', (xc, yc), (max(abs(xa - xb) / 2, 1.0), ay), 0, col, label))


def cylinder(
    scene: Scene,
    prims: list[tuple],
    X: float,
    d: float,
    r: float,
    z0: float,
    z1: float,
    col: Color,
    label: int,
    caps: bool = True,
) -> None:
    """An upright cylinder: body, shaded side, and the visible end cap."""
    cam = scene.cam
    g = cam.g(d)
    x, yb = cam.point(X, d, z0)
    _, yt = cam.point(X, d, z1)
    rx = max(r * g, 1.0)
    ry_b = max(r * g * abs(1.0 - z0) / max(d, 1e-3), 0.5)
    ry_t = max(r * g * abs(1.0 - z1) / max(d, 1e-3), 0.5)
    if caps:
        prims.append(('ellipse', (x, yb), (rx, ry_b), 0, scale_color(col, 0.85), label))
    body = np.array([[x - rx, yt], [x + rx, yt], [x + rx, yb], [x - rx, yb]])
    prims.append(('poly', np.rint(body).astype(np.int32), col, label))
    shade = np.array([[x + 0.35 * rx, yt], [x + rx, yt], [x + rx, yb], [x + 0.35 * rx, yb]])
    prims.append(('poly', np.rint(shade).astype(np.int32), scale_color(col, 0.78), label))
    if caps:
        prims.append(('ellipse', (x, yt), (rx, ry_t), 0, scale_color(col, 1.12 if z1 < 1.0 else 0.7), label))
