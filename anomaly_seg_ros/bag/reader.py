"""Read camera frames and their ground truth back from a bag as Samples, with a report of what went wrong.

:func:`read_bag` opens rosbag2 (mcap, sqlite3) and ROS 1 bags through ``rosbags.highlevel.AnyReader``
(no ROS install needed). It yields one :class:`BagFrame` per image message, in bag (receive-time)
order. Ground truth (mono8 sensor_msgs/Image on its own topics) is paired with images by equal header
stamp, whichever comes first in the file; pairing is bounded: at most ``window`` images wait for their
ground truth and at most ``window`` unpaired ground-truth messages are kept per topic.

Bad input never stops the rest from being read, unless ``strict=True`` (then the first problem
raises :class:`~anomaly_seg_ros.errors.BagError`). Every problem is named by topic and message index
(0-based, in bag order, counting every message of that topic) in the :class:`BagReadReport`:

- ``skipped``: messages or frames not yielded: undecodable image, ground truth with a bad
  encoding/size/values (the frame it belongs to is skipped too), image/ground-truth size mismatch.
- ``warnings``: yielded but suspicious: image header stamp going backwards or repeating.
- ``unmatched``: ground-truth messages whose stamp no image had, per topic.
- ``failure``: the bag is truncated or corrupt; reading stopped there. A truncated MCAP file (no
  footer, which rosbags needs) is scanned from the start instead, so the frames before the cut are
  still yielded.
- a damaged MCAP chunk (fails its CRC check, cannot be decoded) is skipped and reading goes on with the
  next one: one ``skipped`` issue names the chunk (number, byte offset, why) and the messages it held
  (count, message indices, log-time range); ``chunks_lost`` holds the same as data. Message indices
  count the lost messages too, so later indices stay those of the bag. A frame whose ground truth
  was in a lost chunk is skipped (not evaluated without it).

This module composes the parts: :mod:`~anomaly_seg_ros.bag.sources` (opening the bag),
:mod:`~anomaly_seg_ros.bag.decode` (messages to arrays), :mod:`~anomaly_seg_ros.bag.matcher` (stamp
pairing) and :mod:`~anomaly_seg_ros.bag.types` (what comes back).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from anomaly_seg_ros.bag.conventions import COMPRESSED_TYPE, IMAGE_TYPE, IMAGE_TYPES, exception_text, hw
from anomaly_seg_ros.bag.decode import decode_ground_truth, decode_image, header_stamp_ns
from anomaly_seg_ros.bag.matcher import (
    IMAGE,
    DuplicateStamp,
    Match,
    MatchEvent,
    StampBackwards,
    StampMatcher,
    StampRepeats,
    Unmatched,
)
from anomaly_seg_ros.bag.sources import BagSource, LostChunk, SalvageSource, SourceFailure, open_source, topic_list
from anomaly_seg_ros.bag.types import DEFAULT, BagFrame, BagIssue, BagReadReport, DefaultTopic
from anomaly_seg_ros.bag.writer import BagTopics
from anomaly_seg_ros.data.sample import Sample
from anomaly_seg_ros.errors import BagError

__all__ = ['DEFAULT', 'BagFrame', 'BagIssue', 'BagReadReport', 'BagReader', 'bag_info', 'read_bag']

_GT_ROLES = ('anomaly', 'labels')
_GT_WORD = {'anomaly': 'anomaly', 'labels': 'label'}
# An image stops waiting for a ground-truth topic once this many of its messages with later stamps
# have come after the image: one stray or out-of-order message does not release it too early.
_LAG = 2
# A frame lacking ground truth of a topic that lost messages in a skipped chunk is skipped when its stamp
# lies within this of the lost log times (they are receive times, a little after the header stamp).
_LOST_NEAR_NS = 1_000_000_000

# what the matcher carries: the decoded image with its frame_id (None: undecodable, already reported),
# and the decoded ground truth or the reason it is unusable
_ImagePayload = tuple[np.ndarray | None, str]
_TruthPayload = tuple[np.ndarray | None, str | None]


class BagReader:
    """Iterator over the frames of a bag; ``report`` tells what was read and skipped.

    The bag is opened and the topics resolved when the reader is made (missing or ambiguous topics
    raise :class:`BagError` at once); messages are read while iterating. A reader is a one-pass
    iterator; ``report`` is complete (``report.finished``) once iteration has ended.

    image_topic:   None: the only sensor_msgs/Image or CompressedImage topic that is not ground truth.
    anomaly_topic: DEFAULT: '/ground_truth/anomaly' if the bag has it; None: do not read; a name: must exist.
    labels_topic:  as anomaly_topic, default '/ground_truth/labels'.
    strict:        raise BagError on the first problem (including unmatched ground truth at the end)
                   instead of skipping and reporting.
    window:        pairing bound: images waiting for ground truth / unpaired ground truth kept per topic.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        image_topic: str | None = None,
        anomaly_topic: str | None = DEFAULT,
        labels_topic: str | None = DEFAULT,
        strict: bool = False,
        progress: bool = False,
        window: int = 64,
    ) -> None:
        self.path = Path(path)
        self.strict = bool(strict)
        self.progress = bool(progress)
        if int(window) < 1:
            raise BagError(f'window must be >= 1, got {window!r}')
        self.window = int(window)
        self.report = BagReadReport(path=str(self.path))
        source = open_source(self.path)
        try:
            self._resolve(source, image_topic, anomaly_topic, labels_topic)
            if source.failure is not None and self.strict:
                intact = source.topics[self.image_topic][1] or 0
                where = (
                    f'after {self.image_topic} message {intact - 1}'
                    if intact
                    else (f'before any {self.image_topic} message')
                )
                raise BagError(f'bag {self.path} is truncated or corrupt, intact data ends {where}: {source.failure}')
        finally:
            source.close()
        # a scanned (salvaged) MCAP holds no open file: keep it rather than scanning it again
        self._salvage = source if isinstance(source, SalvageSource) else None
        if self._salvage is not None:
            self.report.notes.append(f'read by scanning {self._salvage.mcap.name}: {self._salvage.open_error}')
        self._gen: Iterator[BagFrame] | None = None

    # ------------------------------------------------------------------ topics

    def _resolve(self, source: BagSource, image_topic: str | None, anomaly_topic: Any, labels_topic: Any) -> None:
        topics = source.topics
        self.report.storage = source.storage
        # message counts tell when a ground-truth topic is used up; a damaged bag's counts do not
        # (what was lost would have come later), so there images wait for the lag or the end
        self._totals = {t: n for t, (_, n) in topics.items()} if source.failure is None else {}
        defaults = BagTopics()

        def gt(arg: Any, default: str, role: str) -> str | None:
            if arg is None:
                return None
            if isinstance(arg, DefaultTopic):
                return default if default in topics and topics[default][0] in IMAGE_TYPES else None
            if arg not in topics:
                raise BagError(f'bag {self.path}: {role} topic {arg!r} is not in the bag; topics: {topic_list(topics)}')
            if topics[arg][0] not in IMAGE_TYPES:
                raise BagError(
                    f'bag {self.path}: {role} topic {arg!r} has type {topics[arg][0]}, expected {IMAGE_TYPE}'
                )
            return str(arg)

        self.anomaly_topic = gt(anomaly_topic, defaults.anomaly, 'anomaly')
        self.labels_topic = gt(labels_topic, defaults.labels, 'labels')
        if image_topic is None:
            not_image = {self.anomaly_topic, self.labels_topic, defaults.anomaly, defaults.labels}
            candidates = sorted(t for t, (ty, _) in topics.items() if ty in IMAGE_TYPES and t not in not_image)
            if len(candidates) != 1:
                what = 'no' if not candidates else f'{len(candidates)}'
                raise BagError(
                    f'bag {self.path}: {what} image topics to choose from '
                    f'({", ".join(candidates) or "none"}); pass image_topic. Topics: {topic_list(topics)}'
                )
            image_topic = candidates[0]
        elif image_topic not in topics:
            raise BagError(
                f'bag {self.path}: image topic {image_topic!r} is not in the bag; topics: {topic_list(topics)}'
            )
        elif topics[image_topic][0] not in IMAGE_TYPES:
            raise BagError(
                f'bag {self.path}: image topic {image_topic!r} has type {topics[image_topic][0]}, '
                f'expected {IMAGE_TYPE} or {COMPRESSED_TYPE}'
            )
        if image_topic in (self.anomaly_topic, self.labels_topic):
            raise BagError(f'bag {self.path}: topic {image_topic!r} cannot be both the image and ground truth')
        if self.anomaly_topic is not None and self.anomaly_topic == self.labels_topic:
            raise BagError(f'bag {self.path}: anomaly and labels topic are both {self.anomaly_topic!r}')
        self.image_topic = str(image_topic)
        topic_of = {'anomaly': self.anomaly_topic, 'labels': self.labels_topic}
        self._role_topic = {r: t for r, t in topic_of.items() if t is not None}  # the roles in use only
        self._roles = [r for r in _GT_ROLES if r in self._role_topic]
        rep = self.report
        rep.image_topic, rep.anomaly_topic, rep.labels_topic = self.image_topic, self.anomaly_topic, self.labels_topic
        rep.messages = {t: 0 for t in (self.image_topic, *(self._role_topic[r] for r in self._roles))}
        rep.unmatched = {self._role_topic[r]: [] for r in self._roles}

    # ------------------------------------------------------------------ iteration

    def __iter__(self) -> BagReader:
        return self

    def __next__(self) -> BagFrame:
        if self._gen is None:
            self._gen = self._frames()
        return next(self._gen)

    def close(self) -> None:
        """Stop reading early (closes the bag); the report then says it was not read to the end."""
        if self._gen is not None:
            self._gen.close()  # type: ignore[attr-defined]

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _problem(self, bucket: list[BagIssue], topic: str, index: int | None, reason: str) -> None:
        issue = BagIssue(topic, index, reason)
        if self.strict:
            raise BagError(f'bag {self.path}: {issue}')
        bucket.append(issue)

    def _frames(self) -> Iterator[BagFrame]:
        rep = self.report
        source: BagSource = self._salvage if self._salvage is not None else open_source(self.path)
        roles_by_topic = {self._role_topic[r]: r for r in self._roles}
        counters = {t: 0 for t in rep.messages}
        self._matcher: StampMatcher[_ImagePayload, _TruthPayload] = StampMatcher(
            self._roles,
            window=self.window,
            totals={r: self._totals.get(self._role_topic[r]) for r in self._roles},
            lag=_LAG,
        )
        self._failed = False  # the bag broke off: images still waiting for ground truth lost it
        self._lost: dict[str, list[tuple[int, int, str]]] = {}  # topic -> (first, last log time, chunk) lost
        self._chunk_lost = False
        bar = None
        if self.progress:
            from tqdm import tqdm  # noqa: PLC0415

            bar = tqdm(total=source.topics[self.image_topic][1], desc=f'read {self.path.name}', unit='frame')
        try:
            try:
                for item in source.messages(set(counters)):
                    if isinstance(item, LostChunk):
                        self._on_lost_chunk(item, counters)
                        continue
                    topic, msgtype, _t, raw = item
                    index = counters[topic]
                    counters[topic] += 1
                    rep.messages[topic] += 1
                    try:
                        msg = source.deserialize(raw, msgtype)
                        stamp = header_stamp_ns(msg)
                    except Exception as exc:  # noqa: BLE001 - corrupt message bytes: any exception type
                        self._problem(rep.skipped, topic, index, f'cannot deserialize {msgtype}: {exception_text(exc)}')
                        continue
                    if topic == self.image_topic:
                        if bar is not None:
                            bar.update(1)
                        yield from self._on_image(index, stamp, msg, msgtype)
                    else:
                        yield from self._on_ground_truth(roles_by_topic[topic], index, stamp, msg, msgtype)
            except SourceFailure as exc:
                n = counters[self.image_topic]
                where = f'after {self.image_topic} message {n - 1}' if n else f'before any {self.image_topic} message'
                issue = BagIssue(self.image_topic, n, f'bag truncated or corrupt, reading stopped {where}: {exc}')
                if self.strict:
                    raise BagError(f'bag {self.path}: {issue}') from None
                rep.failure = issue
                self._failed = True
        finally:
            source.close()
            if bar is not None:
                bar.close()
        # a damaged index can make a reader stop early without an error (lost chunks are reported already)
        if rep.failure is None and not self._chunk_lost:
            for topic, n in counters.items():
                total = self._totals.get(topic)
                if total is not None and n != total:
                    issue = BagIssue(
                        topic, n, f'the bag lists {total} messages on this topic but {n} were read: corrupt bag'
                    )
                    if self.strict:
                        raise BagError(f'bag {self.path}: {issue}')
                    rep.failure = issue
                    self._failed = True
                    break
        yield from self._handle(self._matcher.finish())
        for indices in rep.unmatched.values():
            indices.sort()
        rep.finished = True
        if self.strict:
            for topic, indices in rep.unmatched.items():
                if indices:
                    raise BagError(
                        f'bag {self.path}: {topic} message {indices[0]} (of messages {indices}): '
                        'no image message with the same header stamp'
                    )

    def _on_lost_chunk(self, lost: LostChunk, counters: dict[str, int]) -> None:
        """Report a skipped chunk with the messages of the topics read that it held; advance their indices."""
        self._chunk_lost = True
        where = lost.where()
        span = f'log time {lost.start_ns}..{lost.end_ns} ns' if lost.start_ns is not None else 'log time unknown'
        held: dict[str, list[int]] = {}
        parts: list[str] = []
        first: tuple[str, int] | None = None
        if lost.log_times is None:
            parts.append('how many messages it held is unknown (no message index after it)')
            for topic in counters:
                self._lost.setdefault(topic, []).append((lost.start_ns or 0, lost.end_ns or 2**63, where))
        else:
            for topic in counters:  # image topic first, then ground truth: the order of rep.messages
                times = lost.log_times.get(topic, [])
                if not times:
                    continue
                start = counters[topic]
                counters[topic] += len(times)
                held[topic] = list(range(start, start + len(times)))
                self._lost.setdefault(topic, []).append((times[0], times[-1], where))
                parts.append(f'{topic} messages {start}..{start + len(times) - 1} ({len(times)})')
                first = first or (topic, start)
            n = sum(len(v) for v in held.values())
            parts = [f'{n} messages lost' + (f': {", ".join(parts)}' if parts else ' of the topics read')]
        self.report.chunks_lost.append(
            {
                'chunk': lost.index,
                'offset': lost.offset,
                'reason': lost.reason,
                'start_ns': lost.start_ns,
                'end_ns': lost.end_ns,
                'messages': held if lost.log_times is not None else None,
            }
        )
        reason = f'{where} skipped ({lost.reason}); {parts[0]}; {span}'
        if lost.log_times is not None and not held:
            self.report.notes.append(reason)
            return
        topic, index = first if first is not None else (self.image_topic, None)
        self._problem(self.report.skipped, topic, index, reason)

    def _lost_truth(self, stamp: int, missing: Iterable[str]) -> list[str]:
        """'topic (chunk k at byte n)' for each missing ground-truth topic that lost messages near ``stamp``:
        a log time within _LOST_NEAR_NS of its stamp (log time is receive time, a little after the stamp)."""
        out = []
        for topic in missing:
            chunks = [w for t0, t1, w in self._lost.get(topic, ()) if t0 - _LOST_NEAR_NS <= stamp <= t1 + _LOST_NEAR_NS]
            if chunks:
                out.append(f'{topic} ({", ".join(dict.fromkeys(chunks))})')
        return out

    def _on_image(self, index: int, stamp: int, msg: Any, msgtype: str) -> Iterator[BagFrame]:
        image, bad = decode_image(msg, msgtype)
        events = self._matcher.push(IMAGE, stamp, index, (image, str(msg.header.frame_id)))
        # report order as found: the stamp check, then the decoding, then the frames this lets go
        yield from self._handle(e for e in events if not isinstance(e, Match))
        if bad is not None:
            self._problem(self.report.skipped, self.image_topic, index, bad)
        yield from self._handle(e for e in events if isinstance(e, Match))

    def _on_ground_truth(self, role: str, index: int, stamp: int, msg: Any, msgtype: str) -> Iterator[BagFrame]:
        arr, bad = decode_ground_truth(role, msg, msgtype)
        if bad is not None:
            self._problem(self.report.skipped, self._role_topic[role], index, bad)
        yield from self._handle(self._matcher.push(role, stamp, index, (arr, bad)))

    def _handle(self, events: Iterable[MatchEvent[_ImagePayload, _TruthPayload]]) -> Iterator[BagFrame]:
        """Report the matcher's problems and turn its matches into frames."""
        rep = self.report
        for event in events:
            if isinstance(event, Match):
                frame = self._emit(event)
                if frame is not None:
                    yield frame
            elif isinstance(event, (StampBackwards, StampRepeats)):
                self._problem(rep.warnings, self.image_topic, event.index, event.reason)
            elif isinstance(event, DuplicateStamp):
                self._problem(rep.skipped, self._role_topic[event.role], event.index, event.reason)
            elif isinstance(event, Unmatched):
                rep.unmatched[self._role_topic[event.role]].append(event.index)  # strict raises at the end

    def _emit(self, match: Match[_ImagePayload, _TruthPayload]) -> BagFrame | None:
        rep = self.report
        image, frame_id = match.payload
        if image is None:
            return None  # undecodable image, already reported; its ground truth is used up with it
        gts = match.ground_truth
        if self._failed and (lost := [self._role_topic[r] for r in self._roles if r not in gts]):
            rep.skipped.append(
                BagIssue(
                    self.image_topic,
                    match.index,
                    f'frame skipped: its ground truth ({", ".join(map(str, lost))}) '
                    'was not read before the bag broke off',
                )
            )
            return None
        if self._lost and (
            lost := self._lost_truth(match.stamp, [self._role_topic[r] for r in self._roles if r not in gts])
        ):
            self._problem(
                rep.skipped,
                self.image_topic,
                match.index,
                f'frame skipped: its ground truth was in a damaged chunk that was skipped: {", ".join(lost)}',
            )
            return None
        for role, gt in gts.items():
            if gt.payload[1] is not None:
                self._problem(
                    rep.skipped,
                    self.image_topic,
                    match.index,
                    f'frame skipped: its {role} ({self._role_topic[role]} message {gt.index}) is unusable',
                )
                return None
        arrays: dict[str, np.ndarray] = {}
        for role, gt in gts.items():
            arr = gt.payload[0]
            if arr is None:  # cannot happen: a ground truth without an array has a reason, handled above
                raise BagError(f'bag {self.path}: {self._role_topic[role]} message {gt.index} has no array')
            if arr.shape != image.shape[:2]:
                self._problem(
                    rep.skipped,
                    self._role_topic[role],
                    gt.index,
                    f'{_GT_WORD[role]} {hw(arr)} vs image {hw(image)} (HxW; image '
                    f'{self.image_topic} message {match.index}): frame skipped',
                )
                return None
            arrays[role] = arr
        sample = Sample(
            image=image,
            labels=arrays.get('labels'),
            anomaly=arrays.get('anomaly'),
            name=f'{self.path.stem}-{match.index:06d}',
        )
        rep.frames += 1
        return BagFrame(match.index, match.stamp, sample, frame_id)


def read_bag(
    path: Path | str,
    *,
    image_topic: str | None = None,
    anomaly_topic: str | None = DEFAULT,
    labels_topic: str | None = DEFAULT,
    strict: bool = False,
    progress: bool = False,
    window: int = 64,
) -> BagReader:
    """Frames of the bag at ``path`` (see :class:`BagReader`); ``.report`` after iterating.

    >>> reader = read_bag('run1')                      # doctest: +SKIP
    >>> frames = list(reader); print(reader.report.summary())  # doctest: +SKIP
    """
    return BagReader(
        path,
        image_topic=image_topic,
        anomaly_topic=anomaly_topic,
        labels_topic=labels_topic,
        strict=strict,
        progress=progress,
        window=window,
    )


def bag_info(path: Path | str) -> dict[str, Any]:
    """What a bag holds: path, storage, topics ({name: {'type', 'count'}}), message_count,
    start_ns, end_ns, duration_s (last - first bag timestamp), and failure (None, or why a truncated
    MCAP could only be read in part; counts then are those of the intact part)."""
    path = Path(path)
    source = open_source(path)
    try:
        topics = {t: {'type': ty, 'count': n} for t, (ty, n) in sorted(source.topics.items())}
        start, end = source.start_ns, source.end_ns
        return {
            'path': str(path),
            'storage': source.storage,
            'topics': topics,
            'message_count': sum(int(v['count'] or 0) for v in topics.values()),
            'start_ns': start,
            'end_ns': end,
            'duration_s': (end - start) / 1e9 if start is not None and end is not None else 0.0,
            'failure': source.failure,
        }
    finally:
        source.close()
