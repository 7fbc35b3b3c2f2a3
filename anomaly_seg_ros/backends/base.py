"""The inference backend contract: normalised input batch in, logits out, on the backend's device."""

from __future__ import annotations

from typing import Protocol

import torch

__all__ = ['Backend']


class Backend(Protocol):
    name: str
    device: torch.device

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x: Bx3xhxw float32 (any device) -> logits BxCxh'xw' on self.device."""
        ...
