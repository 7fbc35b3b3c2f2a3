"""People: pedestrians on sidewalks and the road, cyclists and motorcyclists (rider) and parked two-wheelers."""

from __future__ import annotations

import numpy as np

from .colors import hsv, scale_color
from .labels import BICYCLE, MOTORCYCLE, RIDER
from .scene import Scene

__all__ = ['person', 'two_wheeler']


def person(scene: Scene, X: float, d: float, label: int) -> bool:
    """A pedestrian standing at (X, d); False when there is no room."""
    cam, u = scene.cam, scene.u
    g = cam.g(d)
    hp = u(1.0, 1.25) * g
    bx, by = cam.point(X, d)
    prims = _person_prims(scene, bx, by, hp, label, walking=True)
    casters = [(X - 0.15, X + 0.15, d - 0.1, d + 0.1, 0.0, hp / g)]
    return scene.add(d, prims, (X - 0.25, X + 0.25, d - 0.25, d + 0.25), casters=casters)


def _person_prims(
    scene: Scene, bx: float, by: float, hp: float, label: int, walking: bool, seated: bool = False
) -> list[tuple]:
    u = scene.u
    skin = hsv(u(15, 35), u(0.25, 0.6), u(0.3, 0.9))
    top = scene.pick([hsv(u(0, 360), u(0.1, 0.6), u(0.15, 0.8)), hsv(0, 0, u(0.05, 0.9))])
    legs = scene.pick(
        [
            hsv(u(210, 230), u(0.3, 0.6), u(0.15, 0.4)),
            hsv(0, 0, u(0.05, 0.35)),
            hsv(u(30, 40), u(0.2, 0.4), u(0.4, 0.7)),
        ]
    )
    hair = hsv(u(20, 40), u(0.2, 0.7), u(0.05, 0.5))
    lw = 0.075 * hp
    prims: list[tuple] = []
    hip = by - 0.48 * hp
    if not seated:
        spread = u(0.0, 0.12) * hp if walking else 0.02 * hp
        for s in (-1, 1):
            foot = bx + s * spread
            prims.append(
                (
                    'poly',
                    np.rint(
                        np.array(
                            [
                                [foot - lw, by],
                                [foot + lw, by],
                                [bx + s * lw * 1.4 + lw, hip],
                                [bx + s * lw * 1.4 - lw, hip],
                            ]
                        )
                    ).astype(np.int32),
                    legs,
                    label,
                )
            )
    tw = u(0.13, 0.17) * hp
    shoulder = by - 0.82 * hp
    coat = scene.chance(0.3)
    bottom = hip + (0.15 * hp if coat else 0.03 * hp)
    prims.append(
        (
            'poly',
            np.rint(
                np.array([[bx - tw, bottom], [bx + tw, bottom], [bx + tw * 1.05, shoulder], [bx - tw * 1.05, shoulder]])
            ).astype(np.int32),
            top,
            label,
        )
    )
    for s in (-1, 1):
        ax = bx + s * (tw + 0.03 * hp)
        prims.append(
            (
                'line',
                (ax, shoulder + 0.02 * hp),
                (ax + s * u(0, 0.05) * hp, hip + 0.02 * hp),
                scale_color(top, 0.85),
                label,
                max(0.06 * hp, 1),
            )
        )
    prims.append(('line', (bx, shoulder), (bx, shoulder - 0.05 * hp), skin, label, max(0.06 * hp, 1)))
    hc = by - 0.92 * hp
    prims.append(('ellipse', (bx, hc), (0.065 * hp, 0.08 * hp), 0, skin, label))
    prims.append(('ellipse', (bx, hc - 0.03 * hp), (0.068 * hp, 0.055 * hp), 0, hair, label))
    if scene.chance(0.2):  # bag
        s = scene.pick([-1, 1])
        prims.append(
            (
                'poly',
                np.rint(
                    np.array(
                        [
                            [bx + s * tw, hip],
                            [bx + s * (tw + 0.12 * hp), hip],
                            [bx + s * (tw + 0.12 * hp), hip - 0.12 * hp],
                            [bx + s * tw, hip - 0.12 * hp],
                        ]
                    )
                ).astype(np.int32),
                hsv(u(0, 360), u(0.1, 0.5), u(0.1, 0.6)),
                label,
            )
        )
    return prims


def two_wheeler(scene: Scene, rider: bool, motor: bool) -> bool:
    """A bicycle or motorcycle, ridden on the road or parked on a sidewalk; False when it does not fit."""
    cam, u = scene.cam, scene.u
    xl, xr = scene.road
    sides_ok = [s for s in scene.sides if s.walk is not None]
    parked_on_walk = not rider and sides_ok and scene.chance(0.6)
    if parked_on_walk:
        side = scene.pick(sides_ok)
        X = 0.5 * (side.walk[0] + side.walk[1])
    else:
        X = scene.u(xl + 0.5, xr - 0.5)
    d = scene.depth(scene.d_near * 1.7, min(40.0, scene.d_max * 0.7))
    g = cam.g(d)
    bx, by = cam.point(X, d)
    r = (0.5 if motor else 0.45) * g
    half = (0.75 if motor else 0.65) * g
    facing = scene.pick([-1, 1])
    label = MOTORCYCLE if motor else BICYCLE
    col = scene.pick([hsv(0, 0, u(0.05, 0.3)), hsv(u(0, 360), u(0.5, 0.9), u(0.3, 0.7)), hsv(0, 0, u(0.7, 0.9))])
    tyre = hsv(0, 0, u(0.03, 0.12))
    t = max(0.06 * g, 1.0)
    prims: list[tuple] = []
    back, front_ = (bx - facing * half, by - r), (bx + facing * half, by - r)
    for c in (back, front_):
        prims.append(('circle', c, r, tyre, label, max(int(round(0.12 * g if motor else 0.06 * g)), 1)))
    seat = (bx - facing * 0.2 * g, by - 2.1 * r)
    bar = (bx + facing * 0.5 * g, by - 2.4 * r)
    crank = (bx, by - r)
    if motor:
        prims.append(
            (
                'poly',
                np.rint(
                    np.array(
                        [
                            [back[0], by - 1.5 * r],
                            [front_[0] - facing * 0.3 * g, by - 1.5 * r],
                            [bar[0], bar[1]],
                            [seat[0], seat[1]],
                        ]
                    )
                ).astype(np.int32),
                col,
                label,
            )
        )
        prims.append(('line', front_, bar, col, label, t))
    else:
        for a, b in ((back, crank), (crank, seat), (seat, back), (crank, bar), (bar, front_), (seat, bar)):
            prims.append(('line', a, b, col, label, t))
    if rider:
        hp = u(1.05, 1.2) * g
        prims.extend(_person_prims(scene, seat[0], seat[1] + 0.48 * hp, hp, RIDER, walking=False, seated=True))
        leg = hsv(u(210, 230), u(0.2, 0.5), u(0.1, 0.3))
        prims.append(
            (
                'line',
                (seat[0], seat[1]),
                (crank[0] + facing * 0.1 * g, crank[1] + 0.2 * r),
                leg,
                RIDER,
                max(0.12 * hp, 1),
            )
        )
    footprint = (X - 0.4, X + 0.4, d - 0.8, d + 0.8)
    casters = [(X - 0.08, X + 0.08, d - 0.6, d + 0.6, 0.0, 1.15 if rider else 0.7)]
    return scene.add(d, prims, footprint, casters=casters)
