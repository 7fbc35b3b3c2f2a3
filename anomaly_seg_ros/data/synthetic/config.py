"""How frames of the synthetic world look: `WorldConfig`, its validation, and the weather and family names."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anomaly_seg_ros.checks import is_int, is_number
from anomaly_seg_ros.errors import ConfigError

__all__ = ['ANOMALY_FAMILIES', 'MIN_SIZE', 'WEATHERS', 'WEATHER_P', 'WorldConfig', 'WorldConfigError']

ANOMALY_FAMILIES: tuple[str, ...] = ('test', 'proxy')
WEATHERS: tuple[str, ...] = ('clear', 'overcast', 'dusk', 'night', 'fog', 'rain')
# how often weather='random' picks each condition (same order as WEATHERS)
WEATHER_P: tuple[float, ...] = (0.34, 0.2, 0.12, 0.12, 0.11, 0.11)
MIN_SIZE = 32


class WorldConfigError(ConfigError, ValueError):
    """A ``WorldConfig`` field has a bad value; the field name is in the text."""


@dataclass(frozen=True)
class WorldConfig:
    """How frames of the synthetic world look.

    height, width:  frame size in pixels (each >= 32).
    anomaly_prob:   chance that a frame holds at least one road obstacle, in [0, 1].
    max_anomalies:  the most obstacles in one frame (a frame with obstacles holds 1..max_anomalies).
    anomaly_family: 'test' or 'proxy', two disjoint families of obstacle shapes and colours (train an
                    outlier-exposure fine-tune on 'proxy', evaluate on 'test').
    ignore_band:    pixels within this distance outside an obstacle get anomaly = 255 (0 = no band).
    weather:        'random' (a per-frame draw: mostly clear, also overcast, dusk, night, fog and rain)
                    or one of WEATHERS to fix the condition. Weather changes pixels only: the same seed
                    gives the same labels and anomaly masks under every weather, and 'random' renders
                    exactly the frame of the weather it drew.
    void_objects:   draw void objects (sidewalk furniture and the ego bonnet; labels 255, anomaly 255).
                    False gives frames whose labels are all trainIds outside obstacles.
    """

    height: int = 512
    width: int = 1024
    anomaly_prob: float = 0.5
    max_anomalies: int = 3
    anomaly_family: str = 'test'
    ignore_band: int = 0
    weather: str = 'random'
    void_objects: bool = True

    def __post_init__(self) -> None:
        for name in ('height', 'width'):
            value = getattr(self, name)
            if not is_int(value) or value < MIN_SIZE:
                raise WorldConfigError(f'WorldConfig.{name} must be an int >= {MIN_SIZE}, got {value!r}')
        p = self.anomaly_prob
        if not is_number(p) or not 0.0 <= p <= 1.0:
            raise WorldConfigError(f'WorldConfig.anomaly_prob must be a number in [0, 1], got {p!r}')
        if not is_int(self.max_anomalies) or self.max_anomalies < 0:
            raise WorldConfigError(f'WorldConfig.max_anomalies must be an int >= 0, got {self.max_anomalies!r}')
        if self.max_anomalies == 0 and p > 0:
            raise WorldConfigError(f'WorldConfig.max_anomalies must be >= 1 when anomaly_prob > 0 (anomaly_prob={p!r})')
        if self.anomaly_family not in ANOMALY_FAMILIES:
            raise WorldConfigError(
                f'WorldConfig.anomaly_family must be one of {ANOMALY_FAMILIES}, got {self.anomaly_family!r}'
            )
        if not is_int(self.ignore_band) or self.ignore_band < 0:
            raise WorldConfigError(f'WorldConfig.ignore_band must be an int >= 0, got {self.ignore_band!r}')
        if not isinstance(self.weather, str) or (self.weather != 'random' and self.weather not in WEATHERS):
            raise WorldConfigError(f"WorldConfig.weather must be 'random' or one of {WEATHERS}, got {self.weather!r}")
        if not isinstance(self.void_objects, (bool, np.bool_)):
            raise WorldConfigError(f'WorldConfig.void_objects must be a bool, got {self.void_objects!r}')
