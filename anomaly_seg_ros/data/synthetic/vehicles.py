"""Vehicles: parked and moving cars, trucks and vans, buses and trams (Cityscapes 'train'); lamps glow at night."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .colors import Color, hsv, scale_color
from .labels import BUS, CAR, TRAIN, TRUCK
from .scene import Pool, Scene, Side
from .solids import box, inset_polygon, wheel

__all__ = ['car_color', 'moving_vehicle', 'parked_cars']


@dataclass
class _Vehicle:
    """One vehicle being built: its footprint, facing, colours and the primitives drawn so far."""

    X: float
    X0: float
    X1: float
    d0: float
    d1: float
    length: float
    front: bool  # its front faces the camera (oncoming)
    moving: bool  # lamps glow at night only when it moves
    tyre: Color
    glass: Color
    label: int
    prims: list[tuple]
    glow: list[tuple[int, tuple]]

    def parts(self) -> tuple:
        """Every field in declaration order, the lists themselves (not copies): body builders append to them."""
        return (
            self.X, self.X0, self.X1, self.d0, self.d1, self.length, self.front, self.moving,
            self.tyre, self.glass, self.label, self.prims, self.glow,
        )  # fmt: skip


def car_color(scene: Scene) -> Color:
    """A car paint colour, drawn with the frequencies of a city fleet."""
    u = scene.u
    kind = scene.pick(
        ['white', 'black', 'silver', 'grey', 'blue', 'red', 'green', 'beige'],
        [0.2, 0.18, 0.17, 0.15, 0.1, 0.1, 0.05, 0.05],
    )
    if kind == 'white':
        return hsv(0, 0, u(0.82, 0.95))
    if kind == 'black':
        return hsv(u(0, 360), u(0, 0.1), u(0.06, 0.15))
    if kind == 'silver':
        return hsv(u(200, 220), u(0.02, 0.08), u(0.6, 0.78))
    if kind == 'grey':
        return hsv(0, 0, u(0.3, 0.5))
    if kind == 'blue':
        return hsv(u(210, 230), u(0.5, 0.8), u(0.2, 0.45))
    if kind == 'red':
        return hsv(u(355, 365), u(0.7, 0.9), u(0.4, 0.65))
    if kind == 'green':
        return hsv(u(120, 160), u(0.3, 0.6), u(0.15, 0.35))
    return hsv(u(30, 45), u(0.2, 0.4), u(0.55, 0.75))


def parked_cars(scene: Scene, side: Side) -> None:
    """A row of parked cars and vans along the road edge of ``side``."""
    d = scene.d_near * scene.u(0.8, 2.0)
    while d < min(scene.d_max * 0.85, 80.0):
        van = scene.chance(0.1)
        w = scene.u(1.45, 1.6) if van else scene.u(1.1, 1.3)
        X = side.road_edge - side.sign * (0.15 + w / 2)
        length = scene.u(3.6, 5.0) if van else scene.u(2.6, 3.3)
        if scene.chance(0.85):
            _vehicle(scene, 'truck' if van else 'car', X, d, w, length, front=scene.chance(0.3), moving=False)
        d += length + scene.u(0.3, 6.0)


def moving_vehicle(scene: Scene, kind: str, attempts: int = 4) -> bool:
    """A vehicle of ``kind`` in a lane (a tram on the rails), from a child stream; True when placed."""
    with scene.substream():
        return _moving_vehicle_tries(scene, kind, attempts)


def _moving_vehicle_tries(scene: Scene, kind: str, attempts: int) -> bool:
    for _ in range(attempts):
        if kind == 'tram':
            X = float(scene.tram_X) + scene.u(-0.05, 0.05)  # type: ignore[arg-type]
            d = scene.depth(scene.d_near * 1.4, scene.d_max * 0.85)
            front = scene.chance(0.5)
            if _vehicle(scene, 'tram', X, d, scene.u(1.55, 1.7), scene.u(13.0, 24.0), front):
                return True
            continue
        X = scene.pick(scene.lanes) + scene.u(-0.3, 0.3)
        d = scene.depth(scene.d_near * 0.85, scene.d_max * 0.8)
        front = X < 0 and len(scene.lanes) >= 2 and scene.chance(0.7)
        if kind == 'car':
            ok = _vehicle(scene, 'car', X, d, scene.u(1.1, 1.3), scene.u(2.6, 3.3), front)
        elif kind == 'truck':
            ok = _vehicle(scene, 'truck', X, d, scene.u(1.55, 1.7), scene.u(4.0, 7.0), front)
        else:
            ok = _vehicle(scene, 'bus', X, d, scene.u(1.6, 1.7), scene.u(7.0, 8.5), front)
        if ok:
            return True
    return False


def _vehicle(
    scene: Scene, kind: str, X: float, d0: float, w: float, length: float, front: bool, moving: bool = True
) -> bool:
    """Build a vehicle of ``kind`` with its near face at depth d0 and add it; False when it does not fit."""
    cam, u = scene.cam, scene.u
    X0, X1, d1 = X - w / 2, X + w / 2, d0 + length
    prims: list[tuple] = []
    glow: list[tuple[int, tuple]] = []
    shadow = scale_color(scene.style['road'], u(0.3, 0.5))
    prims.append(('poly', cam.pts([X0 - 0.05, X1 + 0.05, X1 + 0.05, X0 - 0.05], [d0, d0, d1, d1], 0.0), shadow, None))
    tyre = hsv(0, 0, u(0.04, 0.1))
    glass = scene.pick([hsv(u(190, 220), u(0.15, 0.35), u(0.12, 0.3)), hsv(0, 0, u(0.05, 0.18))])
    label = {'car': CAR, 'truck': TRUCK, 'bus': BUS, 'tram': TRAIN}[kind]
    # wheels (under the body, seen at the front/rear corners)
    wz = 0.33 if kind == 'car' else (0.3 if kind == 'tram' else 0.5)
    for xa in (X0 + 0.02, X1 - 0.24 if kind == 'car' else X1 - 0.32):
        xb = xa + (0.22 if kind == 'car' else 0.3)
        prims.append(('poly', cam.pts([xa, xb, xb, xa], d0 + 0.3, [0, 0, wz, wz]), tyre, label))
    v = _Vehicle(X, X0, X1, d0, d1, length, front, moving, tyre, glass, label, prims, glow)
    z_top = _BODIES[kind](scene, v)
    casters = [(X0, X1, d0, d1, 0.15, z_top)]
    pools: list[Pool] = []
    if moving and front and scene.lamps_on:  # headlight beams on the road in front of the vehicle
        reach = scene.wu(6.0, 12.0)
        pools.append(
            (
                np.array([X0 + 0.1, X1 - 0.1, X1 + 0.8, X0 - 0.8]),
                np.array([d0, d0, d0 - reach, d0 - reach]),
                scene.wu(0.5, 0.8),
            )
        )
    ok = scene.add(d0, prims, (X0 - 0.1, X1 + 0.1, d0 - 0.3, d1 + 0.3), casters=casters, glow=glow, pools=pools)
    return ok


def _car_body(scene: Scene, v: _Vehicle) -> float:
    """A car: body box, glazed cabin, lamps and plate on the near face. Returns the roof height."""
    cam, u = scene.cam, scene.u
    X, X0, X1, d0, d1, length, front, moving, tyre, glass, label, prims, glow = v.parts()
    col = car_color(scene)
    z_body = u(0.5, 0.62)
    box(scene, prims, X0, X1, d0, d1, 0.18, z_body, col, label, side_wheels=(0.22, tyre, (0.18, 0.82)))
    cab: tuple[float, ...] = (X0 + 0.08, X1 - 0.08, d0 + length * u(0.25, 0.35), d0 + length * u(0.72, 0.8))
    z_roof = u(0.88, 0.99)
    for name, pts in cam.box_faces(cab[0], cab[1], cab[2], cab[3], z_body, z_roof):
        if name == 'top':
            prims.append(('poly', pts, scale_color(col, 1.1), label))
        else:
            prims.append(('poly', pts, scale_color(col, 0.9 if name == 'side' else 1.0), label))
            inset = inset_polygon(pts, 0.12)
            prims.append(('poly', inset, glass, label))
    # lights and plate on the near face
    lamp = (220, 30, 30) if not front else hsv(u(40, 60), u(0.0, 0.3), 0.95)
    zl0, zl1 = z_body - 0.14, z_body - 0.05
    for xa, xb in ((X0 + 0.04, X0 + 0.3), (X1 - 0.3, X1 - 0.04)):
        pts = cam.pts([xa, xb, xb, xa], d0, [zl0, zl0, zl1, zl1])
        prims.append(('poly', pts, lamp, label))
        if moving and scene.lamps_on:
            glow.append((label + 1, ('poly', pts, (255, 250, 230) if front else (255, 40, 30), None)))
    plate = scene.pick([hsv(0, 0, 0.92), hsv(50, 0.8, 0.9)], [0.8, 0.2])
    prims.append(('poly', cam.pts([X - 0.2, X + 0.2, X + 0.2, X - 0.2], d0, [0.25, 0.25, 0.33, 0.33]), plate, label))
    return z_roof


def _truck_body(scene: Scene, v: _Vehicle) -> float:
    """A truck or van: cab and cargo box (cab nearest when it comes towards the camera). Returns the roof height."""
    cam, u = scene.cam, scene.u
    _, X0, X1, d0, d1, _, front, moving, tyre, glass, label, prims, glow = v.parts()
    cargo_col = scene.pick([hsv(0, 0, u(0.8, 0.95)), hsv(u(0, 360), u(0.3, 0.7), u(0.35, 0.7)), hsv(0, 0, u(0.4, 0.6))])
    cab_col = car_color(scene)
    cab_len = 1.6
    cargo = (d0, d1 - cab_len) if not front else (d0 + cab_len, d1)
    cab = (d1 - cab_len, d1) if not front else (d0, d0 + cab_len)
    z_top = u(2.0, 2.6)
    parts = [('cab', cab), ('cargo', cargo)] if not front else [('cargo', cargo), ('cab', cab)]
    for name, (da, db) in parts:
        if name == 'cab':
            box(
                scene,
                prims,
                X0 + 0.05,
                X1 - 0.05,
                da,
                db,
                0.35,
                1.85,
                cab_col,
                label,
                side_wheels=(0.32, tyre, (0.5,)),
            )
            if front:
                prims.append(
                    (
                        'poly',
                        inset_polygon(
                            cam.pts([X0 + 0.1, X1 - 0.1, X1 - 0.1, X0 + 0.1], da, [1.15, 1.15, 1.75, 1.75]),
                            0.05,
                        ),
                        glass,
                        label,
                    )
                )
        else:
            box(scene, prims, X0, X1, da, db, 0.45, z_top, cargo_col, label, side_wheels=(0.32, tyre, (0.2, 0.8)))
    prims.append(('poly', cam.pts([X0, X1, X1, X0], d0, [0.25, 0.25, 0.45, 0.45]), hsv(0, 0, 0.15), label))
    _vehicle_lamps(scene, prims, glow, X0, X1, d0, 0.5, label, front, moving)
    return z_top


def _bus_body(scene: Scene, v: _Vehicle) -> float:
    """A bus: a coach body with two axles. Returns the roof height."""
    u = scene.u
    _, X0, X1, d0, d1, _, front, moving, tyre, glass, label, prims, glow = v.parts()
    col = scene.pick(
        [
            hsv(u(45, 55), u(0.7, 0.9), u(0.75, 0.9)),
            hsv(0, 0, u(0.8, 0.95)),
            hsv(u(355, 365), u(0.6, 0.85), u(0.5, 0.7)),
            hsv(u(200, 220), u(0.5, 0.8), u(0.4, 0.6)),
        ]
    )
    z_top = u(2.0, 2.3)
    _coach(scene, prims, X0, X1, d0, d1, 0.25, z_top, col, glass, tyre, label, front, (0.15, 0.75), 0.35)
    _vehicle_lamps(scene, prims, glow, X0, X1, d0, 0.45, label, front, moving)
    return z_top


def _tram_body(scene: Scene, v: _Vehicle) -> float:
    """A tram (Cityscapes 'train'): a long low-floor coach in sections, with a pantograph. Returns the roof height."""
    cam, u = scene.cam, scene.u
    X, X0, X1, d0, d1, length, front, moving, tyre, glass, label, prims, glow = v.parts()
    col = scene.pick(
        [
            hsv(0, 0, u(0.82, 0.95)),
            hsv(u(355, 365), u(0.65, 0.9), u(0.5, 0.75)),
            hsv(u(48, 56), u(0.7, 0.9), u(0.75, 0.9)),
            hsv(u(200, 225), u(0.5, 0.8), u(0.35, 0.6)),
            hsv(u(100, 140), u(0.4, 0.7), u(0.3, 0.5)),
        ]
    )
    z_top = u(2.15, 2.45)
    n_sec = max(2, int(round(length / u(6.0, 9.0))))
    wheels = tuple((k + 0.5) / n_sec for k in range(n_sec))
    _coach(scene, prims, X0, X1, d0, d1, 0.2, z_top, col, glass, tyre, label, front, wheels, 0.28)
    # section joints and a stripe along the visible side
    Xs = X0 if X0 + cam.kappa * d0 * d0 > 0 else X1
    stripe = scene.pick([hsv(0, 0, u(0.1, 0.25)), hsv(u(0, 360), u(0.5, 0.9), u(0.4, 0.8))])
    if (X0 + cam.kappa * d0 * d0 > 0) or (X1 + cam.kappa * d0 * d0 < 0):
        prims.append(
            (
                'poly',
                cam.pts([Xs] * 4, [d0 + 0.2, d1 - 0.2, d1 - 0.2, d0 + 0.2], [0.55, 0.55, 0.8, 0.8]),
                stripe,
                label,
            )
        )
        for k in range(1, n_sec):
            dj = d0 + length * k / n_sec
            prims.append(
                (
                    'poly',
                    cam.pts([Xs] * 4, [dj - 0.12, dj + 0.12, dj + 0.12, dj - 0.12], [0.25, 0.25, z_top, z_top]),
                    scale_color(col, 0.55),
                    label,
                )
            )
    # pantograph on the roof of the first section
    dp = d0 + length * u(0.25, 0.45) / n_sec * 2
    xa, ya = cam.point(X, dp, z_top)
    xb, yb = cam.point(X, dp + 0.6, z_top + u(0.6, 0.9))
    xc, yc = cam.point(X, dp + 1.2, z_top)
    t = max(0.05 * cam.g(dp), 1.0)
    pan = hsv(0, 0, u(0.15, 0.35))
    prims.append(('line', (xa, ya), (xb, yb), pan, label, t))
    prims.append(('line', (xb, yb), (xc, yc), pan, label, t))
    _vehicle_lamps(scene, prims, glow, X0, X1, d0, 0.6, label, front, moving)
    return z_top


_BODIES: dict[str, Callable[[Scene, _Vehicle], float]] = {
    'car': _car_body,
    'truck': _truck_body,
    'bus': _bus_body,
    'tram': _tram_body,
}


def _coach(
    scene: Scene,
    prims: list[tuple],
    X0: float,
    X1: float,
    d0: float,
    d1: float,
    z0: float,
    z_top: float,
    col: Color,
    glass: Color,
    tyre: Color,
    label: int,
    front: bool,
    wheels: tuple[float, ...],
    wheel_r: float,
) -> None:
    """Bus / tram body: a box with a window band along the visible side and a windscreen."""
    cam = scene.cam
    length = d1 - d0
    for name, pts in cam.box_faces(X0, X1, d0, d1, z0, z_top):
        prims.append(('poly', pts, scale_color(col, {'side': 0.85, 'top': 1.05, 'front': 1.0}[name]), label))
        if name == 'side':
            Xs = X0 if X0 + cam.kappa * d0 * d0 > 0 else X1
            prims.append(
                (
                    'poly',
                    cam.pts([Xs] * 4, [d0 + 0.4, d1 - 0.4, d1 - 0.4, d0 + 0.4], [1.1, 1.1, z_top - 0.2, z_top - 0.2]),
                    glass,
                    label,
                )
            )
            for dw in wheels:
                wheel(scene, prims, Xs, d0 + length * dw, wheel_r, tyre, label)
        elif name == 'front':
            zg = 1.1 if not front else 0.9
            prims.append(
                (
                    'poly',
                    cam.pts([X0 + 0.1, X1 - 0.1, X1 - 0.1, X0 + 0.1], d0, [zg, zg, z_top - 0.15, z_top - 0.15]),
                    glass,
                    label,
                )
            )


def _vehicle_lamps(
    scene: Scene,
    prims: list[tuple],
    glow: list[tuple[int, tuple]],
    X0: float,
    X1: float,
    d0: float,
    z: float,
    label: int,
    front: bool,
    moving: bool,
) -> None:
    """Head (front) or tail lamps on the near face; they glow at night when the vehicle moves."""
    cam = scene.cam
    lamp = (235, 235, 215) if front else (200, 30, 25)
    for xa, xb in ((X0 + 0.06, X0 + 0.3), (X1 - 0.3, X1 - 0.06)):
        pts = cam.pts([xa, xb, xb, xa], d0, [z, z, z + 0.12, z + 0.12])
        prims.append(('poly', pts, lamp, label))
        if moving and scene.lamps_on:
            glow.append((label + 1, ('poly', pts, (255, 250, 230) if front else (255, 40, 30), None)))
