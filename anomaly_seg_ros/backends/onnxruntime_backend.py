"""ONNX Runtime backend: runs the fused pipeline graph (frame -> labels, score, aux), one session per camera size.

CPU: all graph optimisations, intra-op threads = the cores this process may use (`threads` overrides),
sequential execution. CUDA (onnxruntime-gpu): the CUDA execution provider with IO binding, so the frame is
copied to the device once and the outputs stay there until they are read back for publishing.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendError
from .base import Capabilities
from .source import GraphSource

__all__ = ['OnnxRuntimeBackend', 'capabilities', 'default_threads', 'make_session']

log = logging.getLogger(__name__)

#: camera sizes whose sessions are kept; the oldest goes first (its graph stays in the disk cache)
MAX_SIZES = 8


def _ort() -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise BackendError(
            'backend onnxruntime: the onnxruntime package is not installed '
            '(pip install onnxruntime, or onnxruntime-gpu for CUDA)'
        ) from None
    return ort


def capabilities() -> Capabilities:
    try:
        ort = _ort()
    except BackendError as e:
        return Capabilities('onnxruntime', (), (), True, available=str(e))
    cuda = 'CUDAExecutionProvider' in ort.get_available_providers()
    return Capabilities('onnxruntime', ('cpu', 'cuda') if cuda else ('cpu',), ('fp32',), fused=True)


def default_threads() -> int:
    """Cores this process may run on (a container or taskset limit counts, os.cpu_count() does not see it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def make_session(
    path: Path | bytes, device: str = 'cpu', threads: int = 0, external_dir: str | None = None, what: str = ''
) -> Any:
    """An InferenceSession tuned for one-frame-at-a-time inference; BackendError names the file on failure.

    `path` may be the model's bytes (a graph edited in memory); `external_dir` is then where its external-data
    files are, and `what` names it in errors."""
    ort = _ort()
    what = what or str(path)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = threads or default_threads()
    so.inter_op_num_threads = 1
    so.log_severity_level = 3  # warnings about unused initialisers etc. are noise on a vehicle log
    # The pool threads spin between the graph's nodes (a wake-up per node would cost more), but stop the moment a
    # run returns: a camera node runs once a frame, and a thread still spinning after the run takes a core from
    # whatever runs next on it (other nodes, the host's publishing, the torch reference in a bench).
    so.add_session_config_entry('session.force_spinning_stop', '1')
    if external_dir is not None:
        so.add_session_config_entry('session.model_external_initializers_file_folder_path', external_dir)
    providers: list[str | tuple[str, dict[str, Any]]] = ['CPUExecutionProvider']
    if device.startswith('cuda'):
        if 'CUDAExecutionProvider' not in ort.get_available_providers():
            raise BackendError(
                f'backend onnxruntime: device {device!r} needs onnxruntime-gpu; available '
                f'providers: {", ".join(ort.get_available_providers())}'
            )
        providers = [('CUDAExecutionProvider', {'device_id': cuda_index(device)}), 'CPUExecutionProvider']
    try:
        return ort.InferenceSession(path if isinstance(path, bytes) else str(path), so, providers=providers)
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own pybind exception types
        raise BackendError(f'{what}: ONNX Runtime cannot load it: {type(e).__name__}: {e}') from None


def cuda_index(device: str) -> int:
    try:
        return int(device.split(':')[1]) if ':' in device else 0
    except ValueError:
        raise BackendError(f'bad device {device!r}: expected cpu, cuda or cuda:N') from None


class _Session:
    """One camera size's session, with IO binding on CUDA."""

    def __init__(self, path: Path, device: str, threads: int) -> None:
        self.session = make_session(path, device, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.cuda = device.startswith('cuda')
        self.binding = None
        if self.cuda:
            self.binding = self.session.io_binding()
            for name in self.output_names:
                self.binding.bind_output(name, 'cuda', cuda_index(device))
        self.device_index = cuda_index(device) if self.cuda else 0

    def __call__(self, frame: np.ndarray) -> dict[str, np.ndarray]:
        x = np.ascontiguousarray(frame)[None]
        if self.binding is None:
            outs = self.session.run(self.output_names, {self.input_name: x})
            return {n: o[0] for n, o in zip(self.output_names, outs, strict=True)}
        self.binding.bind_cpu_input(self.input_name, x)
        self.session.run_with_iobinding(self.binding)
        outs = self.binding.copy_outputs_to_cpu()
        return {n: o[0] for n, o in zip(self.output_names, outs, strict=True)}


class OnnxRuntimeBackend:
    name = 'onnxruntime'

    def __init__(self, source: GraphSource, device: str = 'cpu', precision: str = 'fp32', threads: int = 0) -> None:
        if precision != 'fp32':
            raise BackendError(f'backend onnxruntime: precision {precision!r}: only fp32 (use tensorrt for fp16/int8)')
        if not (device == 'cpu' or device.startswith('cuda')):
            raise BackendError(f'backend onnxruntime: bad device {device!r}: expected cpu, cuda or cuda:N')
        _ort()
        self.source = source
        self.device = device
        self.precision = precision
        self.threads = threads
        self._sessions: dict[tuple[int, int], _Session] = {}
        self._closed = False

    def session(self, frame_hw: tuple[int, int]) -> _Session:
        s = self._sessions.get(frame_hw)
        if s is None:
            if self._sessions:
                log.warning(
                    'onnxruntime backend: new camera size %dx%d: exporting and loading a graph for it',
                    frame_hw[1],
                    frame_hw[0],
                )
            s = _Session(self.source.onnx(frame_hw), self.device, self.threads)
            if len(self._sessions) >= MAX_SIZES:  # a stream of odd sizes must not grow memory without bound
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[frame_hw] = s
        return s

    def prepare(self, frame_hw: tuple[int, int]) -> None:
        """Export and load the graph for a camera size ahead of its first frame."""
        self.session(frame_hw)

    def __call__(self, frame: np.ndarray) -> dict[str, np.ndarray]:
        if self._closed:
            raise BackendError('onnxruntime backend: used after close()')
        return self.session((int(frame.shape[0]), int(frame.shape[1])))(frame)

    def close(self) -> None:
        self._sessions.clear()
        self._closed = True
