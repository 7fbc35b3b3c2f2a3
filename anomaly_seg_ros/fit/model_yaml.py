"""Record a fit in model.yaml: the scorer's entry (params, artefacts), its taps, optionally the default scorer.

The file is read with yaml.safe_load and written with yaml.safe_dump, every key it had kept (in order, with
the new entry replacing an older one of the same scorer), through a temporary file and os.replace, so a
crash never leaves a half-written model.yaml behind.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import yaml

from ..config import load_yaml
from ..errors import ConfigError
from .base import FitResult

__all__ = ['update_model_yaml']


def update_model_yaml(model_dir: Path, result: FitResult, set_default: bool = False) -> Path:
    """Merge `scorers: {result.scorer: {params, artefacts}}` and `result.taps` into model_dir/model.yaml.

    A tap name that exists already with another path is refused (ConfigError naming both): another scorer may
    read it. `set_default` also makes the scorer model.yaml's `scorer:`. Returns the file's path."""
    path = Path(model_dir) / 'model.yaml'
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f'{path}: expected a mapping at the top level, got {type(data).__name__}')
    taps = data.get('taps') or {}
    if not isinstance(taps, dict):
        raise ConfigError(f"{path}: key 'taps' must be a mapping, got {taps!r}")
    for name, where in result.taps.items():
        if name in taps and taps[name] != where:
            raise ConfigError(
                f'{path}: tap {name!r} is already declared as {taps[name]!r}; the {result.scorer} fit wants it at '
                f'{where!r}. Choose another tap name, or change taps.{name} by hand if nothing else uses it'
            )
    scorers = data.get('scorers') or {}
    if not isinstance(scorers, dict):
        raise ConfigError(f"{path}: key 'scorers' must be a mapping, got {scorers!r}")
    entry: dict[str, Any] = {'params': _plain(result.params), 'artefacts': dict(result.artefacts)}
    updated = dict(data)
    if result.taps:
        updated['taps'] = {**taps, **result.taps}
    if result.record_scorer:
        updated['scorers'] = {**scorers, result.scorer: entry}
    elif set_default:
        raise ConfigError(f'{path}: this fit records no scorer, so it cannot be made the default scorer')
    for key, value in result.model_yaml.items():
        old = updated.get(key)
        updated[key] = {**old, **_plain(value)} if isinstance(old, dict) and isinstance(value, dict) else _plain(value)
    if set_default:
        updated['scorer'] = result.scorer
    text = yaml.safe_dump(updated, sort_keys=False, allow_unicode=True)
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp')
    try:
        tmp.write_text(text, encoding='utf-8')
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _plain(value: Any) -> Any:
    """Parameters as plain YAML types (numpy and torch scalars become Python numbers), so safe_dump takes them."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, 'item') and callable(value.item):
        return value.item()
    return value
