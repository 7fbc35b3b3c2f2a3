"""Inference backends chosen by a parameter: torch now; onnxruntime and tensorrt plug in here."""

from __future__ import annotations

from ..checkpoint import load_state_dict_strict
from ..config import ModelConfig
from ..errors import BackendError
from ..nets import build_net
from .base import Backend
from .torch_backend import TorchBackend

__all__ = ['Backend', 'TorchBackend', 'build_backend']


def build_backend(model: ModelConfig, backend: str = 'torch', device: str = 'cpu') -> Backend:
    if backend == 'torch':
        if model.format != 'torch':
            raise BackendError(f'{model.directory}: backend torch needs format torch, model is {model.format}')
        net = build_net(model.architecture, model.num_classes, **model.arch_args)
        load_state_dict_strict(net, model.weights)
        return TorchBackend(net, device)
    raise BackendError(f'backend {backend!r} is not available in this build; available: torch')
