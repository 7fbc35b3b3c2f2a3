"""PyTorch backend: the eager CPU path is the reference every other backend is checked against.

On CUDA it can run in fp16 (autocast), with channels-last memory, and replay a captured CUDA graph per
camera size (`cuda_graphs=True`: static input and output buffers, no allocation per frame).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from ..errors import BackendError
from ..graph import PipelineGraph
from .base import Capabilities
from .source import GraphSource

__all__ = ['TorchBackend', 'capabilities']

log = logging.getLogger(__name__)

#: camera sizes whose graphs (and CUDA graphs) are kept; the oldest goes first
MAX_SIZES = 8


def capabilities() -> Capabilities:
    cuda = torch.cuda.is_available()
    return Capabilities(
        name='torch',
        devices=('cpu', 'cuda') if cuda else ('cpu',),
        precisions=('fp32', 'fp16') if cuda else ('fp32',),
        fused=False,
    )


class _Captured:
    """One camera size's CUDA graph: copy the frame into a static buffer, replay, read the static outputs."""

    def __init__(self, graph: PipelineGraph, frame_hw: tuple[int, int], device: torch.device, fp16: bool) -> None:
        self.static_in = torch.zeros(1, *frame_hw, 3, dtype=torch.uint8, device=device)
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream), torch.autocast('cuda', torch.float16, enabled=fp16):
            for _ in range(3):  # warm up kernels and the allocator outside the capture
                graph(self.static_in)
        torch.cuda.current_stream(device).wait_stream(stream)
        self.cuda_graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.cuda_graph), torch.autocast('cuda', torch.float16, enabled=fp16):
            self.static_out = graph(self.static_in)

    def __call__(self, frame: torch.Tensor) -> tuple[torch.Tensor, ...]:
        self.static_in.copy_(frame, non_blocking=True)
        self.cuda_graph.replay()
        return self.static_out


class TorchBackend:
    name = 'torch'

    def __init__(
        self,
        source: GraphSource,
        device: str = 'cpu',
        precision: str = 'fp32',
        cuda_graphs: bool = False,
        channels_last: bool = True,
    ) -> None:
        try:
            self._device = torch.device(device)
        except RuntimeError as e:
            raise BackendError(f'torch backend: bad device {device!r}: {e}') from None
        cuda = self._device.type == 'cuda'
        if cuda and not torch.cuda.is_available():
            raise BackendError(f'torch backend: device {device!r} requested but CUDA is not available')
        if precision not in ('fp32', 'fp16'):
            raise BackendError(f'torch backend: precision {precision!r} is not supported (fp32, or fp16 on cuda)')
        if precision == 'fp16' and not cuda:
            raise BackendError('torch backend: precision fp16 needs a cuda device; use fp32 on the CPU')
        if cuda_graphs and not cuda:
            raise BackendError('torch backend: cuda_graphs needs a cuda device')
        if source.model.format == 'onnx' and cuda:
            raise BackendError('torch backend: an imported ONNX net runs on the CPU only here; use onnxruntime')
        self.device = str(self._device)
        self.precision = precision
        self.source = source
        self.cuda_graphs = cuda_graphs
        net = source.named_net().to(self._device)
        if cuda and channels_last:
            net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        source.scorer.to(self._device)
        self._graphs: dict[tuple[int, int], PipelineGraph] = {}
        self._captured: dict[tuple[int, int], _Captured] = {}
        self.stage_ms: dict[str, float] = {}  # filled when `profile` is set: pre, net, post of the last frame
        self.profile = False
        self._closed = False

    def graph(self, frame_hw: tuple[int, int]) -> PipelineGraph:
        g = self._graphs.get(frame_hw)
        if g is None:
            g = self.source.graph(frame_hw).to(self._device)
            if len(self._graphs) >= MAX_SIZES:  # a stream of odd sizes must not grow memory without bound
                old = next(iter(self._graphs))
                self._graphs.pop(old)
                self._captured.pop(old, None)
            self._graphs[frame_hw] = g
        return g

    @torch.inference_mode()
    def __call__(self, frame: np.ndarray) -> dict[str, np.ndarray]:
        if self._closed:
            raise BackendError('torch backend: used after close()')
        hw = (int(frame.shape[0]), int(frame.shape[1]))
        graph = self.graph(hw)
        x = torch.from_numpy(np.ascontiguousarray(frame))[None]
        cuda = self._device.type == 'cuda'
        if cuda:
            x = x.pin_memory().to(self._device, non_blocking=True)
        fp16 = self.precision == 'fp16'
        if self.cuda_graphs:
            if hw not in self._captured:
                log.info('torch backend: capturing a CUDA graph for %dx%d', hw[1], hw[0])
                self._captured[hw] = _Captured(graph, hw, self._device, fp16)
            outs = self._captured[hw](x)
        elif self.profile:
            outs = self._profiled(graph, x, fp16)
        else:
            with torch.autocast('cuda', torch.float16, enabled=fp16 and cuda):
                outs = graph(x)
        return {
            name: t[0].float().cpu().numpy() if name != 'labels' else t[0].cpu().numpy()
            for name, t in zip(graph.output_names, outs, strict=True)
        }

    def _profiled(self, graph: PipelineGraph, x: torch.Tensor, fp16: bool) -> tuple[torch.Tensor, ...]:
        cuda = self._device.type == 'cuda'
        marks = [time.perf_counter()]

        def mark() -> None:
            if cuda:
                torch.cuda.synchronize(self._device)
            marks.append(time.perf_counter())

        with torch.autocast('cuda', torch.float16, enabled=fp16 and cuda):
            image = graph.pre(x)
            mark()
            outputs = dict(graph.net(image))
            outputs['image'] = image
            mark()
            outs = graph.post(outputs)
            mark()
        self.stage_ms = {
            k: (b - a) * 1e3 for k, a, b in zip(('pre', 'net', 'post'), marks[:-1], marks[1:], strict=True)
        }
        return outs

    def close(self) -> None:
        self._graphs.clear()
        self._captured.clear()
        self._closed = True
        if self._device.type == 'cuda':
            torch.cuda.empty_cache()
