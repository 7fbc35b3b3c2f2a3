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
    try:
        return NETS[name](num_classes=num_classes, **kwargs)
    except TypeError as e:
        raise ConfigError(f'architecture {name!r}: bad arch_args {kwargs}: {e}') from None
