"""argparse types shared by the subcommands (size WxH, numbers with bounds, scale, KEY=VALUE) and choices.

A type with a ``show`` method tells the help formatter how to print its default in the syntax it parses.
A bad value raises ``argparse.ArgumentTypeError``: argparse then exits 2 with the option and the bound named.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = [
    'FloatRange',
    'IntRange',
    'NumberList',
    'ScaleArg',
    'SizeArg',
    'dataset_formats',
    'finite_float',
    'key_value',
    'positive_float',
    'positive_int',
]

T = TypeVar('T', int, float)


class IntRange:
    """A whole number in [lo, hi] (``hi`` None: no upper bound), e.g. ``IntRange(1)`` for a count."""

    def __init__(self, lo: int, hi: int | None = None) -> None:
        self.lo = lo
        self.hi = hi

    def __call__(self, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected {self.describe()}, got {text!r}') from None
        if value < self.lo or (self.hi is not None and value > self.hi):
            raise argparse.ArgumentTypeError(f'expected {self.describe()}, got {text!r}')
        return value

    def describe(self) -> str:
        """The accepted values in words, e.g. 'a whole number >= 1'."""
        return f'a whole number >= {self.lo}' if self.hi is None else f'a whole number in [{self.lo}, {self.hi}]'


class FloatRange:
    """A finite number with optional bounds; ``lo_open`` excludes ``lo`` itself (``FloatRange(0, lo_open=True)``: > 0).

    'nan' and 'inf' are refused whatever the bounds: no option of this tool means anything with them.
    """

    def __init__(self, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> None:
        self.lo = lo
        self.hi = hi
        self.lo_open = lo_open

    def __call__(self, text: str) -> float:
        try:
            value = float(text)  # also reads 'nan' and 'inf', refused just below
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected {self.describe()}, got {text!r}') from None
        too_low = self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo)
        if not math.isfinite(value) or too_low or (self.hi is not None and value > self.hi):
            raise argparse.ArgumentTypeError(f'expected {self.describe()}, got {text!r}')
        return value

    def describe(self) -> str:
        """The accepted values in words, e.g. 'a finite number > 0' or 'a finite number in [0.001, 1e+06]'."""
        if self.lo is not None and self.hi is not None and not self.lo_open:
            return f'a finite number in [{self.lo:g}, {self.hi:g}]'
        parts = []
        if self.lo is not None:
            parts.append(f'{">" if self.lo_open else ">="} {self.lo:g}')
        if self.hi is not None:
            parts.append(f'<= {self.hi:g}')
        return ' '.join(['a finite number', ' and '.join(parts)]).strip()


#: a count of frames, images or iterations: 1 or more
positive_int = IntRange(1)
#: any finite number (no nan, no inf)
finite_float = FloatRange()
#: a finite number > 0: rates, scales, learning rates
positive_float = FloatRange(0.0, lo_open=True)


class SizeArg:
    """'1024x512' -> (width, height), each side at least `minimum` pixels."""

    def __init__(self, minimum: int = 32) -> None:
        self.minimum = minimum

    def __call__(self, text: str) -> tuple[int, int]:
        try:
            w, h = (int(v) for v in text.lower().split('x'))
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected WIDTHxHEIGHT like 1024x512, got {text!r}') from None
        if w < self.minimum or h < self.minimum:
            raise argparse.ArgumentTypeError(f'size {text!r} too small (min {self.minimum}x{self.minimum})')
        return w, h

    def show(self, value: tuple[int, int]) -> str:
        return f'{value[0]}x{value[1]}'


class NumberList(Generic[T]):
    """Exactly ``len(example)`` comma-separated values of `kind`, e.g. '0.5,0.5,0.5'; `example` is shown on error."""

    def __init__(self, kind: Callable[[str], T], example: Sequence[T]) -> None:
        self.kind: Callable[[str], T] = kind
        self.count = len(example)
        self.example = self.show(example)

    def __call__(self, text: str) -> tuple[T, ...]:
        try:
            values = tuple(self.kind(v) for v in text.split(','))
        except ValueError:
            values = ()
        if len(values) != self.count:
            raise argparse.ArgumentTypeError(
                f'expected {self.count} comma-separated numbers like {self.example}, got {text!r}'
            )
        return values

    def show(self, value: Sequence[T]) -> str:
        return ','.join(str(v) for v in value)


class ScaleArg:
    """A factor written as a number or a fraction: '1', '0.5', '1/255'."""

    def __call__(self, text: str) -> float:
        try:
            if '/' in text:
                num, den = text.split('/')
                return float(num) / float(den)
            return float(text)
        except (ValueError, ZeroDivisionError):
            raise argparse.ArgumentTypeError(f'expected a number like 1 or 1/255, got {text!r}') from None

    def show(self, value: float) -> str:
        inverse = 1.0 / value if value else 0.0
        if inverse > 1 and abs(inverse - round(inverse)) < 1e-6:
            return f'1/{round(inverse)}'
        return f'{value:g}'


def key_value(text: str) -> tuple[str, object]:
    """'KEY=VALUE' -> (KEY, VALUE read as plain YAML: numbers, booleans, strings, lists, mappings).

    YAML tags (``!!python/object:...``, ``!!binary``) and broken YAML are refused as a usage error.
    """
    if '=' not in text:
        raise argparse.ArgumentTypeError(f'expected KEY=VALUE, got {text!r}')
    import yaml

    key, value = text.split('=', 1)
    if not key.strip():
        raise argparse.ArgumentTypeError(f'expected KEY=VALUE with a KEY, got {text!r}')
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as e:
        problem = getattr(e, 'problem', None) or type(e).__name__
        raise argparse.ArgumentTypeError(
            f'{key}: VALUE must be plain YAML (a number, boolean, string or list), got {value!r} ({problem})'
        ) from None
    if not _is_plain(parsed):
        raise argparse.ArgumentTypeError(
            f'{key}: VALUE must be plain YAML (a number, boolean, string or list), got {value!r}'
        )
    return key, parsed


def _is_plain(value: object) -> bool:
    """Only what a YAML file of this project may hold: no dates, bytes or sets (safe_load makes those)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


def dataset_formats() -> tuple[str, ...]:
    """Names accepted by `data.open_dataset` (imports the readers: numpy and cv2, not torch)."""
    from ..data.readers import DATASET_FORMATS

    return tuple(DATASET_FORMATS)
