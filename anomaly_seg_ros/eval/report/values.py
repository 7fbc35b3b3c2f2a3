"""How one value of the report is shown: the text of numbers, dashes for missing values, notes, statuses.

Everything here returns plain data (text and flags); the template turns it into markup and escapes it.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    'DASH',
    'MAX_INLINE_VALUES',
    'Cell',
    'Value',
    'data_uri',
    'finite',
    'format_cell',
    'format_number',
    'is_scalar',
    'note_of',
    'status_kind',
]

#: lists of numbers longer than this are shown truncated in tables (the JSON has them all).
MAX_INLINE_VALUES = 24
DASH = '\u2014'


@dataclass(frozen=True)
class Value:
    """One shown scalar: its text, the full value for a tooltip (when the text rounds it), or missing (a dash)."""

    text: str = ''
    title: str = ''
    missing: bool = False


@dataclass(frozen=True)
class Cell:
    """A table cell: one value (with the section's note when it is missing) or an inline list of values."""

    values: tuple[Value, ...]
    is_list: bool = False
    more: str = ''  # ', … (30 values)' when the list is truncated
    note: str = ''  # shown beside a missing value only


MISSING = Value(missing=True)


def is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def finite(v: Any) -> float | None:
    """``v`` as a float when it is a finite real number, else None."""
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(float(v)):
        return float(v)
    return None


def note_of(d: Mapping) -> str:
    note = d.get('note')
    return note if isinstance(note, str) else ''


def status_kind(status: str) -> str:
    """The kind of a frame status: 'ok', 'dropped', 'late', 'skipped', 'failed' or 'other'."""
    s = status.strip().lower()
    if s == 'ok':
        return 'ok'
    if s.startswith('dropped'):
        return 'dropped'
    if s.startswith('late'):
        return 'late'
    if s.startswith('skipped'):
        return 'skipped'
    if s.startswith('failed'):
        return 'failed'
    return 'other'


def data_uri(data: bytes, mime: str) -> str:
    return f'data:{mime};base64,' + base64.b64encode(data).decode('ascii')


def format_number(v: Any) -> Value:
    """One scalar: floats with 4 significant digits (full value as tooltip), None / NaN missing, inf as ∞."""
    if v is None:
        return MISSING
    if isinstance(v, bool):
        return Value('true' if v else 'false')
    if isinstance(v, int):
        return Value(str(v))
    if isinstance(v, float):
        if math.isnan(v):
            return MISSING
        if math.isinf(v):
            return Value('\u221e' if v > 0 else '\u2212\u221e')
        short = f'{v:.4g}'
        return Value(short) if float(short) == v else Value(short, title=repr(v))
    return Value(str(v))


def format_cell(v: Any, note: str = '') -> Cell:
    """A table cell: scalars via format_number, lists inline (truncated), None / NaN with the note beside."""
    if isinstance(v, list):
        numbers_only = all(is_scalar(x) and not isinstance(x, str) for x in v)
        shown = tuple(format_number(x) if is_scalar(x) else Value(json.dumps(x)) for x in v[:MAX_INLINE_VALUES])
        unit = 'values' if numbers_only else 'items'
        more = f', \u2026 ({len(v)} {unit})' if len(v) > MAX_INLINE_VALUES else ''
        return Cell(shown, is_list=True, more=more)
    if isinstance(v, dict):  # only reached for dicts nested inside lists
        return Cell((Value(json.dumps(v)),))
    if (v is None or (isinstance(v, float) and math.isnan(v))) and note:
        return Cell((MISSING,), note=note)
    return Cell((format_number(v),))
