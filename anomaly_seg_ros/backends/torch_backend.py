"""Eager PyTorch backend: the reference every compiled backend is checked against."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import BackendError

__all__ = ['TorchBackend']


class TorchBackend:
    name = 'torch'

    def __init__(self, net: nn.Module, device: str = 'cpu') -> None:
        try:
            self.device = torch.device(device)
        except RuntimeError as e:
            raise BackendError(f'torch backend: bad device {device!r}: {e}') from None
        if self.device.type == 'cuda' and not torch.cuda.is_available():
            raise BackendError(f'torch backend: device {device!r} requested but CUDA is not available')
        self.net = net.eval().to(self.device)

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x.to(self.device, non_blocking=True))
        return out
