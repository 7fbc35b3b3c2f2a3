"""ONNX Runtime backend: runs any segmentation ONNX file (NCHW float input, NCHW logits output)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import BackendError
from .onnx_file import fixed_batch_error

__all__ = ['OnnxRuntimeBackend']


class OnnxRuntimeBackend:
    name = 'onnxruntime'

    def __init__(self, path: Path, device: str = 'cpu') -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendError(
                'backend onnxruntime: the onnxruntime package is not installed '
                '(pip install onnxruntime, or onnxruntime-gpu for CUDA)'
            ) from None
        providers: list[str | tuple[str, dict[str, int]]] = ['CPUExecutionProvider']  # name or (name, options)
        if device.startswith('cuda'):
            if 'CUDAExecutionProvider' not in ort.get_available_providers():
                raise BackendError(
                    f'backend onnxruntime: device {device!r} needs onnxruntime-gpu; available '
                    f'providers: {", ".join(ort.get_available_providers())}'
                )
            index = int(device.split(':')[1]) if ':' in device else 0
            providers = [('CUDAExecutionProvider', {'device_id': index}), 'CPUExecutionProvider']
        try:
            self.session = ort.InferenceSession(str(path), providers=providers)
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own pybind exception types
            raise BackendError(f'{path}: ONNX Runtime cannot load it: {type(e).__name__}: {e}') from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise BackendError(f'{path}: expected one input (the image), found {[i.name for i in inputs]}')
        self.input_name = inputs[0].name
        self.input_shape = inputs[0].shape  # ints for fixed dims, strings/None for dynamic ones
        batch_error = fixed_batch_error(path, self.input_shape)
        if batch_error:
            raise BackendError(batch_error)
        self.output_name = self.session.get_outputs()[0].name
        self.device = torch.device('cpu')  # outputs come back as host arrays
        self.path = path

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run([self.output_name], {self.input_name: np.ascontiguousarray(x.cpu().numpy())})[0]
        return torch.from_numpy(out)
