"""TensorRT engine run: one deserialized engine's execution context, CUDA stream and buffers (`EngineRunner`),
and the CUDA device helpers the backend builds and runs under.

Per engine, device buffers for the input and every output are allocated once (torch CUDA tensors), as are
pinned host buffers; tensor addresses are set once; each frame is one host copy into the pinned input, one
async upload, ``execute_async_v3`` and async downloads on the runner's one CUDA stream, and one synchronize.
Nothing is allocated on the device per frame. The maps handed back are copies of the pinned buffers (callers
keep results across frames); ``reuse_outputs=True`` hands out views of the pinned buffers instead, valid until
the next call. An engine whose inputs and outputs are not the pipeline graph's is refused (`check_io`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import BackendError

__all__ = ['HW', 'EngineRunner', 'TensorSpec', 'check_io', 'gpu_identity', 'on_device', 'read_io']

HW = tuple[int, int]


_TORCH_DTYPES = {
    'FLOAT': torch.float32,
    'HALF': torch.float16,
    'BF16': torch.bfloat16,
    'INT8': torch.int8,
    'UINT8': torch.uint8,
    'INT32': torch.int32,
    'INT64': torch.int64,
    'BOOL': torch.bool,
}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    is_input: bool
    shape: tuple[int, ...]
    dtype: torch.dtype


def read_io(trt: Any, engine: Any) -> list[TensorSpec]:
    """The engine's input and output tensors (name API of TensorRT 8.5+)."""
    specs = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        dt = engine.get_tensor_dtype(name)
        dtype = _TORCH_DTYPES.get(getattr(dt, 'name', str(dt)).rsplit('.', 1)[-1])
        if dtype is None:
            raise BackendError(f'engine tensor {name!r} has type {dt}, which this backend cannot hold')
        shape = tuple(int(d) for d in engine.get_tensor_shape(name))
        specs.append(TensorSpec(name, engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT, shape, dtype))
    return specs


def check_io(specs: list[TensorSpec], frame_hw: HW, output_names: tuple[str, ...], what: str) -> None:
    """The engine must take 'frame' uint8 1xHxWx3 and give the graph's outputs as 1xHxW (labels uint8, else
    float32); anything else is an engine of another graph."""
    h, w = frame_hw
    problems = []
    inputs = [(s.name, s.shape, s.dtype) for s in specs if s.is_input]
    if inputs != [('frame', (1, h, w, 3), torch.uint8)]:
        problems.append(f'inputs {inputs}, expected frame uint8 (1, {h}, {w}, 3)')
    outputs = {s.name: s for s in specs if not s.is_input}
    if sorted(outputs) != sorted(output_names):
        problems.append(f'outputs {sorted(outputs)}, expected {sorted(output_names)}')
    for name, s in outputs.items():
        want = torch.uint8 if name == 'labels' else torch.float32
        if s.shape != (1, h, w) or s.dtype != want:
            problems.append(f'output {name} {s.dtype} {s.shape}, expected {want} (1, {h}, {w})')
    if problems:
        raise BackendError(f'{what}: the engine does not match the pipeline graph: ' + '; '.join(problems))


class EngineRunner:
    """One engine's execution context, CUDA stream and buffers, all made once; `__call__` runs one frame."""

    def __init__(
        self,
        trt: Any,
        engine: Any,
        frame_hw: HW,
        output_names: tuple[str, ...],
        device: torch.device,
        what: str,
        reuse_outputs: bool = False,
    ) -> None:
        specs = {s.name: s for s in read_io(trt, engine)}
        check_io(list(specs.values()), frame_hw, output_names, what)
        self.engine = engine
        self.what = what
        self.output_names = output_names
        self.reuse_outputs = reuse_outputs
        context = engine.create_execution_context()
        if context is None:
            raise BackendError(f'{what}: TensorRT could not create an execution context (out of GPU memory?)')
        self.context = context
        self.stream = torch.cuda.Stream(device=device)
        shape_in = specs['frame'].shape
        self.device_in = torch.empty(shape_in, dtype=torch.uint8, device=device)
        self.host_in = torch.empty(shape_in, dtype=torch.uint8, pin_memory=True)
        self._host_in = self.host_in.numpy()
        self.device_out = {n: torch.empty(specs[n].shape, dtype=specs[n].dtype, device=device) for n in output_names}
        self.host_out = {n: torch.empty(specs[n].shape, dtype=specs[n].dtype, pin_memory=True) for n in output_names}
        self._host_out = {n: t.numpy() for n, t in self.host_out.items()}
        for name, t in (('frame', self.device_in), *self.device_out.items()):
            if context.set_tensor_address(name, int(t.data_ptr())) is False:
                raise BackendError(f'{what}: TensorRT refused the device address of tensor {name!r}')

    def __call__(self, frame: np.ndarray) -> dict[str, np.ndarray]:
        np.copyto(self._host_in[0], frame)
        with torch.cuda.stream(self.stream):
            self.device_in.copy_(self.host_in, non_blocking=True)
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise BackendError(f'{self.what}: TensorRT execute_async_v3 failed (see the TensorRT log)')
            for name in self.output_names:
                self.host_out[name].copy_(self.device_out[name], non_blocking=True)
        self.stream.synchronize()
        if self.reuse_outputs:
            return {n: a[0] for n, a in self._host_out.items()}
        return {n: a[0].copy() for n, a in self._host_out.items()}

    def close(self) -> None:
        # the context before its engine, as TensorRT requires; the buffers go with the runner
        self.context = None
        self.engine = None
        self.device_out.clear()
        self.host_out.clear()
        self._host_out.clear()


def gpu_identity(device: torch.device) -> tuple[str, str]:
    """(GPU name, compute capability 'major.minor') of a CUDA device."""
    props = torch.cuda.get_device_properties(device)
    return str(props.name), f'{props.major}.{props.minor}'


@contextmanager
def on_device(device: torch.device) -> Iterator[None]:
    """TensorRT builds and runs on the current CUDA device: make it the backend's for the block."""
    with torch.cuda.device(device):
        yield
