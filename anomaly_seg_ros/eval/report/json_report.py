"""report.json: the nested report dict as strict JSON, written atomically.

NaN and +-inf become ``null`` (JSON has no NaN), numpy scalars and arrays become plain numbers and lists,
tuples become lists, dataclasses dicts and paths strings; keys keep their order.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ['atomic_write', 'to_jsonable', 'write_json_report']


def to_jsonable(obj: Any, *, keep_nonfinite: bool = False, _where: str = 'report') -> Any:
    """Plain-Python copy of ``obj`` that ``json.dumps(..., allow_nan=False)`` accepts.

    NaN / +-inf become None (unless ``keep_nonfinite``), numpy scalars -> Python scalars, arrays / tuples /
    sets -> lists, dataclass instances -> dicts, paths -> str, mapping keys -> str. Anything else raises
    TypeError naming where it sits (a silent ``str()`` could hide a wrong number).
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item(), keep_nonfinite=keep_nonfinite, _where=_where)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if keep_nonfinite or math.isfinite(obj) else None
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist(), keep_nonfinite=keep_nonfinite, _where=_where)
    if isinstance(obj, Mapping):
        return {
            str(k.item() if isinstance(k, np.generic) else k): to_jsonable(
                v, keep_nonfinite=keep_nonfinite, _where=f'{_where}.{k}'
            )
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        return [to_jsonable(v, keep_nonfinite=keep_nonfinite, _where=f'{_where}[{i}]') for i, v in enumerate(items)]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(
            {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)},
            keep_nonfinite=keep_nonfinite,
            _where=_where,
        )
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f'{_where}: {type(obj).__name__} is not JSON-serialisable')


def atomic_write(path: Path, data: str) -> None:
    """Write ``data`` (UTF-8) to ``path`` via a temporary file in the same folder, so no half file remains."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # open(..., 'x') rather than mkstemp: the file gets the usual umask permissions, not 0600
    tmp = path.parent / f'.{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp'
    try:
        with open(tmp, 'x', encoding='utf-8') as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_json_report(report: dict, path: Path) -> None:
    """Write ``report`` as strict JSON (indent 2, keys in their order, NaN/inf -> null, numpy -> plain)."""
    text = json.dumps(to_jsonable(report), indent=2, sort_keys=False, allow_nan=False, ensure_ascii=False)
    atomic_write(Path(path), text + '\n')
