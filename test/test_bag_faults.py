"""Damaged bags lose only what is damaged: bad MCAP chunks are skipped and named, chunk CRCs are written and
checked, a missing named topic or a non-bag file is a clear BagError, and live accounting counts every frame."""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip('rosbags')

from anomaly_seg_ros.bag import bag_info, read_bag, write_bag  # noqa: E402
from anomaly_seg_ros.bag.mcap_crc import write_chunk_crcs  # noqa: E402
from anomaly_seg_ros.data.sample import Sample  # noqa: E402
from anomaly_seg_ros.errors import BagError  # noqa: E402
from anomaly_seg_ros.eval.offline import EvalFrame  # noqa: E402
from anomaly_seg_ros.ros.live_eval import LiveLedger  # noqa: E402
from anomaly_seg_ros.stamps import frame_stamp  # noqa: E402

IMG, ANO, LAB = '/camera/image_raw', '/ground_truth/anomaly', '/ground_truth/labels'
N = 12


@pytest.fixture(scope='module')
def big_samples() -> list[Sample]:
    """12 frames of 256x256: ~330 kB of messages each, so rosbags' 1 MiB chunks hold about three frames."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(N):
        image = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
        anomaly = rng.choice(np.array([0, 1, 255], np.uint8), (256, 256))
        labels = rng.integers(0, 19, (256, 256), dtype=np.uint8)
        out.append(Sample(image=image, labels=labels, anomaly=anomaly, name=f'f{i}'))
    return out


def _chunks(mcap: Path) -> list[dict[str, Any]]:
    """Offset, records start/length and channel -> log times (from the message index) of each chunk."""
    data = mcap.read_bytes()
    pos, found = 8, []
    while True:
        op, length = struct.unpack_from('<BQ', data, pos)
        body = data[pos + 9 : pos + 9 + length]
        if op == 0x06:
            (clen,) = struct.unpack_from('<I', body, 28)
            (rlen,) = struct.unpack_from('<Q', body, 32 + clen)
            found.append({'offset': pos, 'records': pos + 9 + 40 + clen, 'rlen': rlen, 'times': {}})
        elif op == 0x07:
            cid, n = struct.unpack_from('<HI', body, 0)
            found[-1]['times'][cid] = [t for t, _ in struct.iter_unpack('<QQ', body[6 : 6 + n])]
        elif op in (0x0F, 0x02):
            return found
        pos += 9 + length


def _written(tmp_path: Path, samples: list[Sample]) -> tuple[Path, Path, list[dict[str, Any]]]:
    out = tmp_path / 'bag'
    write_bag(samples, out, storage='mcap', progress=False)
    mcap = next(out.glob('*.mcap'))
    chunks = _chunks(mcap)
    assert len(chunks) >= min(3, len(samples) // 4)
    return out, mcap, chunks


def _flip(mcap: Path, at: int) -> None:
    data = bytearray(mcap.read_bytes())
    data[at] ^= 0x40
    mcap.write_bytes(bytes(data))


def _check_chunk_skipped(out: Path, samples: list[Sample], chunk: dict[str, Any], number: int) -> None:
    lost_stamps = {t for times in chunk['times'].values() for t in times}
    reader = read_bag(out)
    frames = list(reader)
    rep = reader.report
    # every frame none of whose messages was in the bad chunk comes out, intact
    expected = [i for i in range(N) if frame_stamp(i) not in lost_stamps]
    assert [f.index for f in frames] == expected and expected
    for f in frames:
        assert np.array_equal(f.sample.image, samples[f.index].image)
        assert np.array_equal(np.asarray(f.sample.anomaly), np.asarray(samples[f.index].anomaly))
    chunk_issues = [i for i in rep.skipped if i.reason.startswith(f'chunk {number} at byte {chunk["offset"]} ')]
    assert len(chunk_issues) == 1 and 'CRC' in chunk_issues[0].reason
    n_lost = sum(len(t) for t in chunk['times'].values())
    assert f'{n_lost} messages lost' in chunk_issues[0].reason
    assert rep.chunks_lost == [
        {
            'chunk': number,
            'offset': chunk['offset'],
            'reason': rep.chunks_lost[0]['reason'],
            'start_ns': min(lost_stamps),
            'end_ns': max(lost_stamps),
            'messages': rep.chunks_lost[0]['messages'],
        }
    ]
    lost_images = [i for i in range(N) if frame_stamp(i) in chunk['times'].get(1, [])]
    assert rep.chunks_lost[0]['messages'].get(IMG, []) == lost_images
    # frames whose image is intact but whose ground truth was in the chunk are skipped, with the reason
    gt_lost = [i for i in range(N) if i not in expected and i not in lost_images]
    for i in gt_lost:
        assert any(x.index == i and 'damaged chunk' in x.reason for x in rep.skipped), i
    assert rep.failure is None and rep.finished
    assert rep.frames + len(lost_images) + len(gt_lost) == N
    with pytest.raises(BagError, match=rf'chunk {number} at byte {chunk["offset"]}'):
        list(read_bag(out, strict=True))


def test_bad_chunk_checksum_skips_only_that_chunk(tmp_path: Path, big_samples: list[Sample]) -> None:
    out, mcap, chunks = _written(tmp_path, big_samples)
    crc_at = chunks[1]['offset'] + 9 + 24
    _flip(mcap, crc_at)  # the recorded CRC is wrong, the data fine
    _check_chunk_skipped(out, big_samples, chunks[1], 1)


def test_bit_flip_in_image_data_is_caught_by_the_written_crc(tmp_path: Path, big_samples: list[Sample]) -> None:
    out, mcap, chunks = _written(tmp_path, big_samples)
    _flip(mcap, chunks[2]['records'] + chunks[2]['rlen'] // 2)  # inside a message's pixel bytes
    _check_chunk_skipped(out, big_samples, chunks[2], 2)


def test_bad_chunk_in_a_truncated_mcap(tmp_path: Path, big_samples: list[Sample]) -> None:
    """rosbags cannot open a cut file; the scanner skips the bad chunk, reads on, and stops at the cut.
    (The first chunk holds the channel records: without it and without the footer nothing can be named.)"""
    out, mcap, chunks = _written(tmp_path, big_samples)
    _flip(mcap, chunks[1]['records'] + chunks[1]['rlen'] - 100)
    mcap.write_bytes(mcap.read_bytes()[: chunks[-1]['offset'] + 1000])
    reader = read_bag(out)
    frames = list(reader)
    rep = reader.report
    assert rep.storage == 'mcap (scanned)'
    assert [x['chunk'] for x in rep.chunks_lost] == [1]
    lost = {t for times in chunks[1]['times'].values() for t in times}
    assert frames and not any(frame_stamp(f.index) in lost for f in frames)
    assert any(frame_stamp(f.index) > max(lost) for f in frames)  # read on after the bad chunk
    assert rep.failure is not None and 'truncated' in rep.failure.reason


def test_writer_records_chunk_crcs(tmp_path: Path, big_samples: list[Sample]) -> None:
    out, mcap, chunks = _written(tmp_path, big_samples[:4])
    data = mcap.read_bytes()
    for c in chunks:
        (crc,) = struct.unpack_from('<I', data, c['offset'] + 9 + 24)
        assert crc != 0
    assert write_chunk_crcs(mcap) == 0  # nothing left to fill
    bad = tmp_path / 'x.mcap'
    bad.write_bytes(b'not an mcap')
    with pytest.raises(BagError, match=re.escape(str(bad))):
        write_chunk_crcs(bad)


def test_named_ground_truth_topic_missing(tmp_path: Path, big_samples: list[Sample]) -> None:
    out = tmp_path / 'nolabels'
    small = [Sample(image=s.image[:8, :8], anomaly=np.asarray(s.anomaly)[:8, :8]) for s in big_samples[:2]]
    write_bag(small, out, progress=False)
    # the default topic absent: read without it, as before
    reader = read_bag(out)
    assert reader.labels_topic is None and len(list(reader)) == 2
    with pytest.raises(BagError, match=rf"anomaly topic '/ground_truth/anomly' is not in the bag; topics: .*{IMG}"):
        read_bag(out, anomaly_topic='/ground_truth/anomly')
    with pytest.raises(BagError, match=rf"labels topic '{LAB}' is not in the bag; topics: .*{ANO}"):
        read_bag(out, labels_topic=LAB)


def test_random_bytes_as_ros1_bag(tmp_path: Path) -> None:
    path = tmp_path / 'file.bag'
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    for call in (read_bag, bag_info):
        with pytest.raises(BagError, match=rf'{re.escape(str(path))}: not a ROS 1 bag') as info:
            call(path)
        assert 'UnicodeDecodeError' not in str(info.value)


# --------------------------------------------------------------------------- live accounting (no ROS)


class _Acc:
    def __init__(self) -> None:
        self.status: dict[int, str] = {}

    def skip(self, index: int, name: str, stamp_ns: int, reason: str, status: str | None = None) -> None:
        assert index not in self.status
        self.status[index] = status or f'skipped: {reason}'

    def add(self, index: int, *_: Any, status: str = 'ok', **__: Any) -> None:
        assert index not in self.status
        self.status[index] = status


def test_live_ledger_accounts_for_repeated_stamps() -> None:
    """10 frames read, one stamp repeated: 10 accounted (before: keyed by stamp, 9 reported)."""
    img = np.zeros((4, 4, 3), np.uint8)
    stamps = [100, 200, 300, 300, 400, 500, 600, 700, 800, 900]
    frames = [EvalFrame(i, f'f{i}', s, Sample(image=img)) for i, s in enumerate(stamps)]
    frames[6] = EvalFrame(6, 'f6', 600, None, 'cannot decode')
    acc = _Acc()
    ledger = LiveLedger(acc)  # type: ignore[arg-type]
    for f in frames:
        if ledger.admit(f):
            ledger.published(f, deadline=10.0)
    assert sorted(ledger.pending) == [100, 200, 300, 400, 500, 700, 800, 900]
    for stamp, latency in ((100, 5.0), (200, 50.0), (300, 5.0), (400, 5.0), (500, 5.0), (700, 5.0)):
        ledger.answered(stamp, latency, np.zeros((4, 4), np.float32), np.zeros((4, 4), np.uint8), late_ms=20.0)
    assert ledger.expired(now=5.0) == [] and ledger.expired(now=11.0) == [800, 900]
    ledger.drop(800)
    ledger.drop_all()
    assert ledger.read == ledger.accounted == len(acc.status) == 10
    assert acc.status[3] == 'skipped: duplicate stamp 300 (frame 2 has it; outputs are matched to frames by stamp)'
    assert acc.status[6] == 'skipped: cannot decode' and acc.status[1] == 'late'
    assert acc.status[8] == acc.status[9] == 'dropped'
    assert (ledger.ok, ledger.late, ledger.dropped, ledger.skipped) == (5, 1, 2, 2)
