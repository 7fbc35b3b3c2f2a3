"""An imported ONNX net as a torch module: forward(x 1x3xhxw float32) -> {'logits': ..., TAP: ...}.

The torch backend's eager reference for `format: onnx` model folders: the net runs in ONNX Runtime on the CPU,
with the model.yaml taps (tensor names inside the graph) exposed as extra graph outputs (compose.expose_taps).
The modified graph is handed to ONNX Runtime as bytes, with the model folder as the place its external-data
files are found, so nothing is written beside the user's file and weights stay where the import put them.
It has no parameters and is not traceable: the fused graph is composed from the file instead (compose.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import ModelConfig
from ..errors import BackendError
from ..scoring import LOGITS
from .compose import expose_taps, image_input, load_graph
from .onnx_file import check_onnx_input
from .onnxruntime_backend import default_threads

__all__ = ['OnnxNet']

#: ONNX Runtime session option: where a model loaded from bytes finds its external-data files
EXTERNAL_DATA_DIR = 'session.model_external_initializers_file_folder_path'


def _session(model_bytes: bytes, external_dir: str, what: str, threads: int) -> Any:
    """A CPU session with the options of onnxruntime_backend.make_session, for a model held in memory."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise BackendError(f'{what}: running an ONNX net needs the onnxruntime package') from None
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = threads or default_threads()
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    so.add_session_config_entry(EXTERNAL_DATA_DIR, external_dir)
    try:
        return ort.InferenceSession(model_bytes, so, providers=['CPUExecutionProvider'])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own pybind exception types
        raise BackendError(f'{what}: ONNX Runtime cannot load it: {type(e).__name__}: {e}') from None


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
        self._session = _session(proto.SerializeToString(), str(model.weights.parent), str(model.weights), threads)

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
