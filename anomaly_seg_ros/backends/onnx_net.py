"""An imported ONNX net as a torch module: forward(x 1x3xhxw float32) -> {'logits': ..., TAP: ...}.

The torch backend's eager reference for `format: onnx` model folders: the net runs in ONNX Runtime on the CPU,
with the model.yaml taps (tensor names inside the graph) exposed as extra graph outputs (compose.expose_taps).
The modified graph is handed to ONNX Runtime as bytes, with the model folder as the place its external-data
files are found, so nothing is written beside the user's file and weights stay where the import put them.
It has no parameters and is not traceable: the fused graph is composed from the file instead (compose.py).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..config import ModelConfig
from ..errors import BackendError
from ..scoring import LOGITS
from .compose import expose_taps, image_input, load_graph
from .onnx_file import check_onnx_input
from .onnxruntime_backend import make_session

__all__ = ['OnnxNet']


class OnnxNet(nn.Module):
    """The model folder's ONNX net (first graph output = logits) plus its declared taps, run by ONNX Runtime."""

    def __init__(self, model: ModelConfig, threads: int = 0) -> None:
        super().__init__()
        self.model_name = model.name
        self.path = model.weights
        check_onnx_input(model)
        proto = load_graph(model.weights)
        try:
            self.input_name = image_input(proto)
        except BackendError as e:
            raise BackendError(f'{model.weights}: {e}') from None
        if not proto.graph.output:
            raise BackendError(f'{model.weights}: the graph has no outputs')
        self.taps = dict(model.taps)
        self._fetch = [proto.graph.output[0].name, *self.taps]
        proto = expose_taps(proto, self.taps, model.weights)
        self._session = make_session(
            proto.SerializeToString(), 'cpu', threads, external_dir=str(model.weights.parent), what=str(model.weights)
        )

    @property
    def output_names(self) -> tuple[str, ...]:
        return (LOGITS, *self.taps)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        arr = np.ascontiguousarray(x.detach().to('cpu', torch.float32).numpy())
        try:
            outs = self._session.run(self._fetch, {self.input_name: arr})
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own pybind exception types
            raise BackendError(
                f'{self.path}: ONNX Runtime failed on a {"x".join(map(str, arr.shape))} input: '
                f'{type(e).__name__}: {str(e)[:400]}'
            ) from None
        return {name: torch.from_numpy(np.asarray(o)) for name, o in zip(self.output_names, outs, strict=True)}
