"""A procedural road-scene world with exact Cityscapes labels and road-obstacle anomalies.

No dataset can be downloaded where this package is developed, so training and evaluation run on this
world: a camera looking down a (possibly gently curving) street with road, lane markings, tram rails,
sidewalks, terrain, building facades with windows, vegetation, walls/fences, poles with traffic signs
and traffic lights, street lamps, cars, trucks, buses, trams (class ``train``), persons, cyclists and
motorcyclists, all drawn far-to-near with a pinhole ground-plane model so that sizes follow
perspective. All 19 Cityscapes training classes appear regularly.

Void objects that belong to no Cityscapes training class (trash bins, benches, bollards, advertising
columns, parking meters, construction barriers, all on the sidewalk, and the ego vehicle's bonnet at
the bottom edge of some frames) are labelled 255 in the segmentation labels and 255 (ignore) in the
anomaly ground truth, as in Cityscapes / Fishyscapes. Road obstacles (boxes, barrels, rocks, tyre
stacks, toppled chairs, animals, ...) that belong to no Cityscapes class stand on the road, from a few
pixels far away to a quarter of the frame width near by; their visible pixels are ``anomaly == 1`` and
``labels == 255`` (nearer objects may hide part of one; the labels follow what is visible).

Each frame has a weather / lighting condition (``WorldConfig.weather``): clear (sun with cast shadows
of buildings, vehicles, poles and trees on the ground, sun-facing facades brighter), overcast, dusk
(low sun, long shadows, warm light, lamps on), night (dark, lit street lamps with light pools, lit
windows, vehicle head and tail lights with glow), fog (blend to a fog colour growing with depth) and
rain (streaks, darker wet road with faint reflections, light haze). Weather changes pixels only: the
same seed with two weathers gives identical labels and anomaly masks.

Geometry: world units are camera heights (about 1.5 m). A ground point at lateral offset ``X`` and
depth ``d`` (plus height ``Z`` above ground) projects to
``x = vx + f * (X + kappa * d**2) / d`` and ``y = y_h + f * (1 - Z) / d`` (horizon row ``y_h``,
vanishing column ``vx``, focal ``f`` in pixels, road curvature ``kappa``).

Every labelled drawing call paints the image and the label map with the same polygon and
``cv2.LINE_8`` (no anti-aliasing), so labels align with pixels exactly; lighting, shadows, fog, rain,
glows, texture noise, colour jitter and a mild blur touch the image alone. Randomness comes from
``np.random.default_rng(seed)`` only (split into independent child streams for the scene, obstacles,
weather and finish); the same seed and config give byte-identical frames.

Modules, in import order: ``config`` (WorldConfig), ``colors``, ``labels``, ``camera``, ``raster`` (primitives and
canvas), ``weather``, ``scene`` (the per-frame state every drawing function takes), ``solids``, ``vehicles``,
``layout``, ``roadside``, ``ground``, ``poles``, ``people``, ``void_props``, ``obstacle_shapes`` (a registry of
shape builders), ``obstacle_textures``, ``obstacles``, ``lighting``, ``finish``, ``render`` (the frame pipeline)
and ``world`` (``generate``, ``SyntheticWorld``).
"""

from .config import ANOMALY_FAMILIES, WEATHERS, WorldConfig, WorldConfigError
from .world import SyntheticWorld, generate

__all__ = ['ANOMALY_FAMILIES', 'WEATHERS', 'SyntheticWorld', 'WorldConfig', 'WorldConfigError', 'generate']
