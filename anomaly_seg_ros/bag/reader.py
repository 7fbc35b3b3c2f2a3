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
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, cast

import numpy as np

from anomaly_seg_ros.bag._common import (
    COMPRESSED_TYPE,
    GT_ENCODINGS,
    IMAGE_TYPE,
    IMAGE_TYPES,
    bad_gt_values,
    hw,
    require_rosbags,
    ros2_typestore,
)
from anomaly_seg_ros.bag._mcap_salvage import McapChannel, McapMessage, McapSalvage, McapSchema
from anomaly_seg_ros.bag.writer import BagTopics
from anomaly_seg_ros.data.sample import Sample
from anomaly_seg_ros.errors import BagError, CodecError
from anomaly_seg_ros.ros.codec import compressed_to_rgb, image_to_rgb

__all__ = ['DEFAULT', 'BagFrame', 'BagIssue', 'BagReadReport', 'BagReader', 'bag_info', 'read_bag']

_GT_ROLES = ('anomaly', 'labels')
_GT_WORD = {'anomaly': 'anomaly', 'labels': 'label'}
# An image stops waiting for a ground-truth topic once this many of its messages with later stamps
# have come after the image: one stray or out-of-order message does not release it too early.
_LAG = 2


class _Default:
    """Marker for a ground-truth topic argument left at its default: the BagTopics name if the bag has it."""

    def __repr__(self) -> str:
        return 'DEFAULT'


DEFAULT: Any = _Default()


@dataclass
class BagFrame:
    """One image message with its ground truth.

    index:    index of the image message in the image topic (0-based, bag order).
    stamp_ns: its header stamp in nanoseconds.
    sample:   image decoded to RGB; labels / anomaly from the ground-truth topics (None if absent);
              name ``'<bag name>-<index:06d>'``.
    frame_id: its header frame_id.
    """

    index: int
    stamp_ns: int
    sample: Sample
    frame_id: str


class BagIssue(NamedTuple):
    """One problem: the topic, the message index in that topic (None: not tied to a message), why."""

    topic: str
    # a public field name that shadows tuple.index(); NamedTuple allows it at runtime
    index: int | None  # type: ignore[assignment]
    reason: str

    def __str__(self) -> str:
        if self.index is None:
            return f'{self.topic}: {self.reason}'
        return f'{self.topic} message {self.index}: {self.reason}'


@dataclass
class BagReadReport:
    """What :class:`BagReader` read and what it skipped, with reasons. Complete once ``finished``."""

    path: str
    storage: str = ''
    image_topic: str = ''
    anomaly_topic: str | None = None
    labels_topic: str | None = None
    frames: int = 0  # frames yielded
    messages: dict[str, int] = field(default_factory=dict)  # messages read per topic
    skipped: list[BagIssue] = field(default_factory=list)
    warnings: list[BagIssue] = field(default_factory=list)
    unmatched: dict[str, list[int]] = field(default_factory=dict)  # GT topic -> message indices
    failure: BagIssue | None = None  # truncated/corrupt bag: where reading stopped and why
    notes: list[str] = field(default_factory=list)
    finished: bool = False

    @property
    def ok(self) -> bool:
        """True when everything was read and nothing was skipped, suspicious or unmatched."""
        return self.finished and not (self.skipped or self.warnings or self.failure or any(self.unmatched.values()))

    @property
    def issues(self) -> list[BagIssue]:
        """Every problem as (topic, index, reason): skipped, warnings, unmatched, then the failure."""
        out = [*self.skipped, *self.warnings]
        for topic, indices in self.unmatched.items():
            out.extend(BagIssue(topic, i, 'no image message with the same header stamp') for i in indices)
        if self.failure is not None:
            out.append(self.failure)
        return out

    def summary(self) -> str:
        """A few human-readable lines."""
        lines = [
            f'bag {self.path} ({self.storage}): {self.frames} frames from {self.image_topic}'
            f' (anomaly: {self.anomaly_topic}, labels: {self.labels_topic})',
            '  messages read: ' + ', '.join(f'{t} {n}' for t, n in self.messages.items()),
        ]
        lines += [f'  skipped {x}' for x in self.skipped]
        lines += [f'  warning {x}' for x in self.warnings]
        lines += [f'  unmatched {t} messages {idx}' for t, idx in self.unmatched.items() if idx]
        if self.failure is not None:
            lines.append(f'  FAILED {self.failure}')
        lines += [f'  note: {x}' for x in self.notes]
        if not self.finished:
            lines.append('  (not read to the end)')
        return '\n'.join(lines)


# --------------------------------------------------------------------------- sources


class _OpenFailure(Exception):
    pass


class _SourceFailure(Exception):
    pass


def _stamp_ns(msg: Any) -> int:
    stamp = msg.header.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _fmt_ns(ns: int) -> str:
    sec, nsec = divmod(int(ns), 1_000_000_000)
    return f'{sec}.{nsec:09d}'


def _exc_text(exc: BaseException) -> str:
    text = str(exc).strip()
    return f'{type(exc).__name__}: {text}' if text else type(exc).__name__


class _AnyReaderSource:
    """A bag rosbags can open: rosbag2 directory (mcap/sqlite3) or ROS 1 .bag file."""

    failure: str | None = None

    def __init__(self, path: Path) -> None:
        require_rosbags()
        from rosbags.highlevel import AnyReader  # noqa: PLC0415

        try:
            self.reader = AnyReader([path], default_typestore=ros2_typestore())
            self.reader.open()
        except Exception as exc:  # noqa: BLE001 - rosbags raises many types for bad files
            raise _OpenFailure(_exc_text(exc)) from None
        try:
            self.topics: dict[str, tuple[str, int | None]] = {
                name: (info.msgtype or '?', info.msgcount) for name, info in self.reader.topics.items()
            }
            self.storage = self._storage()
            self.start_ns = self.reader.start_time if self.reader.message_count else None
            # rosbags' end_time is one past the last message
            self.end_ns = self.reader.end_time - 1 if self.reader.message_count else None
        except Exception as exc:  # noqa: BLE001
            self.close()
            raise _OpenFailure(_exc_text(exc)) from None

    def _storage(self) -> str:
        if not self.reader.is2:
            return 'rosbag1'
        names: set[str] = set()
        for r in self.reader.readers:  # rosbags Reader -> DirectoryReader (-> storages) or a storage file reader
            storage = getattr(r, 'storage', None)
            names.update(type(s).__name__ for s in (getattr(storage, 'storages', None) or [storage]))
        if names == {'McapReader'}:
            return 'mcap'
        if names == {'Sqlite3Reader'}:
            return 'sqlite3'
        return 'rosbag2'

    def messages(self, topics: set[str]) -> Iterator[tuple[str, str, int, Any]]:
        conns = [c for c in self.reader.connections if c.topic in topics]
        if not conns:
            return
        gen = self.reader.messages(connections=conns)
        while True:
            try:
                conn, timestamp, raw = next(gen)
            except StopIteration:
                return
            except Exception as exc:  # noqa: BLE001 - a corrupt file surfaces as any exception type
                raise _SourceFailure(_exc_text(exc)) from None
            yield conn.topic, conn.msgtype, timestamp, raw

    def deserialize(self, raw: Any, msgtype: str) -> Any:
        return self.reader.deserialize(raw, msgtype)

    def close(self) -> None:
        try:
            self.reader.close()
        except Exception:  # noqa: BLE001, S110 - closing a half-open reader may fail; nothing to do
            pass


class _SalvageSource:
    """An MCAP file read by scanning (rosbags could not open it): what is intact before the damage."""

    storage = 'mcap (scanned)'

    def __init__(self, mcap: Path, open_error: str) -> None:
        self.mcap = mcap
        self.open_error = open_error
        scan = McapSalvage(mcap)
        counts: dict[int, int] = {}
        first = last = None
        for rec in scan:
            if isinstance(rec, McapMessage):
                counts[rec.channel_id] = counts.get(rec.channel_id, 0) + 1
                first = rec.log_time if first is None else min(first, rec.log_time)
                last = rec.log_time if last is None else max(last, rec.log_time)
        if not scan.channels:
            raise _OpenFailure(f'{open_error}; scanning {mcap.name} found no readable channel ({scan.error})')
        self.failure = scan.error
        self.start_ns, self.end_ns = first, last
        # counts of the intact messages: exactly what messages() will yield
        self.topics: dict[str, tuple[str, int | None]] = {}
        for cid, ch in scan.channels.items():
            msgtype = scan.schemas[ch.schema_id].name if ch.schema_id in scan.schemas else '?'
            prev = self.topics.get(ch.topic, (msgtype, 0))[1] or 0
            self.topics[ch.topic] = (msgtype, prev + counts.get(cid, 0))
        # topics declared in metadata.yaml whose channel record was lost to the damage: 0 intact messages
        for topic, msgtype in self._metadata_topics(mcap.parent / 'metadata.yaml').items():
            self.topics.setdefault(topic, (msgtype, 0))
        self.typestore = self._typestore(scan.schemas.values())

    @staticmethod
    def _metadata_topics(yamlpath: Path) -> dict[str, str]:
        try:
            from ruamel.yaml import YAML  # noqa: PLC0415 - a rosbags dependency

            info = YAML(typ='safe').load(yamlpath.read_text())['rosbag2_bagfile_information']
            return {
                str(x['topic_metadata']['name']): str(x['topic_metadata']['type'])
                for x in info['topics_with_message_count']
            }
        except Exception:  # noqa: BLE001 - no or unreadable metadata.yaml: rely on the scan alone
            return {}

    @staticmethod
    def _typestore(schemas: Any) -> Any:
        from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore  # noqa: PLC0415

        try:
            typs: dict[str, Any] = {}
            for s in schemas:
                if s.encoding == 'ros2msg':
                    typs.update(get_types_from_msg(s.data, s.name))
                elif s.encoding == 'ros2idl':
                    typs.update(get_types_from_idl(s.data))
            store = get_typestore(Stores.EMPTY)
            store.register(typs)
            if all(t in store.types for t in IMAGE_TYPES):
                return store
        except Exception:  # noqa: BLE001, S110 - fall back to the Humble definitions below
            pass
        return ros2_typestore()

    def messages(self, topics: set[str]) -> Iterator[tuple[str, str, int, Any]]:
        scan = McapSalvage(self.mcap)
        channels: dict[int, McapChannel] = {}
        schemas: dict[int, McapSchema] = {}
        for rec in scan:
            if isinstance(rec, McapSchema):
                schemas[rec.id] = rec
            elif isinstance(rec, McapChannel):
                channels[rec.id] = rec
            elif (ch := channels.get(rec.channel_id)) is not None and ch.topic in topics:
                msgtype = schemas[ch.schema_id].name if ch.schema_id in schemas else '?'
                yield ch.topic, msgtype, rec.log_time, rec.data
        if scan.error is not None:
            raise _SourceFailure(f'{self.open_error}; scanning {self.mcap.name}: {scan.error}')

    def deserialize(self, raw: Any, msgtype: str) -> Any:
        return self.typestore.deserialize_cdr(raw, msgtype)

    def close(self) -> None:
        pass


def _single_mcap(path: Path) -> Path | None:
    if path.is_file() and path.suffix == '.mcap':
        return path
    if path.is_dir():
        found = sorted(path.glob('*.mcap'))
        if len(found) == 1:
            return found[0]
    return None


def _open_source(path: Path) -> _AnyReaderSource | _SalvageSource:
    if not path.exists():
        raise BagError(f'bag {path} does not exist')
    try:
        return _AnyReaderSource(path)
    except _OpenFailure as exc:
        mcap = _single_mcap(path)
        if mcap is None:
            raise BagError(f'cannot read bag {path}: {exc}') from None
        try:
            return _SalvageSource(mcap, f'rosbags cannot open it ({exc})')
        except _OpenFailure as exc2:
            raise BagError(f'cannot read bag {path}: {exc2}') from None


def _topic_list(topics: dict[str, tuple[str, int | None]]) -> str:
    if not topics:
        return '(none)'
    return ', '.join(f'{t} ({ty}, {n} msgs)' for t, (ty, n) in sorted(topics.items()))


# --------------------------------------------------------------------------- decoding


def _decode_image(msg: Any, msgtype: str) -> np.ndarray:
    if msgtype == COMPRESSED_TYPE:
        rgb = compressed_to_rgb(msg.format, msg.data)
    else:
        rgb = image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.data, msg.is_bigendian)
    return rgb if rgb.flags.writeable else rgb.copy()


def _decode_gt(role: str, msg: Any, msgtype: str) -> tuple[np.ndarray | None, str | None]:
    """(array, None) or (None, reason)."""
    try:
        if msgtype == COMPRESSED_TYPE:
            fmt = str(msg.format).lower()
            if 'png' not in fmt:
                return None, f'compressed ground truth must be png (lossless), format is {msg.format!r}'
            arr = compressed_to_rgb(msg.format, msg.data)[:, :, 0]
        else:
            if str(msg.encoding).strip().lower() not in GT_ENCODINGS:
                return None, f'ground-truth encoding {msg.encoding!r}, expected mono8'
            arr = image_to_rgb('mono8', msg.height, msg.width, msg.step, msg.data)[:, :, 0]
    except CodecError as exc:
        return None, f'cannot decode: {exc}'
    arr = np.ascontiguousarray(arr)
    bad = bad_gt_values(role, arr)
    return (None, bad) if bad is not None else (arr, None)


@dataclass
class _GT:
    index: int
    stamp: int
    arr: np.ndarray | None
    bad: str | None


@dataclass
class _Pending:
    index: int
    stamp: int
    frame_id: str
    image: np.ndarray | None  # None: undecodable, already reported
    gt: dict[str, _GT] = field(default_factory=dict)
    later: dict[str, int] = field(default_factory=dict)  # per role: GT messages with a later stamp that came after it


# --------------------------------------------------------------------------- reader


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
        source = _open_source(self.path)
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
        self._salvage = source if isinstance(source, _SalvageSource) else None
        if self._salvage is not None:
            self.report.notes.append(f'read by scanning {self._salvage.mcap.name}: {self._salvage.open_error}')
        self._gen: Iterator[BagFrame] | None = None

    # ------------------------------------------------------------------ topics

    def _resolve(self, source: Any, image_topic: str | None, anomaly_topic: Any, labels_topic: Any) -> None:
        topics: dict[str, tuple[str, int | None]] = source.topics
        self.report.storage = source.storage
        # message counts tell when a ground-truth topic is used up; a damaged bag's counts do not
        # (what was lost would have come later), so there images wait for the lag or the end
        self._totals = {t: n for t, (_, n) in topics.items()} if source.failure is None else {}
        defaults = BagTopics()

        def gt(arg: Any, default: str, role: str) -> str | None:
            if arg is None:
                return None
            if isinstance(arg, _Default):
                return default if default in topics and topics[default][0] in IMAGE_TYPES else None
            if arg not in topics:
                raise BagError(
                    f'bag {self.path}: {role} topic {arg!r} is not in the bag; topics: {_topic_list(topics)}'
                )
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
                    f'({", ".join(candidates) or "none"}); pass image_topic. Topics: {_topic_list(topics)}'
                )
            image_topic = candidates[0]
        elif image_topic not in topics:
            raise BagError(
                f'bag {self.path}: image topic {image_topic!r} is not in the bag; topics: {_topic_list(topics)}'
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
        source = self._salvage if self._salvage is not None else _open_source(self.path)
        roles_by_topic = {self._role_topic[r]: r for r in self._roles}
        counters = {t: 0 for t in rep.messages}
        self._pending: deque[_Pending] = deque()
        self._buffers: dict[str, OrderedDict[int, _GT]] = {r: OrderedDict() for r in self._roles}
        self._gt_seen = dict.fromkeys(self._roles, 0)
        self._prev_stamp: tuple[int, int] | None = None  # (stamp, index) of the previous image
        self._failed = False  # the bag broke off: images still waiting for ground truth lost it
        bar = None
        if self.progress:
            from tqdm import tqdm  # noqa: PLC0415

            bar = tqdm(total=source.topics[self.image_topic][1], desc=f'read {self.path.name}', unit='frame')
        try:
            try:
                for topic, msgtype, _t, raw in source.messages(set(counters)):
                    index = counters[topic]
                    counters[topic] += 1
                    rep.messages[topic] = counters[topic]
                    try:
                        msg = source.deserialize(raw, msgtype)
                        stamp = _stamp_ns(msg)
                    except Exception as exc:  # noqa: BLE001 - corrupt message bytes: any exception type
                        self._problem(rep.skipped, topic, index, f'cannot deserialize {msgtype}: {_exc_text(exc)}')
                        continue
                    if topic == self.image_topic:
                        if bar is not None:
                            bar.update(1)
                        self._on_image(index, stamp, msg, msgtype)
                    else:
                        self._on_gt(roles_by_topic[topic], index, stamp, msg, msgtype)
                    yield from self._release(force=False)
            except _SourceFailure as exc:
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
        if rep.failure is None:  # a damaged index can make a reader stop early without an error
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
        yield from self._release(force=True)
        for role in self._roles:
            topic = self._role_topic[role]
            rep.unmatched[topic].extend(g.index for g in self._buffers[role].values())
            rep.unmatched[topic].sort()
            self._buffers[role].clear()
        rep.finished = True
        if self.strict:
            for topic, indices in rep.unmatched.items():
                if indices:
                    raise BagError(
                        f'bag {self.path}: {topic} message {indices[0]} (of messages {indices}): '
                        'no image message with the same header stamp'
                    )

    def _on_image(self, index: int, stamp: int, msg: Any, msgtype: str) -> None:
        rep = self.report
        if self._prev_stamp is not None:
            prev, prev_index = self._prev_stamp
            if stamp < prev:
                self._problem(
                    rep.warnings,
                    self.image_topic,
                    index,
                    f'stamp {_fmt_ns(stamp)} < previous {_fmt_ns(prev)} (message {prev_index})',
                )
            elif stamp == prev:
                self._problem(
                    rep.warnings, self.image_topic, index, f'stamp {_fmt_ns(stamp)} repeats message {prev_index}'
                )
        self._prev_stamp = (stamp, index)
        image: np.ndarray | None
        try:
            image = _decode_image(msg, msgtype)
        except CodecError as exc:
            self._problem(rep.skipped, self.image_topic, index, f'cannot decode image: {exc}')
            image = None
        except Exception as exc:  # noqa: BLE001 - a message missing fields
            self._problem(rep.skipped, self.image_topic, index, f'cannot decode image: {_exc_text(exc)}')
            image = None
        entry = _Pending(index, stamp, str(msg.header.frame_id), image)
        for role in self._roles:
            gt = self._buffers[role].pop(stamp, None)
            if gt is not None:
                entry.gt[role] = gt
        self._pending.append(entry)

    def _on_gt(self, role: str, index: int, stamp: int, msg: Any, msgtype: str) -> None:
        topic = self._role_topic[role]
        self._gt_seen[role] += 1
        arr, bad = _decode_gt(role, msg, msgtype)
        if bad is not None:
            self._problem(self.report.skipped, topic, index, bad)
        gt = _GT(index, stamp, arr, bad)
        for entry in self._pending:
            if role not in entry.gt and stamp > entry.stamp:
                entry.later[role] = entry.later.get(role, 0) + 1
        for entry in self._pending:
            if entry.stamp == stamp and role not in entry.gt:
                entry.gt[role] = gt
                return
        buf = self._buffers[role]
        if stamp in buf:
            self._problem(
                self.report.skipped,
                topic,
                index,
                f'header stamp {_fmt_ns(stamp)} repeats message {buf[stamp].index} of this topic',
            )
            return
        buf[stamp] = gt
        if len(buf) > self.window:
            _, old = buf.popitem(last=False)
            self.report.unmatched[topic].append(old.index)

    def _complete(self, entry: _Pending) -> bool:
        for role in self._roles:
            if role in entry.gt:
                continue
            total = self._totals.get(self._role_topic[role])
            if total is not None and self._gt_seen[role] >= total:
                continue  # every message of this topic has been read
            if entry.later.get(role, 0) >= _LAG:
                continue  # this topic has moved past the image's stamp
            return False
        return True

    def _release(self, force: bool) -> Iterator[BagFrame]:
        while self._pending:
            entry = self._pending[0]
            if not (force or len(self._pending) > self.window or self._complete(entry)):
                return
            self._pending.popleft()
            frame = self._emit(entry)
            if frame is not None:
                yield frame

    def _emit(self, entry: _Pending) -> BagFrame | None:
        rep = self.report
        if entry.image is None:
            return None  # undecodable image, already reported; its ground truth is used up with it
        if self._failed and (lost := [self._role_topic[r] for r in self._roles if r not in entry.gt]):
            rep.skipped.append(
                BagIssue(
                    self.image_topic,
                    entry.index,
                    f'frame skipped: its ground truth ({", ".join(map(str, lost))}) '
                    'was not read before the bag broke off',
                )
            )
            return None
        for role, gt in entry.gt.items():
            if gt.bad is not None:
                self._problem(
                    rep.skipped,
                    self.image_topic,
                    entry.index,
                    f'frame skipped: its {role} ({self._role_topic[role]} message {gt.index}) is unusable',
                )
                return None
        for role, gt in entry.gt.items():
            arr = cast(np.ndarray, gt.arr)  # decoded: entries with a bad (undecoded) GT returned above
            if arr.shape != entry.image.shape[:2]:
                self._problem(
                    rep.skipped,
                    self._role_topic[role],
                    gt.index,
                    f'{_GT_WORD[role]} {hw(arr)} vs image {hw(entry.image)} (HxW; image '
                    f'{self.image_topic} message {entry.index}): frame skipped',
                )
                return None
        sample = Sample(
            image=entry.image,
            labels=entry.gt['labels'].arr if 'labels' in entry.gt else None,
            anomaly=entry.gt['anomaly'].arr if 'anomaly' in entry.gt else None,
            name=f'{self.path.stem}-{entry.index:06d}',
        )
        rep.frames += 1
        return BagFrame(entry.index, entry.stamp, sample, entry.frame_id)


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
    source = _open_source(path)
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
