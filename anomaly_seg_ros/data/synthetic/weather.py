"""Per-frame weather draws: the lighting parameters of each condition and its sky colours (weather stream only).

Clear (sun with cast shadows, sun-facing facades brighter), overcast, dusk (low sun, long shadows, warm light,
lamps on in some frames), night (dark, lit street lamps, windows and vehicle lights), fog (blend to a fog colour
growing with depth) and rain (streaks, darker wet road with faint reflections, light haze). Every draw comes from
the weather stream, never the scene stream, so weather changes pixels only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .colors import Color, hsv

__all__ = ['weather_params', 'weather_sky']


def _uniform(wrng: np.random.Generator) -> Callable[[float, float], float]:
    """A uniform draw function on the weather stream."""

    def wu(a: float, b: float) -> float:
        return float(wrng.uniform(a, b))

    return wu


def weather_params(wrng: np.random.Generator, weather: str) -> dict[str, Any]:
    """Per-frame lighting: sun (shadows), ambient level, colour tint, fog, rain, lamps; weather stream."""
    wu = _uniform(wrng)
    wx: dict[str, Any] = {
        'sun': None,
        'fog': None,
        'rain': None,
        'lamps': False,
        'ambient': 1.0,
        'tint': (1.0, 1.0, 1.0),
        'bias_k': 1.0,
        'glow': 0.0,
        'pool': 0.0,
    }
    if weather in ('clear', 'dusk'):
        elev = math.radians(wu(20.0, 62.0) if weather == 'clear' else wu(5.0, 14.0))
        azim = wu(0.0, 2.0 * math.pi)  # direction towards the sun: 0 = straight ahead, pi/2 = right
        cot = 1.0 / math.tan(elev)
        # shadow offset on the ground per unit of height, and how directly each facade faces the sun
        wx['sun'] = {
            'sx': -math.sin(azim) * cot,
            'sd': -math.cos(azim) * cot,
            'shade': wu(0.45, 0.62) if weather == 'clear' else wu(0.55, 0.72),
            'left': 0.8 + 0.45 * max(0.0, math.sin(azim)) - 0.1 * max(0.0, -math.sin(azim)),
            'right': 0.8 + 0.45 * max(0.0, -math.sin(azim)) - 0.1 * max(0.0, math.sin(azim)),
        }
    if weather == 'clear':
        warm = wu(0.0, 0.05)
        wx['tint'] = (1.0 + warm, 1.0, 1.0 - warm)
    elif weather == 'overcast':
        wx['ambient'] = wu(0.78, 0.95)
        cool = wu(0.0, 0.04)
        wx['tint'] = (1.0 - cool, 1.0, 1.0 + cool)
        wx['bias_k'] = 0.7
    elif weather == 'dusk':
        wx['ambient'] = wu(0.55, 0.75)
        wx['tint'] = (wu(1.08, 1.2), wu(0.9, 0.98), wu(0.68, 0.82))
        wx['bias_k'] = 0.5
        wx['lamps'] = wrng.random() < 0.6
        wx['glow'], wx['pool'] = wu(0.6, 1.2), wu(0.15, 0.3)
    elif weather == 'night':
        wx['ambient'] = wu(0.16, 0.3)
        wx['tint'] = (wu(0.85, 1.0), wu(0.9, 1.0), wu(1.0, 1.15))
        wx['bias_k'] = 0.2
        wx['lamps'] = True
        wx['glow'], wx['pool'] = wu(1.3, 2.2), wu(0.55, 0.85)
    elif weather == 'fog':
        v = wu(0.72, 0.9)
        wx['ambient'] = wu(0.85, 1.0)
        wx['fog'] = {'vis': wu(12.0, 45.0), 'color': hsv(wu(195, 225), wu(0.0, 0.03), v), 'sky': 1.0}
        wx['bias_k'] = 0.4
    elif weather == 'rain':
        wx['ambient'] = wu(0.62, 0.8)
        wx['tint'] = (wu(0.92, 0.98), wu(0.96, 1.0), 1.0)
        wx['fog'] = {
            'vis': wu(60.0, 200.0),
            'color': hsv(wu(195, 225), wu(0.02, 0.08), wu(0.5, 0.68)),
            'sky': 0.85,
        }
        wx['rain'] = {
            'density': wu(0.5, 2.0),
            'angle': wu(-0.35, 0.35),
            'length': wu(0.025, 0.07),
            'amp': wu(18.0, 40.0),
            'wet': wu(0.6, 0.78),
            'reflect': wu(0.18, 0.35),
        }
        wx['bias_k'] = 0.5
    return wx


def weather_sky(wrng: np.random.Generator, weather: str, wx: dict[str, Any]) -> tuple[Color, Color]:
    """Sky colours (top, horizon) of this frame's weather, from the weather stream."""
    wu, w = _uniform(wrng), weather
    if w == 'clear':
        return hsv(wu(200, 225), wu(0.35, 0.65), wu(0.7, 0.95)), hsv(wu(195, 215), wu(0.08, 0.25), wu(0.85, 1.0))
    if w == 'overcast':
        v = wu(0.65, 0.9)
        return hsv(wu(190, 230), wu(0.0, 0.1), v), hsv(wu(190, 230), wu(0.0, 0.06), min(v + wu(0.0, 0.1), 1.0))
    if w == 'dusk':
        return hsv(wu(215, 265), wu(0.3, 0.55), wu(0.35, 0.6)), hsv(wu(12, 38), wu(0.45, 0.8), wu(0.85, 1.0))
    if w == 'night':
        return hsv(wu(215, 235), wu(0.5, 0.8), wu(0.03, 0.08)), hsv(wu(20, 40), wu(0.25, 0.5), wu(0.12, 0.22))
    if w == 'fog':
        c = wx['fog']['color']
        return c, c
    v = wu(0.45, 0.62)  # rain
    return hsv(wu(200, 225), wu(0.03, 0.1), v), hsv(wu(200, 225), wu(0.02, 0.06), min(v + wu(0.05, 0.15), 1.0))
