"""Build networks by name from a small explicit registry; an unknown name lists the valid ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from ..errors import ConfigError
from .icnet import ICNetSmall

__all__ = ['NETS', 'build_net']

NETS: dict[str, Callable[..., nn.Module]] = {
    'icnet_small': ICNetSmall,
}


def build_net(name: str, num_classes: int, **kwargs: Any) -> nn.Module:
    if name not in NETS:
        raise ConfigError(f'unknown architecture {name!r}; registered: {", ".join(sorted(NETS))}')
    for key, value in kwargs.items():
        if key == 'width' and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ConfigError(f'architecture {name!r}: arch_args width must be an int >= 1, got {value!r}')
    try:
        return NETS[name](num_classes=num_classes, **kwargs)
    except (TypeError, ValueError, RuntimeError) as e:
        # a bad argument surfaces deep inside layer constructors (e.g. a negative channel count)
        raise ConfigError(f'architecture {name!r}: bad arch_args {kwargs}: {type(e).__name__}: {e}') from None
