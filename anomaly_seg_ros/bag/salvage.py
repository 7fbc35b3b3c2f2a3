"""Read what is left of a truncated or damaged MCAP file, record by record, in file order.

rosbags' MCAP reader needs the footer and summary at the end of the file, so a bag cut short (the
recorder was killed, the disk filled up, a copy stopped half way) cannot be opened at all. This
scanner walks the data section from the start instead and stops at the first record that is cut off
or makes no sense. Chunks written without compression (what rosbags and, by default, ros2 bag record
write) are parsed message by message, so even a partly written chunk gives back its complete
messages; a compressed chunk is only usable when it is complete. A complete chunk that fails its
CRC-32 (when one is recorded) or cannot be decoded is skipped and reported, and the scan goes on.

MCAP layout (https://mcap.dev/spec): magic, then records ``opcode:u8 length:u64 body``; little
endian; strings are ``u32 length + utf-8``. Opcodes used here: 0x01 header, 0x02 footer, 0x03
schema, 0x04 channel, 0x05 message, 0x06 chunk, 0x07 message index, 0x0F data end.
"""

from __future__ import annotations

import contextlib
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = [
    'McapChannel',
    'McapChunkLoss',
    'McapMessage',
    'McapSalvage',
    'McapSchema',
    'ScanStopped',
    'decompress_chunk',
]

MAGIC = b'\x89MCAP0\r\n'

_OP_FOOTER = 0x02
_OP_SCHEMA = 0x03
_OP_CHANNEL = 0x04
_OP_MESSAGE = 0x05
_OP_CHUNK = 0x06
_OP_MESSAGE_INDEX = 0x07
_OP_DATA_END = 0x0F

_REC = struct.Struct('<BQ')  # opcode, length
_MSG = struct.Struct('<HIQQ')  # channel id, sequence, log time, publish time
_CHUNK = struct.Struct('<QQQI')  # start time, end time, uncompressed size, crc
_FOOTER = struct.Struct('<QQI')  # summary start, summary offset start, summary crc


class ScanStopped(Exception):
    """The scan cannot go on: ``reason`` says why."""


@dataclass(frozen=True)
class McapSchema:
    id: int
    name: str
    encoding: str
    data: str


@dataclass(frozen=True)
class McapChannel:
    id: int
    schema_id: int
    topic: str
    message_encoding: str


@dataclass(frozen=True)
class McapMessage:
    channel_id: int
    log_time: int
    data: bytes


@dataclass(frozen=True)
class McapChunkLoss:
    """A complete chunk that is damaged and was skipped: nothing in it is used.

    index: the chunk's number in file order (0-based); offset: the file offset of its record;
    reason: why (CRC mismatch, undecodable, records that make no sense); start_ns/end_ns: the message
    log-time range its header states (None: the header was unreadable); log_times: channel id -> log
    times of its messages, from the message-index records after it (None: the file has none there).
    """

    index: int
    offset: int
    reason: str
    start_ns: int | None
    end_ns: int | None
    log_times: dict[int, list[int]] | None


def decompress_chunk(data: bytes, compression: str, size: int, crc: int) -> bytes:
    """The records of a compressed chunk ('zstd' or 'lz4', the codecs MCAP names), checked against
    the chunk's uncompressed size and CRC-32 (0: not recorded). Raises ``ScanStopped`` with the reason."""
    try:
        if compression == 'zstd':
            try:
                from compression import zstd  # type: ignore[import-not-found]  # noqa: PLC0415 - Python 3.14+
            except ImportError:
                from backports import zstd  # noqa: PLC0415 - a rosbags dependency before 3.14
            raw = zstd.decompress(data)
        elif compression == 'lz4':
            import lz4.frame  # noqa: PLC0415 - a rosbags dependency

            raw = lz4.frame.decompress(data)
        else:
            raise ScanStopped(f'unknown chunk compression {compression!r} (MCAP names zstd and lz4)')
    except ScanStopped:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure means: stop here
        raise ScanStopped(f'cannot decompress {compression} chunk: {exc}') from None
    if len(raw) != size:
        raise ScanStopped(f'{compression} chunk decompresses to {len(raw)} bytes, its header says {size}')
    if crc and zlib.crc32(raw) != crc:
        raise ScanStopped(f'{compression} chunk fails its CRC check')
    return bytes(raw)


def _string(buf: memoryview, pos: int) -> tuple[str, int]:
    if pos + 4 > len(buf):
        raise ScanStopped('string length runs past its record')
    (n,) = struct.unpack_from('<I', buf, pos)
    end = pos + 4 + n
    if end > len(buf):
        raise ScanStopped('string runs past its record')
    try:
        return bytes(buf[pos + 4 : end]).decode('utf-8'), end
    except UnicodeDecodeError:
        raise ScanStopped('string is not utf-8') from None


class McapSalvage:
    """Scan ``path`` from the start and yield schemas, channels and complete messages in file order.

    After iteration, ``error`` is None when the file ended cleanly (data-end or footer record reached)
    or a text saying where and why the scan stopped; ``offset`` is the byte offset reached and
    ``size`` the file size. Only messages whose record is complete are yielded. A complete chunk that
    is damaged (CRC mismatch, undecodable) is skipped: an :class:`McapChunkLoss` is yielded in its place
    (and kept in ``losses``) and the scan goes on with the next record.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.schemas: dict[int, McapSchema] = {}
        self.channels: dict[int, McapChannel] = {}
        self.error: str | None = None
        self.losses: list[McapChunkLoss] = []
        self.offset = 0
        self.size = 0

    # ------------------------------------------------------------------ records

    def _records(self, buf: memoryview, base: int) -> Iterator[McapSchema | McapChannel | McapMessage]:
        """Records inside an (uncompressed, possibly cut) chunk body; ``base`` is its file offset."""
        pos = 0
        while pos < len(buf):
            if pos + _REC.size > len(buf):
                self.offset = base + pos
                raise ScanStopped('chunk cut inside a record header')
            op, length = _REC.unpack_from(buf, pos)
            body_start = pos + _REC.size
            if body_start + length > len(buf):
                self.offset = base + pos
                raise ScanStopped(f'chunk cut inside a record (opcode 0x{op:02x}, {length} bytes)')
            body = buf[body_start : body_start + length]
            yield from self._record(op, body)
            pos = body_start + length
            self.offset = base + pos

    def _record(self, op: int, body: memoryview) -> Iterator[McapSchema | McapChannel | McapMessage]:
        if op == _OP_SCHEMA:
            if len(body) < 2:
                raise ScanStopped('schema record too short')
            (sid,) = struct.unpack_from('<H', body, 0)
            name, pos = _string(body, 2)
            encoding, pos = _string(body, pos)
            if pos + 4 > len(body):
                raise ScanStopped('schema record too short')
            (n,) = struct.unpack_from('<I', body, pos)
            data = bytes(body[pos + 4 : pos + 4 + n]).decode('utf-8', errors='replace')
            schema = McapSchema(sid, name, encoding, data)
            self.schemas[sid] = schema
            yield schema
        elif op == _OP_CHANNEL:
            if len(body) < 4:
                raise ScanStopped('channel record too short')
            cid, sid = struct.unpack_from('<HH', body, 0)
            topic, pos = _string(body, 4)
            encoding, pos = _string(body, pos)
            channel = McapChannel(cid, sid, topic, encoding)
            self.channels[cid] = channel
            yield channel
        elif op == _OP_MESSAGE:
            if len(body) < _MSG.size:
                raise ScanStopped(f'message record of {len(body)} bytes is too short')
            cid, _seq, log_time, _pub = _MSG.unpack_from(body, 0)
            yield McapMessage(cid, log_time, bytes(body[_MSG.size :]))
        # every other record (indexes, attachments, metadata) carries no messages

    def _chunk_head(self, bio: BinaryIO) -> tuple[int, int, int, int, str, int]:
        """(start time, end time, uncompressed size, crc, compression, records size) of the chunk at ``bio``."""
        head = bio.read(_CHUNK.size + 4)
        if len(head) < _CHUNK.size + 4:
            raise ScanStopped('file ends inside a chunk header')
        t0, t1, usize, crc = _CHUNK.unpack_from(head, 0)
        (clen,) = struct.unpack_from('<I', head, _CHUNK.size)
        compression = bio.read(clen)
        sizebuf = bio.read(8)
        if len(compression) < clen or len(sizebuf) < 8:
            raise ScanStopped('file ends inside a chunk header')
        (rsize,) = struct.unpack('<Q', sizebuf)
        return t0, t1, usize, crc, compression.decode('utf-8', errors='replace'), rsize

    def _cut_chunk(self, bio: BinaryIO, length: int) -> Iterator[McapSchema | McapChannel | McapMessage]:
        """A chunk the file ends inside: its complete records (uncompressed only), then ``ScanStopped``."""
        _t0, _t1, _usize, _crc, compression_name, rsize = self._chunk_head(bio)
        records_start = bio.tell()
        if rsize > length:
            raise ScanStopped(f'chunk records ({rsize} bytes) exceed the chunk record ({length} bytes)')
        data = bio.read(min(rsize, max(0, self.size - records_start)))
        if compression_name:
            raise ScanStopped(
                f'file ends inside a {compression_name}-compressed chunk '
                f'({len(data)} of {rsize} bytes); a cut compressed chunk cannot be decoded'
            )
        yield from self._records(memoryview(data), records_start)
        raise ScanStopped(f'file ends inside a chunk ({len(data)} of {rsize} bytes present)')

    def _complete_chunk(
        self, bio: BinaryIO, length: int, start: int, number: int
    ) -> list[McapSchema | McapChannel | McapMessage] | McapChunkLoss:
        """The records of a chunk that lies wholly in the file, or what was lost when it is damaged
        (CRC mismatch, undecodable, records that make no sense): nothing of a damaged chunk is used."""
        t0: int | None = None
        t1: int | None = None
        try:
            t0, t1, usize, crc, compression_name, rsize = self._chunk_head(bio)
            records_start = bio.tell()
            if rsize > length:
                raise ScanStopped(f'chunk records ({rsize} bytes) exceed the chunk record ({length} bytes)')
            data = bio.read(rsize)
            if compression_name:
                data = decompress_chunk(data, compression_name, usize, crc)
            elif crc and (got := zlib.crc32(data)) != crc:
                raise ScanStopped(f'chunk fails its CRC check (recorded 0x{crc:08x}, computed 0x{got:08x})')
            records = list(self._records(memoryview(data), records_start))
        except ScanStopped as bad:
            _ = bio.seek(start + _REC.size + length)
            return McapChunkLoss(number, start, str(bad), t0, t1, self._message_index(bio))
        _ = bio.seek(start + _REC.size + length)
        return records

    def _message_index(self, bio: BinaryIO) -> dict[int, list[int]] | None:
        """Log times per channel from the message-index records that follow a chunk (None: there are none);
        leaves ``bio`` after them. They say what a damaged chunk held without trusting its bytes."""
        found: dict[int, list[int]] | None = None
        while True:
            pos = bio.tell()
            head = bio.read(_REC.size)
            if len(head) < _REC.size:
                break
            op, length = _REC.unpack(head)
            if op != _OP_MESSAGE_INDEX or pos + _REC.size + length > self.size or length < 6:
                break
            body = bio.read(length)
            cid, nbytes = struct.unpack_from('<HI', body, 0)
            pairs = body[6 : 6 + nbytes]
            times = [t for t, _ in struct.iter_unpack('<QQ', pairs[: len(pairs) // 16 * 16])]
            found = found if found is not None else {}
            found.setdefault(cid, []).extend(times)
        _ = bio.seek(pos)
        return found

    def _summary(self, bio: BinaryIO) -> None:
        """Schemas and channels of the summary section, when the footer is intact: a damaged first chunk
        (where writers put them) then does not hide the topics of the intact chunks."""
        if self.size < len(MAGIC) * 2 + _REC.size + _FOOTER.size:
            return
        footer_at = self.size - len(MAGIC) - _REC.size - _FOOTER.size
        _ = bio.seek(footer_at)
        tail = bio.read(_REC.size + _FOOTER.size + len(MAGIC))
        op, length = _REC.unpack_from(tail, 0)
        if tail[-len(MAGIC) :] != MAGIC or op != _OP_FOOTER or length != _FOOTER.size:
            return
        summary_start, _offsets, _crc = _FOOTER.unpack_from(tail, _REC.size)
        if not len(MAGIC) <= summary_start < footer_at:
            return
        _ = bio.seek(summary_start)
        with contextlib.suppress(ScanStopped):
            buf = memoryview(bio.read(footer_at - summary_start))
            pos = 0
            while pos + _REC.size <= len(buf):
                op, length = _REC.unpack_from(buf, pos)
                body = buf[pos + _REC.size : pos + _REC.size + length]
                if op in (_OP_SCHEMA, _OP_CHANNEL):
                    for _ in self._record(op, body):
                        pass
                pos += _REC.size + length

    def __iter__(self) -> Iterator[McapSchema | McapChannel | McapMessage | McapChunkLoss]:
        try:
            bio = self.path.open('rb')
        except OSError as exc:
            self.error = f'cannot open {self.path}: {exc.strerror}'
            return
        with bio:
            self.size = bio.seek(0, 2)
            _ = bio.seek(0)
            try:
                if bio.read(len(MAGIC)) != MAGIC:
                    raise ScanStopped('no MCAP magic at the start of the file')
                self._summary(bio)
                _ = bio.seek(len(MAGIC))
                self.offset = len(MAGIC)
                chunks = 0
                while True:
                    start = bio.tell()
                    self.offset = start
                    head = bio.read(_REC.size)
                    if not head:
                        raise ScanStopped('file ends without a data-end or footer record')
                    if len(head) < _REC.size:
                        raise ScanStopped('file ends inside a record header')
                    op, length = _REC.unpack(head)
                    if op in (_OP_FOOTER, _OP_DATA_END):
                        return
                    if start + _REC.size + length > self.size:
                        if op == _OP_CHUNK:
                            yield from self._cut_chunk(bio, length)
                        raise ScanStopped(
                            f'file ends inside a record (opcode 0x{op:02x} of {length} bytes at offset {start})'
                        )
                    if op == _OP_CHUNK:
                        got = self._complete_chunk(bio, length, start, chunks)
                        chunks += 1
                        if isinstance(got, McapChunkLoss):
                            self.losses.append(got)
                            yield got
                        else:
                            yield from got
                    elif op in (_OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE):
                        yield from self._record(op, memoryview(bio.read(length)))
                    else:  # header, indexes, attachments, metadata: no messages in them
                        _ = bio.seek(length, 1)
                    self.offset = bio.tell()
            except ScanStopped as stop:
                self.error = f'{stop} (byte {self.offset} of {self.size})'
