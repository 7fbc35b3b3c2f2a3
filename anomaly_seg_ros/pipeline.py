"""The one inference path: preprocess -> backend -> scorer -> postprocess (-> segments, later).

The node, the evaluator, the benchmark and the demo all call `Pipeline.__call__`; there is no second path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from .backends import Backend, build_backend
from .config import ModelConfig, load_model_config, resolve_model_dir
from .errors import BackendError
from .preprocess import Preprocessor
from .scoring import Scorer, build_scorer

__all__ = ['Pipeline', 'Result', 'STAGES']

#: stage names in the order they run; timings use these keys (milliseconds) plus 'total'.
STAGES = ('preprocess', 'backend', 'scorer', 'postprocess')


@dataclass
class Result:
    """Outputs at the input image's resolution."""

    labels: np.ndarray  # HxW uint8 trainIds
    score: np.ndarray  # HxW float32, higher = more anomalous, within score_range
    score_range: tuple[float, float]
    timings: dict[str, float] = field(default_factory=dict)  # ms per stage, and 'total'


class Pipeline:
    def __init__(self, model: ModelConfig, backend: Backend, scorer: Scorer) -> None:
        self.model = model
        self.backend = backend
        self.scorer = scorer.eval().to(backend.device)
        self._preprocess = Preprocessor(model.input)

    @classmethod
    def from_model(
        cls, model: str | Path = 'default', scorer: str = '', backend: str = 'torch', device: str = 'cpu'
    ) -> Pipeline:
        """Build from a model folder or a name under models/; raises ConfigError/CheckpointError/BackendError."""
        cfg = load_model_config(resolve_model_dir(str(model)))
        scorer_module = build_scorer(scorer or cfg.scorer, cfg.num_classes, cfg.void_channel)
        return cls(cfg, build_backend(cfg, backend, device), scorer_module)

    @property
    def score_range(self) -> tuple[float, float]:
        return self.scorer.score_range

    def preprocess(self, rgb: np.ndarray) -> torch.Tensor:
        """RGB uint8 HxWx3 -> normalised 1x3xhxw float32 at the model's input size."""
        return self._preprocess(rgb)

    @torch.inference_mode()
    def __call__(self, rgb: np.ndarray) -> Result:
        t0 = time.perf_counter()
        x = self.preprocess(rgb)
        t1 = time.perf_counter()
        logits = self.backend(x)
        _sync(logits)
        if logits.ndim != 4 or logits.shape[1] != self.model.num_outputs:
            raise BackendError(
                f'model {self.model.name!r}: expected logits 1x{self.model.num_outputs}xHxW '
                f'({self.model.num_classes} classes{" + void" if self.model.void_channel else ""}), '
                f'got {tuple(logits.shape)}'
            )
        t2 = time.perf_counter()
        score_t = self.scorer(logits, x.to(logits.device))[0]
        # max().indices, not argmax(): the same first-maximum ids, about 4x faster over the channel dim on CPU
        labels_t = logits[0, : self.model.num_classes].max(dim=0).indices.to(torch.uint8)
        score = score_t.float().cpu().numpy()
        labels = labels_t.cpu().numpy()
        t3 = time.perf_counter()
        h, w = rgb.shape[:2]
        # Upsampling the 1-channel score and the label map is far cheaper than upsampling C logits; each is
        # resized on its own, since a scorer may return a map of another size than the logits.
        if score.shape != (h, w):
            score = cv2.resize(score, (w, h), interpolation=cv2.INTER_LINEAR)
        if labels.shape != (h, w):
            labels = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)
        t4 = time.perf_counter()
        ms = [(b - a) * 1e3 for a, b in ((t0, t1), (t1, t2), (t2, t3), (t3, t4))]
        timings = dict(zip(STAGES, ms, strict=True))
        timings['total'] = (t4 - t0) * 1e3
        return Result(labels=labels, score=score, score_range=self.score_range, timings=timings)

    def warmup(self, runs: int = 2) -> None:
        """First calls pay for allocator and kernel selection; do it before the first camera frame."""
        frame = np.zeros((self.model.input.height, self.model.input.width, 3), np.uint8)
        for _ in range(runs):
            self(frame)


def _sync(t: torch.Tensor) -> None:
    if t.device.type == 'cuda':
        torch.cuda.synchronize(t.device)
