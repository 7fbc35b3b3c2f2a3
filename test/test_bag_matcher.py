"""Tests for anomaly_seg_ros.bag.matcher.StampMatcher alone: events in, matches and problems out, no bags."""

from __future__ import annotations

from typing import Any

import pytest

from anomaly_seg_ros.bag.matcher import (
    IMAGE,
    DuplicateStamp,
    Match,
    StampBackwards,
    StampMatcher,
    StampRepeats,
    Unmatched,
)
from anomaly_seg_ros.errors import BagError

S = 1_700_000_000_000_000_000  # a realistic stamp base, in ns
MS = 1_000_000


def stamp(k: int) -> int:
    return S + k * 100 * MS


def matches(events: list[Any]) -> list[Match[Any, Any]]:
    return [e for e in events if isinstance(e, Match)]


def paired(m: Match[Any, Any]) -> dict[str, int]:
    """role -> index of the ground truth the image got."""
    return {role: gt.index for role, gt in m.ground_truth.items()}


def test_in_order_pairs_each_image_with_its_ground_truth() -> None:
    m: StampMatcher[str, str] = StampMatcher(('anomaly', 'labels'), totals={'anomaly': 3, 'labels': 3})
    out: list[Any] = []
    for i in range(3):
        out += m.push(IMAGE, stamp(i), i, f'img{i}')
        assert not matches(out[-1:]) or i > 0  # nothing to release before its ground truth
        out += m.push('anomaly', stamp(i), i, f'ano{i}')
        out += m.push('labels', stamp(i), i, f'lab{i}')
    out += m.finish()
    got = matches(out)
    assert [g.index for g in got] == [0, 1, 2] and len(out) == 3  # no problems
    for i, g in enumerate(got):
        assert g.stamp == stamp(i) and g.payload == f'img{i}'
        assert g.ground_truth['anomaly'].payload == f'ano{i}' and g.ground_truth['labels'].payload == f'lab{i}'
        assert paired(g) == {'anomaly': i, 'labels': i}


def test_image_is_released_as_soon_as_its_ground_truth_is_complete() -> None:
    m: StampMatcher[str, str] = StampMatcher(('anomaly',))
    assert m.push(IMAGE, stamp(0), 0, 'a') == []
    assert m.waiting == 1
    out = m.push('anomaly', stamp(0), 0, 'g')
    assert [(x.index, paired(x)) for x in matches(out)] == [(0, {'anomaly': 0})] and m.waiting == 0


def test_ground_truth_before_its_image() -> None:
    m: StampMatcher[str, str] = StampMatcher(('anomaly', 'labels'))
    assert m.push('labels', stamp(0), 0, 'l0') == []
    assert m.push('anomaly', stamp(0), 0, 'a0') == []
    assert m.buffered('anomaly') == [0] and m.buffered('labels') == [0]
    out = m.push(IMAGE, stamp(0), 0, 'i0')
    assert [paired(x) for x in matches(out)] == [{'anomaly': 0, 'labels': 0}]
    assert m.buffered('anomaly') == [] and m.buffered('labels') == []


def test_no_roles_releases_every_image_at_once() -> None:
    m: StampMatcher[str, str] = StampMatcher(())
    assert [x.index for x in matches(m.push(IMAGE, stamp(0), 0, 'x'))] == [0]
    assert m.finish() == []


def test_missing_ground_truth_released_after_lag_later_messages() -> None:
    m: StampMatcher[str, str] = StampMatcher(('anomaly',), lag=2)
    m.push(IMAGE, stamp(0), 0, 'i0')  # its ground truth never comes
    m.push(IMAGE, stamp(1), 1, 'i1')
    assert matches(m.push('anomaly', stamp(1), 0, 'a1')) == []  # one later message: image 0 still waits
    m.push(IMAGE, stamp(2), 2, 'i2')
    out = m.push('anomaly', stamp(2), 1, 'a2')  # second later message: image 0 gives up, 1 and 2 follow
    assert [(x.index, paired(x)) for x in matches(out)] == [(0, {}), (1, {'anomaly': 0}), (2, {'anomaly': 1})]


def test_earlier_stamped_ground_truth_does_not_count_towards_the_lag() -> None:
    m: StampMatcher[str, str] = StampMatcher(('anomaly',), lag=1)
    m.push(IMAGE, stamp(5), 0, 'i')
    assert matches(m.push('anomaly', stamp(1), 0, 'old')) == []  # earlier stamp: buffered, image waits
    assert m.buffered('anomaly') == [0]
    assert [paired(x) for x in matches(m.push('anomaly', stamp(6), 1, 'new'))] == [{}]


def test_missing_ground_truth_released_once_the_topic_is_used_up() -> None:
    m: StampMatcher[str, str] = StampMatcher(('anomaly',), totals={'anomaly': 1})
    m.push(IMAGE, stamp(0), 0, 'i0')
    m.push(IMAGE, stamp(1), 1, 'i1')
    out = m.push('anomaly', stamp(1), 0, 'a1')  # the only anomaly message: nothing more will come
    assert [(x.index, paired(x)) for x in matches(out)] == [(0, {}), (1, {'anomaly': 0})]


def test_unknown_total_waits_until_finish() -> None:
    m: StampMatcher[str, str] = StampMatcher(('anomaly',), totals={'anomaly': None})
    m.push(IMAGE, stamp(0), 0, 'i0')
    m.push('anomaly', stamp(7), 0, 'stray')  # one later message, lag is 2
    assert m.waiting == 1
    out = m.finish()
    assert [(x.index, paired(x)) for x in matches(out)] == [(0, {})]
    assert [e for e in out if isinstance(e, Unmatched)] == [Unmatched('anomaly', 0, evicted=False)]


def test_images_are_released_in_arrival_order() -> None:
    m: StampMatcher[str, str] = StampMatcher(('anomaly',))
    m.push(IMAGE, stamp(0), 0, 'i0')
    m.push(IMAGE, stamp(1), 1, 'i1')
    assert matches(m.push('anomaly', stamp(1), 0, 'a1')) == []  # image 1 is complete but image 0 waits
    assert m.waiting == 2
    out = m.push('anomaly', stamp(0), 1, 'a0')
    assert [(x.index, paired(x)) for x in matches(out)] == [(0, {'anomaly': 1}), (1, {'anomaly': 0})]


def test_stamps_backwards_and_repeating_are_reported_before_the_release() -> None:
    m: StampMatcher[str, str] = StampMatcher(())
    m.push(IMAGE, stamp(2), 0, 'a')
    back = m.push(IMAGE, stamp(1), 1, 'b')
    assert back[0] == StampBackwards(1, stamp(1), stamp(2), 0) and isinstance(back[1], Match)
    assert back[0].reason == 'stamp 1700000000.100000000 < previous 1700000000.200000000 (message 0)'
    rep = m.push(IMAGE, stamp(1), 2, 'c')
    assert rep[0] == StampRepeats(2, stamp(1), 1)
    assert rep[0].reason == 'stamp 1700000000.100000000 repeats message 1'
    assert [type(e) for e in m.push(IMAGE, stamp(3), 3, 'd')] == [Match]  # forward again: no problem


def test_duplicate_ground_truth_stamp_keeps_the_first() -> None:
    m: StampMatcher[str, str] = StampMatcher(('labels',))
    assert m.push('labels', stamp(4), 0, 'first') == []
    dup = m.push('labels', stamp(4), 1, 'second')
    (first,) = dup
    assert first == DuplicateStamp('labels', 1, stamp(4), 0)
    assert first.reason == 'header stamp 1700000000.400000000 repeats message 0 of this topic'
    out = m.push(IMAGE, stamp(4), 0, 'img')
    assert [x.ground_truth['labels'].payload for x in matches(out)] == ['first']


def test_repeated_image_stamps_take_one_ground_truth_each() -> None:
    m: StampMatcher[str, str] = StampMatcher(('anomaly',), totals={'anomaly': 2})
    m.push(IMAGE, stamp(1), 0, 'i0')
    m.push(IMAGE, stamp(1), 1, 'i1')
    out = m.push('anomaly', stamp(1), 0, 'a')  # to the first image that has none
    out += m.push('anomaly', stamp(1), 1, 'b')  # the first has one: to the second
    assert [(x.index, x.ground_truth['anomaly'].payload) for x in matches(out)] == [(0, 'a'), (1, 'b')]


def test_ground_truth_for_a_waiting_image_that_has_one_is_kept_not_duplicate() -> None:
    m: StampMatcher[str, str] = StampMatcher(('anomaly', 'labels'))
    m.push(IMAGE, stamp(1), 0, 'i0')
    m.push('anomaly', stamp(1), 0, 'a')  # image 0 has its anomaly and still waits for labels
    assert m.push('anomaly', stamp(1), 1, 'again') == []  # not a duplicate: kept for a later image
    assert m.buffered('anomaly') == [1]
    out = m.push(IMAGE, stamp(1), 1, 'i1')  # same stamp again: takes the kept one
    assert out == [StampRepeats(1, stamp(1), 0)] and m.buffered('anomaly') == []
    out = m.finish()
    assert [(x.index, paired(x)) for x in matches(out)] == [(0, {'anomaly': 0}), (1, {'anomaly': 1})]


def test_window_bounds_waiting_images() -> None:
    m: StampMatcher[str, str] = StampMatcher(('anomaly',), window=2)
    assert m.push(IMAGE, stamp(0), 0, 'i0') == []
    assert m.push(IMAGE, stamp(1), 1, 'i1') == []
    out = m.push(IMAGE, stamp(2), 2, 'i2')  # a third waiting image: the oldest goes without ground truth
    assert [(x.index, paired(x)) for x in matches(out)] == [(0, {})] and m.waiting == 2


def test_window_bounds_unpaired_ground_truth() -> None:
    m: StampMatcher[str, str] = StampMatcher(('anomaly', 'labels'), window=2)
    for k in range(3):
        out = m.push('anomaly', stamp(10 + k), k, f'a{k}')
    assert out == [Unmatched('anomaly', 0, evicted=True)]
    assert m.buffered('anomaly') == [1, 2] and m.buffered('labels') == []
    end = m.finish()
    assert end == [Unmatched('anomaly', 1, evicted=False), Unmatched('anomaly', 2, evicted=False)]
    assert m.buffered('anomaly') == []


def test_finish_releases_waiting_images_before_reporting_unmatched() -> None:
    m: StampMatcher[str, str] = StampMatcher(('anomaly', 'labels'))
    m.push(IMAGE, stamp(0), 0, 'i0')
    m.push('anomaly', stamp(0), 0, 'a0')
    m.push('labels', stamp(9), 0, 'l9')
    out = m.finish()
    assert isinstance(out[0], Match) and paired(out[0]) == {'anomaly': 0}
    assert out[1:] == [Unmatched('labels', 0, evicted=False)]
    assert m.finish() == [] and m.waiting == 0


def test_payloads_are_passed_through_untouched() -> None:
    image, truth = object(), object()
    m: StampMatcher[object, object] = StampMatcher(('anomaly',))
    m.push('anomaly', stamp(0), 3, truth)
    (got,) = matches(m.push(IMAGE, stamp(0), 7, image))
    assert got.payload is image and got.ground_truth['anomaly'].payload is truth
    assert got.index == 7 and got.ground_truth['anomaly'].index == 3 and got.ground_truth['anomaly'].stamp == stamp(0)


@pytest.mark.parametrize(
    ('kwargs', 'match'),
    [
        ({'roles': ('anomaly',), 'window': 0}, 'window must be >= 1, got 0'),
        ({'roles': ('image',)}, "not 'image'"),
        ({'roles': ('labels', 'labels')}, 'distinct'),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(BagError, match=match):
        StampMatcher(**kwargs)


def test_unknown_kind() -> None:
    m: StampMatcher[str, str] = StampMatcher(('anomaly',))
    with pytest.raises(BagError, match=r"unknown message kind 'labels'.*\['anomaly'\]"):
        m.push('labels', stamp(0), 0, 'x')
