"""Inference backends chosen by a parameter: torch (state dict or TorchScript) and onnxruntime; tensorrt
plugs in here with the TensorRT issue."""

from __future__ import annotations

import torch

from ..checkpoint import load_state_dict_strict
from ..config import BACKENDS, ModelConfig
from ..errors import BackendError, CheckpointError
from ..nets import build_net
from .base import Backend
from .onnxruntime_backend import OnnxRuntimeBackend
from .torch_backend import TorchBackend

__all__ = ['BACKENDS', 'Backend', 'OnnxRuntimeBackend', 'TorchBackend', 'build_backend', 'load_torch_net']


def load_torch_net(model: ModelConfig) -> torch.nn.Module:
    """The model folder's net as an nn.Module (format torch or torchscript)."""
    if model.format == 'torch':
        net = build_net(model.architecture, model.num_outputs, **model.arch_args)
        load_state_dict_strict(net, model.weights)
        return net
    if model.format == 'torchscript':
        try:
            return torch.jit.load(str(model.weights), map_location='cpu')
        except Exception as e:  # noqa: BLE001 - torch.jit raises RuntimeError and friends for a bad archive
            raise CheckpointError(f'{model.weights}: cannot load TorchScript: {type(e).__name__}: {e}') from None
    raise BackendError(f'{model.directory}: format {model.format} has no torch net; use backend onnxruntime')


def build_backend(model: ModelConfig, backend: str = 'torch', device: str = 'cpu') -> Backend:
    if backend == 'torch':
        return TorchBackend(load_torch_net(model), device)
    if backend == 'onnxruntime':
        if model.format == 'onnx':
            return OnnxRuntimeBackend(model.weights, device)
        from .export import exported_onnx_for

        return OnnxRuntimeBackend(exported_onnx_for(model, load_torch_net(model)), device)
    if backend == 'tensorrt':
        raise BackendError(
            'backend tensorrt is not implemented yet (TensorRT compilation is a later issue); use torch or onnxruntime'
        )
    raise BackendError(f'unknown backend {backend!r}; available: {", ".join(BACKENDS)}')
