"""Where a bag's messages come from: rosbag2 (sqlite3, mcap) and ROS 1 bags through ``rosbags``, or a
truncated MCAP file scanned record by record.

Every source offers the same small interface (:class:`BagSource`): ``topics`` (name -> (type, count)),
``storage``, ``start_ns``/``end_ns``, ``failure`` (None, or why only part of the bag is readable),
``messages(topics)`` yielding ``(topic, msgtype, bag timestamp, raw bytes)`` in bag order, and a
:class:`LostChunk` where a damaged MCAP chunk was skipped, ``deserialize(raw, msgtype)`` and ``close()``.
Only public ``rosbags`` APIs are used: when rosbags stops in the middle of an MCAP file (a chunk
fails its CRC check, say), the rest is read by this package's own scanner, which skips damaged chunks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from anomaly_seg_ros.bag.conventions import IMAGE_TYPES, exception_text, require_rosbags, ros2_typestore
from anomaly_seg_ros.bag.salvage import McapChunkLoss, McapMessage, McapSalvage, McapSchema
from anomaly_seg_ros.errors import BagError

__all__ = [
    'AnyReaderSource',
    'BagSource',
    'LostChunk',
    'OpenFailure',
    'SalvageSource',
    'SourceFailure',
    'open_source',
    'topic_list',
]

# rosbag2 metadata.yaml storage_identifier -> the storage name reports use
_STORAGE_IDS = {'mcap': 'mcap', 'sqlite3': 'sqlite3'}
_STORAGE_SUFFIXES = {'.bag': 'rosbag1', '.mcap': 'mcap', '.db3': 'sqlite3'}
_ROS1_MAGIC = b'#ROSBAG V2.0\n'

Message = tuple[str, str, int, Any]  # topic, msgtype, bag timestamp (ns), raw bytes


@dataclass(frozen=True)
class LostChunk:
    """A damaged MCAP chunk that was skipped while reading: where it is, why, and what it held.

    index: chunk number in file order (0-based); offset: file offset of its record; reason: why it was
    skipped; start_ns/end_ns: the log-time range its header states (None: unreadable header);
    log_times: topic -> log times of the messages it held, every topic (None: the file has no message
    index to tell).
    """

    index: int
    offset: int
    reason: str
    start_ns: int | None
    end_ns: int | None
    log_times: dict[str, list[int]] | None

    @classmethod
    def of(cls, loss: McapChunkLoss, scan: McapSalvage) -> LostChunk:
        log_times: dict[str, list[int]] | None = None
        if loss.log_times is not None:
            log_times = {}
            for cid, times in loss.log_times.items():
                ch = scan.channels.get(cid)
                log_times.setdefault(ch.topic if ch is not None else f'(channel {cid})', []).extend(times)
            for times in log_times.values():
                times.sort()
        return cls(loss.index, loss.offset, loss.reason, loss.start_ns, loss.end_ns, log_times)

    def where(self) -> str:
        """'chunk 3 at byte 123456', for messages."""
        return f'chunk {self.index} at byte {self.offset}'


class OpenFailure(Exception):
    """The bag cannot be opened by this source; the text says why."""


class SourceFailure(Exception):
    """Reading broke off in the middle (truncated or corrupt bag); the text says why."""


class BagSource(Protocol):
    """What the reader needs of a bag (see the module docstring)."""

    topics: dict[str, tuple[str, int | None]]
    storage: str
    start_ns: int | None
    end_ns: int | None
    failure: str | None

    def messages(self, topics: set[str]) -> Iterator[Message | LostChunk]: ...

    def deserialize(self, raw: Any, msgtype: str) -> Any: ...

    def close(self) -> None: ...


def _bag_metadata(yamlpath: Path) -> dict[str, Any] | None:
    """The ``rosbag2_bagfile_information`` mapping of a metadata.yaml, None when missing or unreadable."""
    try:
        import yaml  # noqa: PLC0415

        info = yaml.safe_load(yamlpath.read_text())['rosbag2_bagfile_information']
    except Exception:  # noqa: BLE001 - no or unreadable metadata.yaml: the caller falls back
        return None
    return info if isinstance(info, dict) else None


class AnyReaderSource:
    """A bag ``rosbags.highlevel.AnyReader`` can open: rosbag2 directory (mcap/sqlite3) or ROS 1 .bag file."""

    failure: str | None = None

    def __init__(self, path: Path) -> None:
        require_rosbags()
        from rosbags.highlevel import AnyReader  # noqa: PLC0415

        if path.is_file() and path.suffix == '.bag':
            _check_ros1_magic(path)
        try:
            self.reader = AnyReader([path], default_typestore=ros2_typestore())
            self.reader.open()
        except Exception as exc:  # noqa: BLE001 - rosbags raises many types for bad files
            raise OpenFailure(exception_text(exc)) from None
        try:
            self.topics: dict[str, tuple[str, int | None]] = {
                name: (info.msgtype or '?', info.msgcount) for name, info in self.reader.topics.items()
            }
            self.storage = self._storage(path)
            self.start_ns: int | None = self.reader.start_time if self.reader.message_count else None
            # rosbags' end_time is one past the last message
            self.end_ns: int | None = self.reader.end_time - 1 if self.reader.message_count else None
        except Exception as exc:  # noqa: BLE001
            self.close()
            raise OpenFailure(exception_text(exc)) from None
        # where rosbags stops in the middle of an MCAP file, the scanner reads on
        self._mcap = _single_mcap(path) if self.storage == 'mcap' else None

    @staticmethod
    def _storage(path: Path) -> str:
        """'rosbag1', 'mcap', 'sqlite3' or (unknown rosbag2 storage) 'rosbag2', from the bag's files.

        A rosbag2 directory names its storage in metadata.yaml (``storage_identifier``); a single file
        is known by its suffix, the way rosbags itself picks a reader.
        """
        if path.is_file():
            return _STORAGE_SUFFIXES.get(path.suffix, 'rosbag2')
        info = _bag_metadata(path / 'metadata.yaml')
        return _STORAGE_IDS.get(str((info or {}).get('storage_identifier', '')), 'rosbag2')

    def messages(self, topics: set[str]) -> Iterator[Message | LostChunk]:
        conns = [c for c in self.reader.connections if c.topic in topics]
        if not conns:
            return
        gen = self.reader.messages(connections=conns)
        last: int | None = None  # log time of the last message yielded
        at_last: dict[str, int] = {}  # messages yielded with that log time, per topic
        while True:
            try:
                conn, timestamp, raw = next(gen)
            except StopIteration:
                return
            except Exception as exc:  # noqa: BLE001 - a corrupt file surfaces as any exception type
                if self._mcap is None:
                    raise SourceFailure(exception_text(exc)) from None
                yield from self._scan_on(topics, last, at_last, exception_text(exc))
                return
            if timestamp != last:
                last, at_last = timestamp, {}
            at_last[conn.topic] = at_last.get(conn.topic, 0) + 1
            yield conn.topic, conn.msgtype, timestamp, raw

    def _scan_on(
        self, topics: set[str], last: int | None, at_last: dict[str, int], error: str
    ) -> Iterator[Message | LostChunk]:
        """Read on with the scanner after rosbags stopped with ``error``.

        rosbags yields in log-time order, so what it yielded is every message logged before ``last``
        and, per topic, the first ``at_last[topic]`` messages logged at ``last``: those are passed over.
        """
        if self._mcap is None:
            raise SourceFailure(error)
        scan = McapSalvage(self._mcap)
        left = dict(at_last)
        for rec in scan:
            if isinstance(rec, McapChunkLoss):
                yield LostChunk.of(rec, scan)
                continue
            if not isinstance(rec, McapMessage) or (ch := scan.channels.get(rec.channel_id)) is None:
                continue
            if ch.topic not in topics:
                continue
            if last is not None and rec.log_time < last:
                continue
            if rec.log_time == last and left.get(ch.topic, 0) > 0:
                left[ch.topic] -= 1
                continue
            yield ch.topic, self.topics[ch.topic][0], rec.log_time, rec.data
        if scan.error is not None:
            raise SourceFailure(f'{error}; scanning {self._mcap.name} on from there: {scan.error}')
        if not scan.losses:
            raise SourceFailure(f'{error}; a scan of {self._mcap.name} found no damaged chunk and read on')

    def deserialize(self, raw: Any, msgtype: str) -> Any:
        return self.reader.deserialize(raw, msgtype)

    def close(self) -> None:
        try:
            self.reader.close()
        except Exception:  # noqa: BLE001, S110 - closing a half-open reader may fail; nothing to do
            pass


class SalvageSource:
    """An MCAP file read by scanning (rosbags could not open it): what is intact before the damage."""

    storage = 'mcap (scanned)'

    def __init__(self, mcap: Path, open_error: str) -> None:
        self.mcap = mcap
        self.open_error = open_error
        scan = McapSalvage(mcap)
        counts: dict[int, int] = {}
        first: int | None = None
        last: int | None = None
        for rec in scan:
            if isinstance(rec, McapMessage):
                counts[rec.channel_id] = counts.get(rec.channel_id, 0) + 1
                first = rec.log_time if first is None else min(first, rec.log_time)
                last = rec.log_time if last is None else max(last, rec.log_time)
        if not scan.channels:
            why = [f'{x.reason}: chunk {x.index} at byte {x.offset} skipped' for x in scan.losses]
            why += [scan.error] if scan.error is not None else []
            raise OpenFailure(f'{open_error}; scanning {mcap.name} found no readable channel ({"; ".join(why)})')
        self.failure: str | None = scan.error
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
        info = _bag_metadata(yamlpath)
        if info is None:
            return {}
        try:
            return {
                str(x['topic_metadata']['name']): str(x['topic_metadata']['type'])
                for x in info['topics_with_message_count']
            }
        except Exception:  # noqa: BLE001 - an unexpected metadata layout: rely on the scan alone
            return {}

    @staticmethod
    def _typestore(schemas: Iterable[McapSchema]) -> Any:
        """A typestore of the schemas the file carries; the Humble one if they lack the image types."""
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

    def messages(self, topics: set[str]) -> Iterator[Message | LostChunk]:
        scan = McapSalvage(self.mcap)
        for rec in scan:
            if isinstance(rec, McapChunkLoss):
                yield LostChunk.of(rec, scan)
            elif isinstance(rec, McapMessage) and (ch := scan.channels.get(rec.channel_id)) is not None:
                if ch.topic in topics:
                    schema = scan.schemas.get(ch.schema_id)
                    yield ch.topic, schema.name if schema is not None else '?', rec.log_time, rec.data
        if scan.error is not None:
            raise SourceFailure(f'{self.open_error}; scanning {self.mcap.name}: {scan.error}')

    def deserialize(self, raw: Any, msgtype: str) -> Any:
        return self.typestore.deserialize_cdr(raw, msgtype)

    def close(self) -> None:
        pass


def _check_ros1_magic(path: Path) -> None:
    """A .bag file that is no ROS 1 bag gets a plain reason (rosbags fails on it with a UnicodeDecodeError)."""
    try:
        with path.open('rb') as f:
            head = f.read(len(_ROS1_MAGIC))
    except OSError as exc:
        raise OpenFailure(f'cannot open it: {exc.strerror}') from None
    if head != _ROS1_MAGIC:
        raise OpenFailure(f'not a ROS 1 bag: it does not start with {_ROS1_MAGIC.decode().strip()!r} (starts {head!r})')


def _single_mcap(path: Path) -> Path | None:
    if path.is_file() and path.suffix == '.mcap':
        return path
    if path.is_dir():
        found = sorted(path.glob('*.mcap'))
        if len(found) == 1:
            return found[0]
    return None


def open_source(path: Path) -> AnyReaderSource | SalvageSource:
    """Open ``path`` with rosbags; a single MCAP file rosbags cannot open is scanned instead.

    Raises :class:`BagError` naming the path when neither works.
    """
    if not path.exists():
        raise BagError(f'bag {path} does not exist')
    try:
        return AnyReaderSource(path)
    except OpenFailure as exc:
        mcap = _single_mcap(path)
        if mcap is None:
            raise BagError(f'cannot read bag {path}: {exc}') from None
        try:
            return SalvageSource(mcap, f'rosbags cannot open it ({exc})')
        except OpenFailure as exc2:
            raise BagError(f'cannot read bag {path}: {exc2}') from None


def topic_list(topics: dict[str, tuple[str, int | None]]) -> str:
    """'name (type, n msgs), ...' for error messages."""
    if not topics:
        return '(none)'
    return ', '.join(f'{t} ({ty}, {n} msgs)' for t, (ty, n) in sorted(topics.items()))
