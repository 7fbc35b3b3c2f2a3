"""Tests for the metric state: merge(), state_dict() / load_state_dict() of every streaming metric.

The core property: frames split into N parts, each part in its own metric, its state sent through
np.savez (or JSON) into a fresh metric, all merged -> compute() equals one pass over all frames exactly.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from anomaly_seg_ros.metrics import (
    ChanSegmentMetrics,
    PixelAnomalyMetrics,
    SegmentationIoU,
    SmiycComponentMetrics,
)

Metric = PixelAnomalyMetrics | SegmentationIoU | SmiycComponentMetrics | ChanSegmentMetrics
Frame = tuple[np.ndarray, np.ndarray]

# ---------------------------------------------------------------------------------------------------
# Helpers.
# ---------------------------------------------------------------------------------------------------


def anomaly_frames(seed: int, n: int = 10, shape: tuple[int, int] = (24, 32)) -> list[Frame]:
    """(score, gt) frames: blob anomalies, ignore pixels, tied scores on a 0.05 grid, some scores outside
    [0, 1], a frame without anomalies and one wholly ignored."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        blobs = np.kron(rng.random((shape[0] // 4, shape[1] // 4)) < 0.25, np.ones((4, 4))) > 0
        gt = np.where(blobs | (rng.random(shape) < 0.05), 1, 0).astype(np.uint8)
        if i % 4 == 1:
            gt[:] = 0  # no positives
        gt[rng.random(shape) < 0.1] = 255
        if i == n - 2:
            gt[:] = 255  # nothing evaluated
        score = rng.normal(0.4, 0.3, shape) + 0.35 * (gt == 1)
        score = (np.round(score * 20) / 20).astype(np.float32)  # ties, exact 0.5 too; some < 0 or > 1
        frames.append((score, gt))
    return frames


def seg_frames(seed: int, n: int = 10, shape: tuple[int, int] = (16, 20), num_classes: int = 5) -> list[Frame]:
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        gt = rng.integers(0, num_classes, shape).astype(np.uint8)
        gt[rng.random(shape) < 0.1] = 255
        pred = np.where(rng.random(shape) < 0.7, gt, rng.integers(0, num_classes + 2, shape)).astype(np.uint8)
        pred[rng.random(shape) < 0.02] = 255  # predicted outside 0..C-1
        frames.append((pred, gt))
    return frames


def via_npz(state: dict[str, Any]) -> dict[str, Any]:
    buf = io.BytesIO()
    np.savez(buf, **state)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as loaded:
        return {k: loaded[k] for k in loaded.files}


def via_json(state: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(state, default=lambda a: a.tolist())
    return json.loads(text)


def same(a: object, b: object) -> bool:
    """Exact equality, NaN equal to NaN, arrays also equal in dtype and shape."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == 'f')
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def assert_results_equal(merged: object, single: object) -> None:
    for field in dataclasses.fields(merged):  # type: ignore[arg-type]
        mine, ref = getattr(merged, field.name), getattr(single, field.name)
        assert same(mine, ref), f'{field.name}: {mine!r} != {ref!r}'


def split(frames: list[Frame], parts: int) -> list[list[Frame]]:
    bounds = np.linspace(0, len(frames), parts + 1).round().astype(int)
    return [frames[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def feed(metric: Metric, frames: list[Frame]) -> Metric:
    for x, gt in frames:
        metric.update(x, gt)
    return metric


FACTORIES: dict[str, Callable[[], Metric]] = {
    'pixel-binned': lambda: PixelAnomalyMetrics('binned', score_range=(0.0, 1.0), bins=64),
    'pixel-exact': lambda: PixelAnomalyMetrics('exact', score_range=(0.0, 1.0)),
    'pixel-exact-no-range': lambda: PixelAnomalyMetrics('exact'),
    'miou': lambda: SegmentationIoU(5, ['road', 'car', 'tree', 'sky', 'person']),
    'smiyc': lambda: SmiycComponentMetrics(0.5, min_gt_size=3, min_pred_size=2),
    'smiyc-mask': lambda: SmiycComponentMetrics(),
    'chan': lambda: ChanSegmentMetrics(0.5),
}


def frames_for(kind: str, seed: int) -> list[Frame]:
    if kind == 'miou':
        return seg_frames(seed)
    frames = anomaly_frames(seed)
    if kind == 'smiyc-mask':
        return [(score > 0.5, gt) for score, gt in frames]
    return frames


# ---------------------------------------------------------------------------------------------------
# Split, round-trip, merge == one pass.
# ---------------------------------------------------------------------------------------------------


# JSON where the state is plain: exact mode's score arrays keep their dtype (float16/32) only through npz.
TRANSPORTS = [(kind, 'npz') for kind in FACTORIES] + [(kind, 'json') for kind in FACTORIES if 'exact' not in kind]


@pytest.mark.parametrize('parts', [1, 2, 3, 5])
@pytest.mark.parametrize(('kind', 'transport'), TRANSPORTS)
def test_split_roundtrip_merge_equals_one_pass(kind: str, parts: int, transport: str) -> None:
    make = FACTORIES[kind]
    frames = frames_for(kind, seed=parts)
    single = feed(make(), frames)
    send = via_npz if transport == 'npz' else via_json
    merged = make()
    for chunk in split(frames, parts):
        received = make()
        received.load_state_dict(send(feed(make(), chunk).state_dict()))
        merged.merge(received)  # type: ignore[arg-type]
    assert merged.n_frames == single.n_frames == len(frames)
    assert_results_equal(merged.compute(), single.compute())
    if isinstance(merged, PixelAnomalyMetrics):
        assert isinstance(single, PixelAnomalyMetrics)
        assert_results_equal(merged.curves(), single.curves())
        if merged.score_range is not None:
            assert merged.compute().out_of_range > 0  # the clipped-and-counted scores added up too


def test_the_data_covers_the_edge_cases() -> None:
    frames = anomaly_frames(0)
    gts = [gt for _, gt in frames]
    assert any(not (gt == 1).any() for gt in gts) and any((gt == 255).all() for gt in gts)
    scores = np.concatenate([s.ravel() for s, _ in frames])
    assert np.unique(scores).size < scores.size / 10 and (scores == 0.5).any()
    assert (scores < 0).any() and (scores > 1).any()


@pytest.mark.parametrize('kind', list(FACTORIES))
def test_merging_an_empty_metric_is_a_no_op(kind: str) -> None:
    make = FACTORIES[kind]
    fed = feed(make(), frames_for(kind, seed=7))
    before = fed.state_dict()
    result = fed.compute()
    fed.merge(make())  # type: ignore[arg-type]
    empty = make()
    empty.load_state_dict(via_npz(make().state_dict()))
    fed.merge(empty)  # type: ignore[arg-type]
    after = fed.state_dict()
    assert before.keys() == after.keys()
    assert all(same(np.asarray(before[k]), np.asarray(after[k])) for k in before)
    assert_results_equal(fed.compute(), result)
    blank = make()
    blank.merge(make())  # type: ignore[arg-type]
    assert_results_equal(blank.compute(), make().compute())


@pytest.mark.parametrize('kind', list(FACTORIES))
def test_state_dict_is_a_copy_and_load_replaces(kind: str) -> None:
    make = FACTORIES[kind]
    frames = frames_for(kind, seed=3)
    a = feed(make(), frames[:4])
    state = a.state_dict()
    frozen = via_npz(state)
    feed(a, frames[4:])  # later updates must not leak into the state already taken
    assert all(same(np.asarray(state[k]), np.asarray(frozen[k])) for k in state)
    b = feed(make(), frames[6:])  # load_state_dict replaces what was there
    b.load_state_dict(frozen)
    assert_results_equal(b.compute(), feed(make(), frames[:4]).compute())


# ---------------------------------------------------------------------------------------------------
# Incompatible merges.
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('a', 'b', 'what'),
    [
        (lambda: PixelAnomalyMetrics('binned', score_range=(0, 1)), lambda: PixelAnomalyMetrics('exact'), 'mode'),
        (
            lambda: PixelAnomalyMetrics(score_range=(0, 1), bins=64),
            lambda: PixelAnomalyMetrics(score_range=(0, 1), bins=128),
            'bins',
        ),
        (
            lambda: PixelAnomalyMetrics(score_range=(0, 1)),
            lambda: PixelAnomalyMetrics(score_range=(-3.5, 12.0)),  # e.g. another calibrated max-logit range
            'score_range',
        ),
        (lambda: PixelAnomalyMetrics('exact'), lambda: PixelAnomalyMetrics('exact', score_range=(0, 1)), 'score_range'),
        (lambda: SegmentationIoU(19), lambda: SegmentationIoU(5), 'num_classes'),
        (lambda: SegmentationIoU(2, ['a', 'b']), lambda: SegmentationIoU(2, ['a', 'c']), 'class_names'),
        (lambda: SmiycComponentMetrics(0.5), lambda: SmiycComponentMetrics(0.6), 'threshold'),
        (lambda: SmiycComponentMetrics(0.5), lambda: SmiycComponentMetrics(None), 'threshold'),
        (lambda: SmiycComponentMetrics(min_gt_size=10), lambda: SmiycComponentMetrics(min_gt_size=100), 'min_gt_size'),
        (lambda: SmiycComponentMetrics(min_pred_size=1), lambda: SmiycComponentMetrics(), 'min_pred_size'),
        (lambda: SmiycComponentMetrics(taus=[0.5]), lambda: SmiycComponentMetrics(taus=[0.25, 0.5]), 'taus'),
        (lambda: ChanSegmentMetrics(0.5), lambda: ChanSegmentMetrics(0.7), 'threshold'),
        (lambda: ChanSegmentMetrics(0.5), lambda: ChanSegmentMetrics(), 'threshold'),
    ],
)
def test_incompatible_configs_refuse_to_merge_or_load(
    a: Callable[[], Metric], b: Callable[[], Metric], what: str
) -> None:
    with pytest.raises(ValueError, match=f'{what} differs'):
        a().merge(b())  # type: ignore[arg-type]
    if type(a()) is not PixelAnomalyMetrics or what != 'mode':  # a mode change also changes the keys
        with pytest.raises(ValueError, match=f'{what} differs'):
            a().load_state_dict(via_npz(b().state_dict()))


def test_merge_of_another_metric_type_raises() -> None:
    with pytest.raises(ValueError, match='cannot merge a ChanSegmentMetrics into a SmiycComponentMetrics'):
        SmiycComponentMetrics().merge(ChanSegmentMetrics())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='into a PixelAnomalyMetrics'):
        PixelAnomalyMetrics('exact').merge(SegmentationIoU())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='mode differs'):
        PixelAnomalyMetrics('exact').load_state_dict(PixelAnomalyMetrics(score_range=(0, 1), bins=4).state_dict())


def test_exact_merge_respects_the_pair_guard() -> None:
    small = PixelAnomalyMetrics('exact', max_exact_pairs=15)
    small.update(np.zeros((2, 5), np.float32), np.zeros((2, 5), np.uint8))
    other = PixelAnomalyMetrics('exact')
    other.update(np.zeros((2, 5), np.float32), np.zeros((2, 5), np.uint8))
    with pytest.raises(ValueError, match='max_exact_pairs=15'):
        small.merge(other)
    with pytest.raises(ValueError, match="'scores' holds 20 pairs, over max_exact_pairs=15"):
        fresh = PixelAnomalyMetrics('exact', max_exact_pairs=15)
        other.update(np.zeros((2, 5), np.float32), np.zeros((2, 5), np.uint8))
        fresh.load_state_dict(other.state_dict())
    assert small.n_frames == 1  # a refused merge changed nothing


# ---------------------------------------------------------------------------------------------------
# load_state_dict validation.
# ---------------------------------------------------------------------------------------------------

# (metric kind, key whose array gets a wrong shape, message fragment); 1-D arrays lose their last entry,
# the exact scores gain a dimension.
BAD_SHAPES = [
    ('pixel-binned', 'hist', r"'hist' must have shape \(2x64\), got \(2, 63\)"),
    ('pixel-exact', 'scores', r"'scores' must have shape \(N\), got \(1, "),
    ('miou', 'confusion', r"'confusion' must have shape \(5x6\)"),
    ('smiyc', 'gt_sizes', r"'gt_sizes' must have shape"),
    ('chan', 'counts', r"'counts' must have shape \(6\), got \(5,\)"),
]


@pytest.mark.parametrize('kind', list(FACTORIES))
def test_load_rejects_missing_and_extra_keys(kind: str) -> None:
    make = FACTORIES[kind]
    state = feed(make(), frames_for(kind, seed=1)[:3]).state_dict()
    missing = dict(state)
    del missing['n_frames']
    with pytest.raises(ValueError, match='missing key.*n_frames'):
        make().load_state_dict(missing)
    extra = {**state, 'bogus': 1}
    with pytest.raises(ValueError, match='unexpected key.*bogus'):
        make().load_state_dict(extra)
    with pytest.raises(ValueError, match="'metric' says 'Other'"):
        make().load_state_dict({**state, 'metric': 'Other'})
    with pytest.raises(ValueError, match="'version' is 99"):
        make().load_state_dict({**state, 'version': 99})
    with pytest.raises(ValueError, match="'n_frames' must be an integer"):
        make().load_state_dict({**state, 'n_frames': 2.5})
    with pytest.raises(ValueError, match='must be a mapping'):
        make().load_state_dict([1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize(('kind', 'key', 'message'), BAD_SHAPES)
def test_load_rejects_wrong_shapes(kind: str, key: str, message: str) -> None:
    make = FACTORIES[kind]
    metric = feed(make(), frames_for(kind, seed=2)[:3])
    state = metric.state_dict()
    arr = np.asarray(state[key])
    bad = arr[None] if key == 'scores' else arr[..., :-1]
    with pytest.raises(ValueError, match=message):
        make().load_state_dict({**state, key: bad})
    result = metric.compute()
    with pytest.raises(ValueError):
        metric.load_state_dict({**state, key: bad})
    assert_results_equal(metric.compute(), result)  # a refused load left the state as it was


def test_load_rejects_bad_values() -> None:
    binned = PixelAnomalyMetrics(score_range=(0, 1), bins=4)
    state = binned.state_dict()
    with pytest.raises(ValueError, match="'hist' holds a negative count"):
        binned.load_state_dict({**state, 'hist': -np.ones((2, 4), np.int64)})
    with pytest.raises(ValueError, match="'hist' must hold integers"):
        binned.load_state_dict({**state, 'hist': np.zeros((2, 4), np.float32) + 0.5})
    with pytest.raises(ValueError, match="'mode' must be 'binned' or 'exact'"):
        binned.load_state_dict({**state, 'mode': 'fuzzy'})
    with pytest.raises(ValueError, match="'score_range' must be a list of 0 or 2 numbers"):
        binned.load_state_dict({**state, 'score_range': [0.0, 0.5, 1.0]})
    with pytest.raises(ValueError, match='bins differs'):
        binned.load_state_dict(PixelAnomalyMetrics(score_range=(0, 1), bins=8).state_dict())
    exact = PixelAnomalyMetrics('exact')
    exact.update(np.zeros((2, 2), np.float32), np.zeros((2, 2), np.uint8))
    state = exact.state_dict()
    with pytest.raises(ValueError, match="'labels' has 3 entries, 'scores' 4"):
        exact.load_state_dict({**state, 'labels': np.zeros(3, bool)})
    with pytest.raises(ValueError, match="'scores' must hold floating-point values"):
        exact.load_state_dict({**state, 'scores': np.zeros(4, np.int64)})
    with pytest.raises(ValueError, match="'scores' holds NaN"):
        exact.load_state_dict({**state, 'scores': np.full(4, np.nan)})
    iou = SegmentationIoU(2, ['a', 'b'])
    with pytest.raises(ValueError, match="'class_names' must be a list of 2 strings"):
        iou.load_state_dict({**iou.state_dict(), 'class_names': ['a']})
    smiyc = SmiycComponentMetrics(0.5)
    with pytest.raises(ValueError, match="'threshold' must be a list of 0 or 1 numbers"):
        smiyc.load_state_dict({**smiyc.state_dict(), 'threshold': 'high'})
    with pytest.raises(ValueError, match="'taus' must be a list of one or more numbers"):
        smiyc.load_state_dict({**smiyc.state_dict(), 'taus': []})


def test_state_holds_only_plain_values_and_arrays() -> None:
    plain = (int, float, str, list, np.ndarray)
    for kind, make in FACTORIES.items():
        state = feed(make(), frames_for(kind, seed=4)[:2]).state_dict()
        assert all(isinstance(v, plain) for v in state.values()), kind
        assert all(np.asarray(v).dtype != object for v in state.values()), kind
        assert state['metric'] == type(make()).__name__ and state['version'] == 1
