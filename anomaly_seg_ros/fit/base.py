"""What a fitter returns, and the atomic artefact write every fitter uses."""

from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ['FitResult', 'int_at_least', 'save_artefact']


@dataclass
class FitResult:
    """What `fit` records in model.yaml and prints.

    scorer:    the scorer name (model.yaml `scorers:` key).
    artefacts: artefact key -> file name written inside the model folder.
    params:    the scorer's parameters as fitted (model.yaml `scorers.NAME.params`).
    taps:      feature taps the scorer needs: name -> module path (own nets) or ONNX tensor name; {} for none.
    summary:   figures for the log and --json (plain numbers, strings, lists, dicts).
    record_scorer: False for a fit that is no scorer (fit meta): no `scorers:` entry is written; `scorer` is
               then the scorer the fit worked with (the check runs the Pipeline with it).
    model_yaml: top-level model.yaml keys the fit sets (fit meta: `obstacles`), merged over what is there.
    """

    scorer: str
    artefacts: dict[str, str]
    params: dict[str, Any]
    taps: dict[str, str] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    record_scorer: bool = True
    model_yaml: dict[str, Any] = field(default_factory=dict)


def save_artefact(path: Path, obj: Any) -> Path:
    """torch.save to a temporary file beside `path`, then os.replace: a reader (a node starting up) never
    sees a half-written artefact, and a failed fit leaves the previous one in place. Save only tensors,
    numbers, strings, lists and dicts: the scorer loads it with torch.load(weights_only=True)."""
    import torch  # noqa: PLC0415 - keeps `anomaly-seg --help` free of torch

    tmp = path.with_name(f'.{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp')
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def int_at_least(lo: int) -> Callable[[str], int]:
    """An argparse type for fitter options: a whole number >= lo, else a message naming the value."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = lo - 1
        if value < lo:
            raise argparse.ArgumentTypeError(f'expected a whole number >= {lo}, got {text!r}')
        return value

    return parse
