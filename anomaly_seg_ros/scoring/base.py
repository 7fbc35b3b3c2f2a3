"""The scorer contract shared by every anomaly scorer.

A scorer is an nn.Module so that it runs on the backend's device and exports into the same ONNX graph as
the segmentation net (one graph per pipeline, see graph.py). It declares:

- `needs`: the named net outputs it reads. `logits` is always there; any other name is a feature tap the
  model folder declares under `taps:` in model.yaml (plus `image`, the normalised net input);
- `params`: its parameters with their defaults (model.yaml `scorers: {NAME: {params: ...}}` overrides them);
- `artefact_names`: the fitted files it loads, given as `scorers: {NAME: {artefacts: {KEY: FILE}}}` with FILE
  relative to the model folder, loaded with `torch.load(weights_only=True)`;
- `score_range`: the closed range every score lies in (math.inf where unbounded): metrics bin over it and the
  heatmap maps it to colours; nothing squashes scores silently.

A missing artefact, an unknown parameter, or a need the model cannot serve fails at start-up naming it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ..config import ModelConfig
from ..errors import CheckpointError, ConfigError

__all__ = ['IMAGE', 'LOGITS', 'Scorer', 'ScorerConfig']

#: the net's class scores, always present
LOGITS = 'logits'
#: the normalised network input (Bx3xhxw), available to every scorer (SynBoost's resynthesis compares to it)
IMAGE = 'image'


@dataclass(frozen=True)
class ScorerConfig:
    """One scorer's entry in model.yaml (`scorers: {NAME: {params: {...}, artefacts: {KEY: FILE}}}`)."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    artefacts: dict[str, Path] = field(default_factory=dict)  # resolved against the model folder

    @classmethod
    def for_model(cls, model: ModelConfig, name: str) -> ScorerConfig:
        entry = model.scorers.get(name, {})
        folder = model.directory
        return cls(
            name=name,
            params=dict(entry.get('params', {})),
            artefacts={k: folder / v for k, v in entry.get('artefacts', {}).items()},
        )


class Scorer(nn.Module):
    """forward(outputs: name -> tensor) -> scores Bxhxw float32, higher = more anomalous.

    outputs['logits'] is BxKxhxw with K = num_classes, plus one trailing void channel when the model has one.
    Class-based scorers look at the first num_classes channels only (`class_logits`), so a void channel
    never changes them.
    """

    name: str = ''
    #: an instance attribute where the taps come from the scorer's own config (flow: params.taps)
    needs: tuple[str, ...] = (LOGITS,)
    params: ClassVar[dict[str, Any]] = {}
    artefact_names: ClassVar[tuple[str, ...]] = ()
    #: closed range every score lies in; math.inf where the scorer is unbounded.
    score_range: tuple[float, float] = (0.0, 1.0)

    def __init__(self, num_classes: int, void_channel: bool = False) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.void_channel = void_channel

    @classmethod
    def from_config(cls, model: ModelConfig, cfg: ScorerConfig) -> Scorer:
        """The registry factory: checks parameters and artefacts, then builds the scorer for this model."""
        cls.check_config(cfg)
        return cls(model.num_classes, model.void_channel)

    @classmethod
    def check_config(cls, cfg: ScorerConfig) -> None:
        where = f'scorer {cfg.name!r} (model.yaml scorers.{cfg.name})'
        unknown = sorted(set(cfg.params) - set(cls.params))
        if unknown:
            known = ', '.join(sorted(cls.params)) or 'none'
            raise ConfigError(f'{where}: unknown parameter(s) {", ".join(unknown)}; it takes: {known}')
        extra = sorted(set(cfg.artefacts) - set(cls.artefact_names))
        if extra:
            known = ', '.join(cls.artefact_names) or 'none'
            raise ConfigError(f'{where}: unknown artefact key(s) {", ".join(extra)}; it loads: {known}')
        for key in cls.artefact_names:
            if key not in cfg.artefacts:
                raise ConfigError(
                    f'{where}: needs the fitted artefact {key!r}: add scorers.{cfg.name}.artefacts.{key}: FILE '
                    'to model.yaml (a file beside the model)'
                )
            if not cfg.artefacts[key].is_file():
                raise ConfigError(f'{where}: artefact {key!r}: file {cfg.artefacts[key]} not found')

    def param(self, cfg: ScorerConfig, key: str) -> Any:
        return cfg.params.get(key, self.params[key])

    @staticmethod
    def load_artefact(path: Path) -> Any:
        """A fitted artefact (tensors, dicts, lists, numbers): loaded safely, never unpickling code."""
        try:
            return torch.load(path, map_location='cpu', weights_only=True)
        except Exception as e:  # noqa: BLE001 - torch raises pickle, zip and runtime errors alike for a bad file
            raise CheckpointError(f'{path}: cannot load scorer artefact: {type(e).__name__}: {e}') from None

    @property
    def bounded(self) -> bool:
        return all(math.isfinite(v) for v in self.score_range)

    def class_logits(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = outputs[LOGITS]
        if self.void_channel:  # only slice when there is a channel to drop: a full-range Slice is a copy in ORT
            logits = logits[:, : self.num_classes]
        return logits.float()

    def forward(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError
