"""The frame pipeline: lay out the street, paint the stuff, place obstacles, objects and void props, draw them far
to near, finish the image, and settle the anomaly ground truth."""

from __future__ import annotations

import cv2
import numpy as np

from anomaly_seg_ros.classes import ANOMALY_ID, ANOMALY_IGNORE, ANOMALY_IN_DIST, IGNORE_ID

from .finish import finish
from .ground import backdrop, ground, sky
from .labels import PERSON
from .layout import setup
from .lighting import fog_code
from .obstacles import place_obstacles
from .people import person, two_wheeler
from .poles import poles
from .raster import Box, boxes_overlap, raster
from .roadside import side_structures, street_trees
from .scene import Scene
from .vehicles import moving_vehicle, parked_cars
from .void_props import place_void_objects

__all__ = ['FrameRenderer', 'render_frame']


class FrameRenderer(Scene):
    """The `Scene` of one frame that renders itself: ``FrameRenderer(rng, config).render()``.

    After `render` its layout (``cam``, ``sides``, ``road``, ``weather``) and ``objects`` stay readable.
    """

    def render(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(image HxWx3 RGB, labels HxW trainIds, anomaly HxW 0/1/255), all uint8."""
        return render_frame(self)


def render_frame(scene: Scene) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render the frame of a fresh `Scene` (the scene is used up: render each one once)."""
    setup(scene)
    sky(scene)
    backdrop(scene)
    ground(scene)
    for side in scene.sides:
        side_structures(scene, side)
    place_obstacles(scene)
    place_objects(scene)
    place_void_objects(scene)
    draw_objects(scene)
    lab, anomaly = scene.canvas.lab, scene.canvas.anom
    if any(o.anomaly or o.void for o in scene.objects):
        # obstacle / void pixels hidden behind nearer labelled objects take their labels' meaning
        anomaly[lab != IGNORE_ID] = ANOMALY_IN_DIST
    image = finish(scene)
    band = scene.cfg.ignore_band
    if band > 0 and (anomaly == ANOMALY_ID).any():
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
        grown = cv2.dilate((anomaly == ANOMALY_ID).view(np.uint8), kernel)
        anomaly[(grown > 0) & (anomaly == 0)] = ANOMALY_IGNORE
    return image, lab, anomaly


def draw_objects(scene: Scene) -> None:
    """Objects far to near; side buffers for fog depth and night emitters follow the same order."""
    c = scene.canvas
    fog = scene.wx['fog']
    scene.depth_code = np.zeros((scene.H, scene.W), dtype=np.uint8) if fog is not None else None
    emit = scene.emit
    emit_boxes: list[Box] = []
    for obj in sorted(scene.objects, key=lambda o: -o.depth):
        c.draw(obj.prims)
        if scene.depth_code is not None:
            raster(scene.depth_code, obj.prims, fog_code(scene, obj.depth))
        if emit is not None:
            if emit_boxes and any(boxes_overlap(obj.bbox, b, 1.0) for b in emit_boxes):
                raster(emit, obj.prims, 0)  # a nearer object hides emitters drawn before it
            if obj.glow:
                for code, prim in obj.glow:
                    c.draw([prim])
                    raster(emit, [prim], code, labelled_only=False)
                emit_boxes.append(obj.bbox)
    if scene.bonnet is not None:
        c.draw(scene.bonnet)
        if scene.depth_code is not None:
            raster(scene.depth_code, scene.bonnet, 1)
        if emit is not None:
            raster(emit, scene.bonnet, 0)


def place_objects(scene: Scene) -> None:
    """Poles, street trees, vehicles (large ones first), pedestrians and two-wheelers, from the scene stream."""
    d_lo = scene.d_near * 0.8
    for side in scene.sides:
        poles(scene, side)
        if scene.chance(0.35):
            street_trees(scene, side)
    if scene.tram_line and scene.chance(0.9):  # large vehicles first: they are the hardest to fit
        moving_vehicle(scene, 'tram', attempts=5)
    for side in scene.sides:
        if scene.chance(0.45):
            parked_cars(scene, side)
    if scene.chance(0.38):
        moving_vehicle(scene, 'truck')
    if scene.chance(0.33):
        moving_vehicle(scene, 'bus')
    for _ in range(int(scene.rng.integers(0, 5))):
        moving_vehicle(scene, 'car', attempts=2)
    walks = [s for s in scene.sides if s.walk is not None]
    n_persons = int(scene.rng.integers(0, 8)) if walks else 0
    for _ in range(n_persons):
        side = scene.pick(walks)
        xa, xb = side.walk  # type: ignore[misc]
        X = scene.u(min(xa, xb) + 0.3, max(xa, xb) - 0.3) if abs(xb - xa) > 0.7 else 0.5 * (xa + xb)
        d = scene.depth(d_lo, min(scene.d_max * 0.8, 60.0))
        person(scene, X, d, PERSON)
    if scene.chance(0.12):  # pedestrian on the road
        person(scene, scene.u(*scene.road), scene.depth(d_lo, 30.0), PERSON)
    for _ in range(int(scene.rng.integers(0, 4))):
        with scene.substream():
            for _attempt in range(3):
                if two_wheeler(scene, rider=scene.chance(0.75), motor=scene.chance(0.4)):
                    break
