"""The one inference path: a backend running the PipelineGraph (frame -> labels, score, aux maps).

The node, the evaluator, the benchmark and the demo all call `Pipeline.__call__`; there is no second path.
What runs inside the graph (resize, normalise, net, scorer, upsampling) is in graph.py; which engine runs
it (eager torch, ONNX Runtime, TensorRT) is the backend's business (backends/).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

from .backends import Backend, GraphSource, build_backend
from .checks import image_problem
from .config import ModelConfig, load_model_config, resolve_model_dir
from .errors import BackendError, NonFiniteOutputError
from .scoring import Scorer, build_scorer

__all__ = ['STAGES', 'Pipeline', 'Result', 'check_finite']

#: stage names in the order they run; timings use these keys (milliseconds) plus 'total'.
STAGES = ('input', 'graph')


@dataclass
class Result:
    """Outputs at the input image's resolution."""

    labels: np.ndarray  # HxW uint8 trainIds
    score: np.ndarray  # HxW float32, higher = more anomalous, within score_range
    score_range: tuple[float, float]
    aux: dict[str, np.ndarray] = field(default_factory=dict)  # HxW float32 maps a later stage asked for
    timings: dict[str, float] = field(default_factory=dict)  # ms per stage, and 'total'


class Pipeline:
    def __init__(self, model: ModelConfig, backend: Backend, scorer: Scorer, backend_name: str = '') -> None:
        self.model = model
        self.backend = backend
        self.scorer = scorer
        #: what was asked for ('auto' stays visible next to the backend it chose)
        self.backend_request = backend_name or backend.name

    @classmethod
    def from_model(
        cls,
        model: str | Path = 'default',
        scorer: str = '',
        backend: str = 'auto',
        device: str = 'cpu',
        precision: str = 'auto',
        aux: tuple[str, ...] = (),
        **options: object,
    ) -> Pipeline:
        """Build from a model folder or a name under models/; raises ConfigError/CheckpointError/BackendError."""
        cfg = load_model_config(resolve_model_dir(str(model)))
        scorer_module = build_scorer(scorer or cfg.scorer, cfg)
        source = GraphSource(cfg, scorer_module, aux)
        return cls(cfg, build_backend(source, backend, device, precision, **options), scorer_module, backend)

    @classmethod
    def from_net(cls, model: ModelConfig, net: nn.Module, scorer: str = '') -> Pipeline:
        """Eager torch on the CPU around an in-memory net (training validates through this)."""
        from .backends.torch_backend import TorchBackend  # noqa: PLC0415

        scorer_module = build_scorer(scorer or model.scorer, model)
        return cls(model, TorchBackend(GraphSource(model, scorer_module, net=net)), scorer_module, 'torch')

    @property
    def score_range(self) -> tuple[float, float]:
        return self.scorer.score_range

    def __call__(self, rgb: np.ndarray) -> Result:
        t0 = time.perf_counter()
        problem = image_problem(rgb)
        if problem is not None:
            raise TypeError(problem) if not isinstance(rgb, np.ndarray) else ValueError(problem)
        frame = np.ascontiguousarray(rgb)
        t1 = time.perf_counter()
        maps = self.backend(frame)
        t2 = time.perf_counter()
        labels, score = maps.pop('labels'), maps.pop('score')
        h, w = rgb.shape[:2]
        if labels.shape != (h, w) or score.shape != (h, w) or labels.dtype != np.uint8:
            raise BackendError(
                f'backend {self.backend.name}: expected labels and score {w}x{h} (uint8, float32), got '
                f'{labels.shape} {labels.dtype} and {score.shape} {score.dtype}'
            )
        check_finite(score, self.model.name)
        timings = {'input': (t1 - t0) * 1e3, 'graph': (t2 - t1) * 1e3, 'total': (t2 - t0) * 1e3}
        return Result(labels=labels, score=score, score_range=self.score_range, aux=maps, timings=timings)

    def warmup(self, runs: int = 2, size: tuple[int, int] | None = None) -> None:
        """First calls pay for exports, allocator and kernel selection; do it before the first camera frame.
        `size` (w, h) is the camera's resolution when known, else the model's input size. A model whose output
        is not finite (NaN weights, a NaN normalisation) raises NonFiniteOutputError here, at start-up."""
        w, h = size or (self.model.input.width, self.model.input.height)
        frame = np.zeros((h, w, 3), np.uint8)
        for _ in range(runs):
            self(frame)

    def close(self) -> None:
        self.backend.close()


def check_finite(score: np.ndarray, model: str) -> None:
    """Raise NonFiniteOutputError when any score is NaN or inf. One float32 sum (NaN and inf propagate through
    it) costs about 1 ms at 2048x1024; the exact count is taken only when the sum is not finite."""
    if np.isfinite(score.sum(dtype=np.float32)):
        return
    bad = int(np.count_nonzero(~np.isfinite(score)))
    if bad == 0:  # the sum overflowed on finite values: not a broken model
        return
    raise NonFiniteOutputError(
        f'model {model!r}: {bad} of {score.size} scores are NaN or inf (broken weights, a NaN normalisation '
        'in model.yaml, or an overflow in the net); the frame is not published as a result'
    )
