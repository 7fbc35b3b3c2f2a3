"""argparse types shared by the subcommands (size WxH, comma-separated numbers, scale, KEY=VALUE) and choices.

A type with a ``show`` method tells the help formatter how to print its default in the syntax it parses.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ['NumberList', 'ScaleArg', 'SizeArg', 'dataset_formats', 'key_value']

T = TypeVar('T', int, float)


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
    """'KEY=VALUE' -> (KEY, VALUE read as YAML: numbers, booleans, lists)."""
    if '=' not in text:
        raise argparse.ArgumentTypeError(f'expected KEY=VALUE, got {text!r}')
    import yaml

    key, value = text.split('=', 1)
    return key, yaml.safe_load(value)


def dataset_formats() -> tuple[str, ...]:
    """Names accepted by `data.open_dataset` (imports the readers: numpy and cv2, not torch)."""
    from ..data.readers import DATASET_FORMATS

    return tuple(DATASET_FORMATS)
