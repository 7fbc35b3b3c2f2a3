"""Checks shared by the metric modules: per-frame input validation and metric-state (state_dict) validation.

Frame checks raise ``ValueError`` naming the argument (``score``, ``gt``, ``pred``) and the offending
shape, dtype or value. State checks raise ``ValueError`` naming the metric and the key, so a state that
travelled through ``np.savez`` or JSON and came back wrong says where it went wrong.

States hold plain values: ints, floats, strings, lists of those, and numpy arrays. After an
``np.savez`` round trip every value is a numpy array (scalars 0-d, strings unicode arrays), after JSON
arrays are lists; the ``state_*`` readers accept both forms.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from ..classes import ANOMALY_ID, ANOMALY_IGNORE, ANOMALY_IN_DIST, IGNORE_ID

__all__ = [
    'ArrayOrFrames',
    'STATE_VERSION',
    'check_2d',
    'check_anomaly_gt',
    'check_labels',
    'check_same_shape',
    'check_score',
    'frames_of',
    'merge_mismatch',
    'optional_float',
    'paired_frames',
    'state_array',
    'state_floats',
    'state_int',
    'state_keys',
    'state_str',
    'state_strings',
]

ArrayOrFrames = np.ndarray | Iterable[np.ndarray]

#: bumped when the layout of a metric's state_dict changes; load_state_dict refuses other versions.
STATE_VERSION = 1

# The label checks below rely on this encoding: valid ids are 0..k-1, and 255 is ignore.
if (ANOMALY_IN_DIST, ANOMALY_ID, ANOMALY_IGNORE) != (0, 1, IGNORE_ID):  # pragma: no cover
    raise ImportError('anomaly ground-truth encoding changed; update metrics.checks.check_labels')


# ---------------------------------------------------------------------------------------------------
# Frame inputs.
# ---------------------------------------------------------------------------------------------------


def check_2d(arr: object, name: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 2:
        raise ValueError(f'{name} must be a 2-D HxW array, got shape {arr.shape}')
    return arr


def check_labels(arr: object, name: str, n_valid: int, expected: str) -> tuple[np.ndarray, int]:
    """Return ``arr`` as uint8 and its number of ignore (255) pixels; reject bad dtypes and values.

    Legal values are 0..n_valid-1 and 255. Comparisons, not a histogram: a 2048x1024 frame costs ~1 ms.
    """
    arr = check_2d(arr, name)
    if arr.dtype != np.uint8:
        if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f'{name} must be an integer label map (uint8), got dtype {arr.dtype}')
        if arr.size:
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0 or hi > 255:
                raise ValueError(f'{name} holds invalid value {lo if lo < 0 else hi}; expected {expected}')
        arr = arr.astype(np.uint8)
    bad = (arr >= n_valid) & (arr != IGNORE_ID)
    if bad.any():
        values = np.unique(arr[bad])
        shown = ', '.join(str(v) for v in values[:8])
        raise ValueError(
            f'{name} holds invalid value(s) {shown} ({int(np.count_nonzero(bad))} pixels); expected {expected}'
        )
    return arr, int(np.count_nonzero(arr == IGNORE_ID))


def check_anomaly_gt(gt: object, name: str = 'gt') -> tuple[np.ndarray, int]:
    return check_labels(gt, name, ANOMALY_ID + 1, '0 (in-distribution), 1 (anomaly) or 255 (ignore)')


def check_score(score: object, name: str = 'score') -> np.ndarray:
    score = check_2d(score, name)
    if not np.issubdtype(score.dtype, np.floating):
        raise ValueError(f'{name} must be a floating-point array, got dtype {score.dtype}')
    n_nan = int(np.count_nonzero(np.isnan(score)))
    if n_nan:
        raise ValueError(f'{name} contains {n_nan} NaN value(s); NaN has no place in a ranking')
    return score


def check_same_shape(a: np.ndarray, a_name: str, b: np.ndarray, b_name: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f'{a_name} shape {a.shape} does not match {b_name} shape {b.shape}')


def frames_of(x: ArrayOrFrames) -> Iterator[np.ndarray]:
    """One HxW array is one frame, an NxHxW array or any iterable of HxW arrays is N frames."""
    if isinstance(x, np.ndarray):
        if x.ndim == 2:
            return iter((x,))
        if x.ndim == 3:
            return iter(x)
        raise ValueError(f'expected an HxW frame or NxHxW frames, got shape {x.shape}')
    return iter(x)


def paired_frames(
    a: ArrayOrFrames, b: ArrayOrFrames, a_name: str, b_name: str
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (a_i, b_i), raising ValueError with both counts if one side runs out first (streams)."""
    sentinel = object()
    n = 0
    for x, y in itertools.zip_longest(frames_of(a), frames_of(b), fillvalue=sentinel):
        if x is sentinel or y is sentinel:
            longer, shorter = (a_name, b_name) if y is sentinel else (b_name, a_name)
            raise ValueError(
                f'{a_name} and {b_name} differ in length: {shorter} ends after {n} frame(s), {longer} goes on'
            )
        n += 1
        yield x, y  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------------
# Metric state.
# ---------------------------------------------------------------------------------------------------


def merge_mismatch(metric: str, what: str, mine: object, theirs: object) -> ValueError:
    """The error for merging (or loading) two states of differently configured metrics."""
    return ValueError(f'cannot combine {metric} states: {what} differs ({mine!r} here, {theirs!r} in the other)')


def optional_float(value: float | None) -> list[float]:
    """An optional float as a 0- or 1-element list: None has no np.savez form without pickling."""
    return [] if value is None else [float(value)]


def state_keys(state: Mapping[str, Any], expected: Iterable[str], metric: str) -> None:
    """Refuse a non-mapping state, one with missing or unexpected keys, a foreign metric or version."""
    if not isinstance(state, Mapping):
        raise ValueError(f'{metric} state must be a mapping, got {type(state).__name__}')
    want = set(expected)
    missing = sorted(want - set(state))
    extra = sorted(set(state) - want)
    if missing:
        raise ValueError(f'{metric} state is missing key(s): {", ".join(missing)}')
    if extra:
        raise ValueError(f'{metric} state has unexpected key(s): {", ".join(extra)}')
    kind = state_str(state, 'metric', metric)
    if kind != metric:
        raise ValueError(f"{metric} state: key 'metric' says {kind!r}; this is a state of another metric")
    version = state_int(state, 'version', metric)
    if version != STATE_VERSION:
        raise ValueError(f"{metric} state: key 'version' is {version}, this code reads version {STATE_VERSION}")


def state_int(state: Mapping[str, Any], key: str, metric: str, minimum: int = 0) -> int:
    value = state[key]
    arr = np.asarray(value)
    if arr.shape != () or arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f'{metric} state: key {key!r} must be an integer, got {value!r}')
    if int(arr) < minimum:
        raise ValueError(f'{metric} state: key {key!r} must be >= {minimum}, got {int(arr)}')
    return int(arr)


def state_str(state: Mapping[str, Any], key: str, metric: str) -> str:
    value = state[key]
    arr = np.asarray(value)
    if arr.shape != () or arr.dtype.kind != 'U':
        raise ValueError(f'{metric} state: key {key!r} must be a string, got {value!r}')
    return str(arr)


def state_floats(
    state: Mapping[str, Any], key: str, metric: str, lengths: tuple[int, ...] | None = None
) -> tuple[float, ...]:
    """A short list of finite-or-infinite (not NaN) floats whose length is one of ``lengths`` (None: >= 1)."""
    value = state[key]
    arr = np.asarray(value)
    if arr.size == 0:
        arr = arr.astype(np.float64)
    ok_length = arr.size >= 1 if lengths is None else arr.size in lengths
    if arr.ndim != 1 or not ok_length or arr.dtype.kind not in 'fiu' or np.isnan(arr).any():
        counts = 'one or more' if lengths is None else ' or '.join(map(str, lengths))
        raise ValueError(f'{metric} state: key {key!r} must be a list of {counts} numbers (no NaN), got {value!r}')
    return tuple(float(v) for v in arr)


def state_strings(state: Mapping[str, Any], key: str, metric: str, length: int) -> tuple[str, ...]:
    value = state[key]
    arr = np.asarray(value)
    if arr.shape != (length,) or (length and arr.dtype.kind != 'U'):
        raise ValueError(f'{metric} state: key {key!r} must be a list of {length} strings, got {value!r}')
    return tuple(str(v) for v in arr)


def state_array(
    state: Mapping[str, Any], key: str, metric: str, shape: tuple[int | None, ...], kind: str
) -> np.ndarray:
    """A numpy array of the given shape (None: any length) and dtype kind ('i' int, 'f' float, 'b' bool).

    Integer arrays come back as int64 and must be non-negative (they are counts or sizes); an empty
    array of any dtype is accepted (JSON has no dtype for []).
    """
    arr = np.asarray(state[key])
    ok_shape = arr.ndim == len(shape) and all(w is None or w == s for w, s in zip(shape, arr.shape, strict=True))
    if not ok_shape:
        want = 'x'.join('N' if w is None else str(w) for w in shape)
        raise ValueError(f'{metric} state: key {key!r} must have shape ({want}), got {arr.shape}')
    kinds = {'i': 'iu', 'f': 'f', 'b': 'b'}[kind]
    if arr.size and arr.dtype.kind not in kinds:
        raise ValueError(f'{metric} state: key {key!r} must hold {_KIND_NAMES[kind]}, got dtype {arr.dtype}')
    if kind == 'i':
        arr = arr.astype(np.int64, copy=False)
        if arr.size and int(arr.min()) < 0:
            raise ValueError(f'{metric} state: key {key!r} holds a negative count {int(arr.min())}')
    elif kind == 'b':
        arr = arr.astype(np.bool_, copy=False)
    elif arr.size == 0:
        arr = arr.astype(np.float64)
    elif kind == 'f' and np.isnan(arr).any():
        raise ValueError(f'{metric} state: key {key!r} holds NaN')
    return arr


_KIND_NAMES = {'i': 'integers', 'f': 'floating-point values', 'b': 'booleans'}
