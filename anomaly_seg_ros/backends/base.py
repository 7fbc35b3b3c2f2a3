"""The backend contract: a decoded camera frame in, the pipeline graph's maps out, as host arrays.

    backend(frame uint8 HxWx3 RGB) -> {'labels': HxW uint8, 'score': HxW float32, AUX: HxW float32, ...}

A backend runs the whole PipelineGraph (graph.py): resizing, normalisation, the net, the scorer and the
upsampling back to the camera's resolution; the host decodes and publishes. Each backend keeps what it
built per camera size (eager graphs, ONNX Runtime sessions, TensorRT engines) and frees it in `close()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = ['Backend', 'Capabilities']


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do here; `available` is None when it can run, else why not (shown to the user)."""

    name: str
    devices: tuple[str, ...]  # 'cpu', 'cuda'
    precisions: tuple[str, ...]  # 'fp32', 'fp16', 'int8'
    fused: bool  # runs the graph as one compiled program (ONNX/engine), not op by op
    available: str | None = None  # reason it cannot run here, or None


class Backend(Protocol):
    name: str
    device: str
    precision: str

    def __call__(self, frame: np.ndarray) -> dict[str, np.ndarray]:
        """frame HxWx3 uint8 RGB (any size) -> the graph's maps at that size, on the host."""
        ...

    def close(self) -> None:
        """Free sessions, engines and device buffers; the backend is unusable afterwards."""
        ...
