"""GraphSource: everything a backend needs to build the pipeline graph of one model folder and scorer.

The torch backend asks it for eager graphs (`graph(frame_hw)`); the onnxruntime and tensorrt backends ask it
for the same graph as one fused ONNX file (`onnx(frame_hw)`, exported once per camera size and cached by
content, see export.py). The net is loaded once and shared by every camera size's graph.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import load_state_dict_strict
from ..config import ModelConfig
from ..errors import BackendError, CheckpointError
from ..graph import PipelineGraph, build_graph, check_scorer_needs, probe_logits_hw
from ..nets import TappedNet, build_net
from ..scoring import Scorer

__all__ = ['GraphSource', 'file_sha256', 'load_torch_net']


def load_torch_net(model: ModelConfig) -> nn.Module:
    """The model folder's net as an nn.Module returning logits (format torch or torchscript)."""
    if model.format == 'torch':
        net = build_net(model.architecture, model.num_outputs, **model.arch_args)
        load_state_dict_strict(net, model.weights)
        return net.eval()
    if model.format == 'torchscript':
        try:
            return torch.jit.load(str(model.weights), map_location='cpu').eval()
        except Exception as e:  # noqa: BLE001 - torch.jit raises RuntimeError and friends for a bad archive
            raise CheckpointError(f'{model.weights}: cannot load TorchScript: {type(e).__name__}: {e}') from None
    raise BackendError(f'{model.directory}: format {model.format} has no torch net')


@dataclass
class GraphSource:
    model: ModelConfig
    scorer: Scorer
    aux: tuple[str, ...] = ()
    #: an already-built net (training validates its own net this way); loaded from the folder when None
    net: nn.Module | None = None
    _named_net: nn.Module | None = field(default=None, init=False, repr=False)
    _logits_hw: tuple[int, int] | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        check_scorer_needs(self.model, self.scorer)
        self.scorer.eval()

    def named_net(self) -> nn.Module:
        """The net as a module returning {'logits', taps...}; for an ONNX file, run by ONNX Runtime (eager only)."""
        with self._lock:
            if self._named_net is None:
                if self.model.format == 'onnx':
                    from .onnx_net import OnnxNet  # noqa: PLC0415 - imports onnx and onnxruntime

                    self._named_net = OnnxNet(self.model)
                else:
                    net = self.net if self.net is not None else load_torch_net(self.model)
                    self._named_net = TappedNet(net.eval(), self.model.taps, self.model.name).eval()
            return self._named_net

    def logits_hw(self) -> tuple[int, int]:
        if self._logits_hw is None:
            self._logits_hw = probe_logits_hw(self.model, self.named_net())
        return self._logits_hw

    def graph(self, frame_hw: tuple[int, int]) -> PipelineGraph:
        """The eager graph for one camera size (cheap: the net is shared)."""
        return build_graph(self.model, self.named_net(), self.scorer, frame_hw, self.aux, self.logits_hw())

    @property
    def output_names(self) -> tuple[str, ...]:
        return ('labels', 'score', *self.aux)

    @property
    def exportable(self) -> bool:
        """Whether `onnx()` can make a fused graph (own nets by tracing, ONNX files by composition)."""
        return True

    def onnx(self, frame_hw: tuple[int, int]) -> Path:
        """The fused ONNX file of this pipeline at one camera size, from the content-keyed cache."""
        from .export import fused_onnx_for  # noqa: PLC0415 - keeps onnx off the import path of torch-only use

        return fused_onnx_for(self, frame_hw)

    def key(self, frame_hw: tuple[int, int]) -> str:
        """Content key of the fused graph: weights, contract, scorer config and artefacts, aux, camera size."""
        h = hashlib.sha256()
        m = self.model
        h.update(file_sha256(m.weights).encode())
        if m.format == 'onnx':  # an ONNX file's weights may live in external files beside it
            from .onnx_file import read_onnx_file_info  # noqa: PLC0415 - needs the onnx package

            for rel in read_onnx_file_info(m.weights).external_data:
                h.update(rel.encode())
                h.update(file_sha256(m.weights.parent / rel).encode())
        if self.net is not None:  # an in-memory net: its weights, not the folder's file, define the graph
            for k, v in self.net.state_dict().items():
                h.update(k.encode())
                h.update(v.detach().cpu().contiguous().numpy().tobytes())
        h.update(
            repr((m.format, m.architecture, sorted(m.arch_args.items()), m.input, m.classes, m.void_channel)).encode()
        )
        h.update(repr(sorted(m.taps.items())).encode())
        entry = m.scorers.get(self.scorer.name, {})
        h.update(repr((self.scorer.name, sorted(entry.get('params', {}).items()))).encode())
        for key in sorted(entry.get('artefacts', {})):
            h.update(file_sha256(m.directory / entry['artefacts'][key]).encode())
        h.update(repr((self.aux, frame_hw)).encode())
        return h.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MiB blocks (weights and engines can be gigabytes)."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()
