"""Record the CRC-32 of every chunk of an MCAP file that was written without one (what rosbags writes).

rosbags' MCAP writer stores 0 ("not recorded") in each chunk's CRC field and has no option to do
otherwise, so a flipped bit in image data would be read back silently. The CRC field has a fixed
size, so it is filled in place after the file is closed: no offset, index or summary changes. Readers
(rosbags, ``ros2 bag``, this package's scanner) then check every chunk against it.

MCAP layout (https://mcap.dev/spec): magic, then records ``opcode:u8 length:u64 body``. A chunk body
starts ``message_start_time:u64 message_end_time:u64 uncompressed_size:u64 uncompressed_crc:u32``,
then ``compression`` (u32 length + utf-8) and ``records`` (u64 length + bytes); the CRC covers the
uncompressed records.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from anomaly_seg_ros.bag.salvage import MAGIC, ScanStopped, decompress_chunk
from anomaly_seg_ros.errors import BagError

__all__ = ['write_chunk_crcs']

_REC = struct.Struct('<BQ')
_OP_CHUNK = 0x06
_OP_FOOTER = 0x02
_OP_DATA_END = 0x0F
_CRC_AT = 8 + 8 + 8  # offset of uncompressed_crc in a chunk body


def write_chunk_crcs(path: Path | str) -> int:
    """Fill in the CRC-32 of each chunk of the MCAP file ``path`` whose CRC is 0; return how many were filled.

    Raises :class:`BagError` naming the file when it is not a complete MCAP data section.
    """
    path = Path(path)
    filled = 0
    try:
        with path.open('r+b') as f:
            size = f.seek(0, 2)
            _ = f.seek(0)
            if f.read(len(MAGIC)) != MAGIC:
                raise BagError(f'{path}: no MCAP magic at the start of the file')
            while True:
                start = f.tell()
                head = f.read(_REC.size)
                if len(head) < _REC.size:
                    raise BagError(f'{path}: file ends at byte {start} before the data-end record')
                op, length = _REC.unpack(head)
                end = start + _REC.size + length
                if op in (_OP_FOOTER, _OP_DATA_END):
                    return filled
                if end > size:
                    raise BagError(f'{path}: record at byte {start} runs past the end of the file')
                if op == _OP_CHUNK:
                    body = f.read(length)
                    usize, crc, clen = struct.unpack_from('<QII', body, 16)
                    compression = body[32 : 32 + clen].decode('utf-8', errors='replace')
                    (rlen,) = struct.unpack_from('<Q', body, 32 + clen)
                    records = body[40 + clen : 40 + clen + rlen]
                    if crc == 0:
                        if compression:
                            records = decompress_chunk(records, compression, usize, 0)
                        _ = f.seek(start + _REC.size + _CRC_AT)
                        _ = f.write(struct.pack('<I', zlib.crc32(records)))
                        filled += 1
                _ = f.seek(end)
    except OSError as exc:
        raise BagError(f'cannot write chunk CRCs into {path}: {exc.strerror or exc}') from None
    except (ScanStopped, struct.error) as exc:
        raise BagError(f'{path}: a chunk cannot be read back to compute its CRC: {exc}') from None
