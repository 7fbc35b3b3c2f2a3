"""The pinhole ground-plane camera: world (lateral X, depth d, height Z) to pixels, strips, walls and box faces.

World units are camera heights (about 1.5 m). A ground point at lateral offset ``X`` and depth ``d`` (plus
height ``Z`` above ground) projects to ``x = vx + f * (X + kappa * d**2) / d`` and ``y = y_h + f * (1 - Z) / d``
(horizon row ``y_h``, vanishing column ``vx``, focal ``f`` in pixels, road curvature ``kappa``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ['Camera']


class Camera:
    """Projection of one frame; `lim` guards int32 overflow of far off-frame vertices."""

    def __init__(self, height: int, width: int, y_h: float, vx: float, f: float, kappa: float) -> None:
        self.H, self.W, self.y_h, self.vx, self.f, self.kappa = height, width, y_h, vx, f, kappa
        self.lim = 1_000_000  # cv2 fills polygons with far off-frame vertices exactly; only guard overflow

    def xy(self, X: Any, d: Any, Z: Any = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (x, y) of broadcast world coordinates, as float arrays."""
        X, d, Z = np.asarray(X, dtype=np.float64), np.asarray(d, dtype=np.float64), np.asarray(Z, dtype=np.float64)
        x = self.vx + self.f * (X + self.kappa * d * d) / d
        y = self.y_h + self.f * (1.0 - Z) / d
        return x, y

    def pts(self, X: Any, d: Any, Z: Any = 0.0) -> np.ndarray:
        """(N, 2) int32 pixel polygon for broadcast world coordinates (1-D or scalars)."""
        x, y = self.xy(X, d, Z)
        out = np.empty((max(x.size, y.size), 2))
        out[:, 0] = x
        out[:, 1] = y
        np.clip(out, -self.lim, self.lim, out=out)
        return np.rint(out).astype(np.int32)

    def point(self, X: float, d: float, Z: float = 0.0) -> tuple[float, float]:
        """Pixel coordinates of one world point."""
        x = self.vx + self.f * (X + self.kappa * d * d) / d
        return x, self.y_h + self.f * (1.0 - Z) / d

    def g(self, d: float) -> float:
        """Pixels per world unit at depth d."""
        return self.f / d

    def depth_samples(self, d0: float, d1: float, n: int = 20) -> np.ndarray:
        """Depths along d0..d1 for the edges of ground shapes: the ends only on a straight road."""
        if self.kappa == 0.0:
            return np.array([d0, d1])
        return np.geomspace(d0, d1, n)

    def strip(self, Xa: float, Xb: float, d0: float, d1: float, Z: float = 0.0) -> np.ndarray:
        """Ground strip between lateral Xa and Xb from depth d0 to d1 (follows the road curve)."""
        ds = self.depth_samples(d0, d1)
        return np.concatenate([self.pts(Xa, ds, Z), self.pts(Xb, ds[::-1], Z)])

    def wall(self, X: float, d0: float, d1: float, Z0: float, Z1: Any) -> np.ndarray:
        """Vertical plane at lateral X between depths d0..d1 and heights Z0..Z1 (Z1 may vary along d)."""
        ds = self.depth_samples(d0, d1, 8)
        z1 = np.broadcast_to(np.asarray(Z1, dtype=np.float64), ds.shape) if np.ndim(Z1) else Z1
        top = self.pts(X, ds, z1)
        return np.concatenate([self.pts(X, ds, Z0), top[::-1]])

    def box_faces(
        self, X0: float, X1: float, d0: float, d1: float, Z0: float, Z1: float
    ) -> list[tuple[str, np.ndarray]]:
        """Visible faces of an axis-aligned box in drawing order (farther faces first)."""
        faces: list[tuple[str, np.ndarray]] = []
        dm = 0.5 * (d0 + d1)
        off = self.kappa * dm * dm
        if X0 + off > 0:
            faces.append(('side', self.pts([X0, X0, X0, X0], [d0, d1, d1, d0], [Z0, Z0, Z1, Z1])))
        elif X1 + off < 0:
            faces.append(('side', self.pts([X1, X1, X1, X1], [d0, d1, d1, d0], [Z0, Z0, Z1, Z1])))
        if Z1 < 1.0:
            faces.append(('top', self.pts([X0, X1, X1, X0], [d0, d0, d1, d1], Z1)))
        elif Z0 > 1.0:
            faces.append(('top', self.pts([X0, X1, X1, X0], [d0, d0, d1, d1], Z0)))
        faces.append(('front', self.pts([X0, X1, X1, X0], d0, [Z0, Z0, Z1, Z1])))
        return faces
