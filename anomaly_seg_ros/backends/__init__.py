"""Inference backends in a registry: torch (eager, the reference), onnxruntime and tensorrt (fused graphs).

`build_backend(source, 'auto', device)` takes the fastest one that can run here: tensorrt on a CUDA device
where TensorRT is installed, else torch on CUDA (fp16); on the CPU onnxruntime (measured faster than eager
torch by `anomaly-seg bench --backend all`), else torch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..config import BACKENDS
from ..errors import BackendError
from .base import Backend, Capabilities
from .source import GraphSource, load_torch_net

__all__ = [
    'BACKENDS',
    'Backend',
    'Capabilities',
    'GraphSource',
    'backend_capabilities',
    'build_backend',
    'load_torch_net',
    'resolve_precision',
]

log = logging.getLogger(__name__)


def _torch(source: GraphSource, device: str, precision: str, **options: Any) -> Backend:
    from .torch_backend import TorchBackend

    return TorchBackend(source, device, precision, **options)


def _onnxruntime(source: GraphSource, device: str, precision: str, **options: Any) -> Backend:
    from .onnxruntime_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend(source, device, precision, **options)


def _tensorrt(source: GraphSource, device: str, precision: str, **options: Any) -> Backend:
    from .tensorrt_backend import TensorRTBackend

    return TensorRTBackend(source, device, precision, **options)


def _caps(name: str) -> Capabilities:
    try:
        if name == 'torch':
            from .torch_backend import capabilities
        elif name == 'onnxruntime':
            from .onnxruntime_backend import capabilities
        else:
            from .tensorrt_backend import capabilities
    except ImportError as e:  # a broken install of an optional dependency: say so instead of crashing
        return Capabilities(name, (), (), name != 'torch', available=f'cannot import its module: {e}')
    return capabilities()


#: name -> factory(source, device, precision, **options)
REGISTRY: dict[str, Callable[..., Backend]] = {'torch': _torch, 'onnxruntime': _onnxruntime, 'tensorrt': _tensorrt}


#: options each backend takes; `auto` hands a candidate only its own (a named backend gets all, and rejects
#: an unknown one with a TypeError naming it)
OPTIONS: dict[str, tuple[str, ...]] = {
    'torch': ('cuda_graphs', 'channels_last'),
    'onnxruntime': ('threads',),
    'tensorrt': ('on_status', 'calibration', 'calib_frames', 'workspace_gb', 'build_new_sizes', 'reuse_outputs'),
}


def backend_capabilities() -> dict[str, Capabilities]:
    """Every registered backend's capabilities here (`available` says why one cannot run)."""
    return {name: _caps(name) for name in REGISTRY}


def resolve_precision(backend: str, device: str, precision: str) -> str:
    if precision != 'auto':
        return precision
    if backend == 'tensorrt' or (backend == 'torch' and device.startswith('cuda')):
        return 'fp16'
    return 'fp32'


def auto_order(device: str) -> tuple[str, ...]:
    """Backends `auto` tries, fastest first, for a device."""
    return ('tensorrt', 'torch', 'onnxruntime') if device.startswith('cuda') else ('onnxruntime', 'torch')


def _prepare(b: Backend, source: GraphSource) -> None:
    """Build the graph (ONNX session, engine) at the model's own input size now: a model that cannot export
    or load fails at start-up, not on the first camera frame."""
    prepare = getattr(b, 'prepare', None)
    if prepare is not None:
        prepare((source.model.input.height, source.model.input.width))


def build_backend(
    source: GraphSource, backend: str = 'auto', device: str = 'cpu', precision: str = 'auto', **options: Any
) -> Backend:
    """A ready backend. `auto` tries the candidates in order, skipping (with a log line) any that cannot run or
    cannot build this model's graph; a named backend that cannot run raises BackendError saying why."""
    if backend != 'auto':
        if backend not in REGISTRY:
            raise BackendError(f'unknown backend {backend!r}; available: {", ".join(BACKENDS)}')
        caps = _caps(backend)
        if caps.available is not None:
            raise BackendError(f'backend {backend}: {caps.available}')
        b = REGISTRY[backend](source, device, resolve_precision(backend, device, precision), **options)
        _prepare(b, source)
        return b
    reasons: list[str] = []
    for name in auto_order(device):
        caps = _caps(name)
        if caps.available is not None:
            reasons.append(f'{name}: {caps.available}')
            continue
        try:
            own = {k: v for k, v in options.items() if k in OPTIONS[name]}
            b = REGISTRY[name](source, device, resolve_precision(name, device, precision), **own)
            _prepare(b, source)
            log.info('backend auto: using %s on %s (%s)', name, device, '; '.join(reasons) or 'first choice')
            return b
        except BackendError as e:
            reasons.append(f'{name}: {e}')
            log.warning('backend auto: %s cannot run this model here (%s); trying the next', name, e)
    raise BackendError(f'backend auto: no backend can run on {device}: ' + '; '.join(reasons))
