"""Bags without ROS: write_bag -> read_bag round trips, bag_info, and every kind of bad input."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip('rosbags')

from rosbags.rosbag2 import StoragePlugin, Writer  # noqa: E402
from rosbags.typesys import Stores, get_typestore  # noqa: E402

from anomaly_seg_ros.bag import (  # noqa: E402
    BagIssue,
    BagTopics,
    bag_info,
    read_bag,
    write_bag,
)
from anomaly_seg_ros.bag.salvage import ScanStopped, decompress_chunk  # noqa: E402
from anomaly_seg_ros.data.sample import Sample  # noqa: E402
from anomaly_seg_ros.data.synthetic import SyntheticWorld, WorldConfig  # noqa: E402
from anomaly_seg_ros.errors import BagError  # noqa: E402
from anomaly_seg_ros.io.image_codec import rgb_to_image  # noqa: E402

START = 1_700_000_000_000_000_000
IMG, ANO, LAB = '/camera/image_raw', '/ground_truth/anomaly', '/ground_truth/labels'
TS = get_typestore(Stores.ROS2_HUMBLE)


@pytest.fixture(scope='module')
def samples() -> list[Sample]:
    return list(SyntheticWorld(5, seed=3, config=WorldConfig(height=64, width=128, anomaly_prob=1.0)))


# --------------------------------------------------------------------------- hand-made bags


def _header(stamp: int, frame_id: str = 'camera') -> Any:
    sec, nsec = divmod(stamp, 1_000_000_000)
    time = TS.types['builtin_interfaces/msg/Time'](sec=sec, nanosec=nsec)
    return TS.types['std_msgs/msg/Header'](stamp=time, frame_id=frame_id)


def _image(rgb: np.ndarray, stamp: int, data: np.ndarray | None = None) -> Any:
    step, raw = rgb_to_image(rgb, 'rgb8')
    return TS.types['sensor_msgs/msg/Image'](
        header=_header(stamp),
        height=rgb.shape[0],
        width=rgb.shape[1],
        encoding='rgb8',
        is_bigendian=0,
        step=step,
        data=np.frombuffer(raw, np.uint8) if data is None else data,
    )


def _mono(arr: np.ndarray, stamp: int) -> Any:
    return TS.types['sensor_msgs/msg/Image'](
        header=_header(stamp),
        height=arr.shape[0],
        width=arr.shape[1],
        encoding='mono8',
        is_bigendian=0,
        step=arr.shape[1],
        data=np.ascontiguousarray(arr).reshape(-1),
    )


def _hand_bag(path: Path, messages: list[tuple[str, int, Any]], storage: str = 'mcap') -> Path:
    """messages: (topic, bag timestamp, message object or raw CDR bytes), written in this order."""
    with Writer(path, version=8, storage_plugin=StoragePlugin[storage.upper()]) as writer:
        conns: dict[str, Any] = {}
        for topic, ts, msg in messages:
            msgtype = 'sensor_msgs/msg/Image' if isinstance(msg, bytes) else msg.__msgtype__
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msgtype, typestore=TS)
            raw = msg if isinstance(msg, bytes) else TS.serialize_cdr(msg, msgtype)
            writer.write(conns[topic], ts, raw)
    return path


def _frames_msgs(samples: list[Sample], stamps: list[int] | None = None) -> list[tuple[str, int, Any]]:
    out = []
    for i, s in enumerate(samples):
        stamp = START + i * 100_000_000 if stamps is None else stamps[i]
        ts = START + i * 100_000_000  # bag (receive) time always increases
        out += [
            (IMG, ts, _image(s.image, stamp)),
            (ANO, ts, _mono(s.anomaly, stamp)),
            (LAB, ts, _mono(s.labels, stamp)),
        ]
    return out


def _same(a: Sample, b: Sample) -> bool:
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ('image', 'labels', 'anomaly'))


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    ('storage', 'compressed'),
    [('mcap', None), ('sqlite3', None), ('mcap', 'png'), ('sqlite3', 'png'), ('mcap', 'jpeg')],
)
def test_round_trip(tmp_path: Path, samples: list[Sample], storage: str, compressed: str | None) -> None:
    out = tmp_path / 'bag'
    summary = write_bag(samples, out, storage=storage, compressed=compressed, rate_hz=10.0, progress=False)
    image_topic = IMG + '/compressed' if compressed else IMG
    image_type = 'sensor_msgs/msg/CompressedImage' if compressed else 'sensor_msgs/msg/Image'
    assert summary['frames'] == 5 and summary['storage'] == storage
    assert summary['topics'] == {
        image_topic: {'type': image_type, 'count': 5},
        ANO: {'type': 'sensor_msgs/msg/Image', 'count': 5},
        LAB: {'type': 'sensor_msgs/msg/Image', 'count': 5},
    }
    assert summary['duration_s'] == pytest.approx(0.4)
    assert (out / 'metadata.yaml').is_file()

    reader = read_bag(out, progress=True)
    frames = list(reader)
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert [f.stamp_ns - START for f in frames] == [i * 100_000_000 for i in range(5)]
    assert {f.frame_id for f in frames} == {'camera'}
    for f, s in zip(frames, samples, strict=True):
        assert np.array_equal(f.sample.labels, s.labels)
        assert np.array_equal(f.sample.anomaly, s.anomaly)
        assert f.sample.image.shape == s.image.shape and f.sample.image.dtype == np.uint8
        if compressed == 'jpeg':
            assert np.abs(f.sample.image.astype(int) - s.image).mean() < 10
        else:
            assert np.array_equal(f.sample.image, s.image)
    rep = reader.report
    assert rep.ok and rep.finished and rep.frames == 5
    assert rep.image_topic == image_topic and rep.anomaly_topic == ANO and rep.labels_topic == LAB
    assert rep.messages == {image_topic: 5, ANO: 5, LAB: 5}

    info = bag_info(out)
    assert info['storage'] == storage and info['failure'] is None
    assert info['topics'] == summary['topics'] and info['message_count'] == 15
    assert info['start_ns'] == START and info['duration_s'] == pytest.approx(0.4)


def test_write_options_and_no_ground_truth(tmp_path: Path, samples: list[Sample]) -> None:
    plain = [Sample(s.image, name=s.name) for s in samples[:3]]
    topics = BagTopics(image='/cam/front')
    out = write_bag(
        iter(plain), tmp_path / 'b', topics=topics, rate_hz=4.0, frame_id='front', start_ns=5, progress=True
    )
    assert out['topics'] == {'/cam/front': {'type': 'sensor_msgs/msg/Image', 'count': 3}}
    reader = read_bag(tmp_path / 'b')  # image topic auto-detected, GT topics absent -> None
    frames = list(reader)
    assert [f.stamp_ns for f in frames] == [5, 250_000_005, 500_000_005]
    assert all(f.frame_id == 'front' and f.sample.labels is None and f.sample.anomaly is None for f in frames)
    assert reader.report.ok and reader.report.anomaly_topic is None


def test_write_errors(tmp_path: Path, samples: list[Sample]) -> None:
    (tmp_path / 'exists').mkdir()
    with pytest.raises(BagError, match='exists'):
        write_bag(samples, tmp_path / 'exists', progress=False)
    with pytest.raises(BagError, match='rate_hz'):
        write_bag(samples, tmp_path / 'a', rate_hz=0, progress=False)
    with pytest.raises(BagError, match='empty'):
        write_bag([], tmp_path / 'a', progress=False)
    bad = [samples[0], Sample(samples[1].image, labels=samples[1].labels[:32], name='odd')]
    with pytest.raises(BagError, match=r"sample 1 \('odd'\): labels 32x128 vs image 64x128"):
        write_bag(bad, tmp_path / 'a', progress=False)
    assert not (tmp_path / 'a').exists()  # the half-written bag is removed
    bad_values = [Sample(samples[0].image, anomaly=np.full((64, 128), 7, np.uint8), name='x')]
    with pytest.raises(BagError, match='sample 0.*anomaly values outside'):
        write_bag(bad_values, tmp_path / 'a', progress=False)


# --------------------------------------------------------------------------- bad input


def test_truncated_mcap(tmp_path: Path, samples: list[Sample]) -> None:
    out = tmp_path / 'cut'
    write_bag(samples, out, storage='mcap', progress=False)
    mcap = next(out.glob('*.mcap'))
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) // 2])

    reader = read_bag(out)
    frames = list(reader)
    assert 1 <= len(frames) < 5
    for f in frames:  # what is yielded is intact and complete
        assert _same(f.sample, samples[f.index])
    rep = reader.report
    assert rep.failure is not None and rep.failure.topic == IMG and rep.failure.index >= len(frames)
    assert 'truncated' in rep.failure.reason and not rep.ok and rep.finished
    assert rep.failure in rep.issues
    images_read = rep.failure.index  # image messages intact before the cut

    with pytest.raises(BagError, match=rf'{re.escape(str(out))}.*truncated.*{IMG} message {images_read - 1}'):
        list(read_bag(out, strict=True))
    info = bag_info(out)
    assert info['failure'] and info['topics'][IMG]['count'] == images_read


def _compress(data: bytes, codec: str) -> bytes:
    if codec == 'lz4':
        import lz4.frame

        return bytes(lz4.frame.compress(data))
    try:
        from compression import zstd  # type: ignore[import-not-found]
    except ImportError:
        from backports import zstd
    return bytes(zstd.compress(data))


def _compressed_cut_mcap(mcap: Path, codec: str, crc_delta: int = 0) -> None:
    """Rewrite a rosbags mcap with its (single, uncompressed) chunk compressed and everything after it cut:
    rosbags cannot open it (no footer), so the reader scans it and must decompress the chunk itself."""
    data = mcap.read_bytes()
    out, pos = bytearray(data[:8]), 8
    while True:
        op, length = struct.unpack_from('<BQ', data, pos)
        body = data[pos + 9 : pos + 9 + length]
        pos += 9 + length
        if op != 0x06:
            out += data[pos - 9 - length : pos]
            continue
        t0, t1, usize, crc, clen = struct.unpack_from('<QQQII', body, 0)
        assert clen == 0  # rosbags writes uncompressed chunks
        (rlen,) = struct.unpack_from('<Q', body, 32)
        packed = _compress(body[40 : 40 + rlen], codec)
        name = codec.encode()
        chunk = struct.pack('<QQQII', t0, t1, usize, (crc + crc_delta) % 2**32, len(name)) + name
        chunk += struct.pack('<Q', len(packed)) + packed
        out += struct.pack('<BQ', 0x06, len(chunk)) + chunk
        break
    mcap.write_bytes(bytes(out))


@pytest.mark.parametrize('codec', ['zstd', 'lz4'])
def test_truncated_mcap_with_compressed_chunk(tmp_path: Path, samples: list[Sample], codec: str) -> None:
    out = tmp_path / codec
    write_bag(samples, out, storage='mcap', progress=False)
    _compressed_cut_mcap(next(out.glob('*.mcap')), codec)
    reader = read_bag(out)
    frames = list(reader)
    assert [f.index for f in frames] == list(range(len(samples)))
    for f in frames:
        assert _same(f.sample, samples[f.index])
    rep = reader.report
    assert rep.storage == 'mcap (scanned)' and rep.failure is not None
    assert 'without a data-end or footer record' in rep.failure.reason


def test_compressed_chunk_failing_its_crc(tmp_path: Path, samples: list[Sample]) -> None:
    out = tmp_path / 'crc'
    write_bag(samples[:2], out, storage='mcap', progress=False)
    _compressed_cut_mcap(next(out.glob('*.mcap')), 'zstd', crc_delta=1)
    with pytest.raises(BagError, match=r'no readable channel \(zstd chunk fails its CRC check'):
        read_bag(out)


def test_decompress_chunk_errors() -> None:
    raw = b'records' * 10
    packed = _compress(raw, 'zstd')
    assert decompress_chunk(packed, 'zstd', len(raw), zlib.crc32(raw)) == raw
    assert decompress_chunk(_compress(raw, 'lz4'), 'lz4', len(raw), 0) == raw  # crc 0: not recorded
    with pytest.raises(ScanStopped, match='decompresses to 70 bytes, its header says 71'):
        decompress_chunk(packed, 'zstd', 71, 0)
    with pytest.raises(ScanStopped, match="unknown chunk compression 'brotli'"):
        decompress_chunk(packed, 'brotli', len(raw), 0)
    with pytest.raises(ScanStopped, match='cannot decompress lz4 chunk'):
        decompress_chunk(b'not lz4 at all', 'lz4', len(raw), 0)


def test_storage_of_single_file_bags(tmp_path: Path, samples: list[Sample]) -> None:
    for storage, pattern in (('sqlite3', '*.db3'), ('mcap', '*.mcap')):
        out = tmp_path / storage
        write_bag(samples[:2], out, storage=storage, progress=False)
        assert bag_info(next(out.glob(pattern)))['storage'] == storage


def test_corrupt_files(tmp_path: Path, samples: list[Sample]) -> None:
    for storage, pattern in (('sqlite3', '*.db3'), ('mcap', '*.mcap')):
        out = tmp_path / storage
        write_bag(samples[:2], out, storage=storage, progress=False)
        next(out.glob(pattern)).write_bytes(b'garbage' * 300)
        with pytest.raises(BagError, match=re.escape(str(out))):
            read_bag(out)
        with pytest.raises(BagError, match=re.escape(str(out))):
            bag_info(out)
    with pytest.raises(BagError, match='does not exist'):
        read_bag(tmp_path / 'nowhere')


def test_missing_and_ambiguous_topics(tmp_path: Path, samples: list[Sample]) -> None:
    out = tmp_path / 'b'
    write_bag(samples[:2], out, progress=False)
    with pytest.raises(BagError, match=rf"labels topic '/nope' is not in the bag; topics: .*{IMG}.*{LAB}"):
        read_bag(out, labels_topic='/nope')
    with pytest.raises(BagError, match=rf"image topic '/cam' is not in the bag; topics: .*{ANO}"):
        read_bag(out, image_topic='/cam')
    # labels_topic=None: do not read labels
    frames = list(read_bag(out, labels_topic=None))
    assert frames[0].sample.labels is None and frames[0].sample.anomaly is not None

    two = _hand_bag(tmp_path / 'two', [('/a', 1, _image(samples[0].image, 1)), ('/b', 1, _image(samples[0].image, 1))])
    with pytest.raises(BagError, match='2 image topics to choose from \\(/a, /b\\)'):
        read_bag(two)
    assert len(list(read_bag(two, image_topic='/b'))) == 1


def test_size_mismatch(tmp_path: Path, samples: list[Sample]) -> None:
    msgs = _frames_msgs(samples)
    small = samples[2].labels[:32, :64]
    msgs[3 * 2 + 2] = (LAB, msgs[3 * 2 + 2][1], _mono(small, START + 200_000_000))
    bag = _hand_bag(tmp_path / 'b', msgs)

    reader = read_bag(bag)
    frames = list(reader)
    assert [f.index for f in frames] == [0, 1, 3, 4]
    assert all(_same(f.sample, samples[f.index]) for f in frames)
    (issue,) = reader.report.skipped
    assert issue.topic == LAB and issue.index == 2
    assert issue.reason.startswith('label 32x64 vs image 64x128')
    assert not reader.report.unmatched[LAB]  # the bad label was matched, not left over

    with pytest.raises(BagError, match=rf'{LAB} message 2: label 32x64 vs image 64x128'):
        list(read_bag(bag, strict=True))


def test_labels_without_image(tmp_path: Path, samples: list[Sample]) -> None:
    msgs = _frames_msgs(samples[:3])
    stray = START + 123_456_789  # no image has this stamp
    msgs.insert(4, (LAB, START + 100_000_000, _mono(samples[0].labels, stray)))  # labels message 1
    bag = _hand_bag(tmp_path / 'b', msgs, storage='sqlite3')

    reader = read_bag(bag)
    frames = list(reader)
    assert [f.index for f in frames] == [0, 1, 2]
    assert all(_same(f.sample, samples[f.index]) for f in frames)
    assert reader.report.unmatched == {ANO: [], LAB: [1]}
    assert BagIssue(LAB, 1, 'no image message with the same header stamp') in reader.report.issues

    with pytest.raises(BagError, match=rf'{LAB} message 1 .*no image message with the same header stamp'):
        list(read_bag(bag, strict=True))


def test_non_monotonic_stamps(tmp_path: Path, samples: list[Sample]) -> None:
    stamps = [START + k * 100_000_000 for k in (0, 1, 2, 1, 4)]
    stamps[3] += 50_000_000  # message 3 goes back from 0.2 s to 0.15 s
    bag = _hand_bag(tmp_path / 'b', _frames_msgs(samples, stamps))

    reader = read_bag(bag)
    frames = list(reader)
    assert [f.stamp_ns for f in frames] == stamps
    assert all(_same(f.sample, samples[f.index]) for f in frames)  # GT still paired by stamp
    (warning,) = reader.report.warnings
    assert warning.topic == IMG and warning.index == 3
    assert warning.reason.startswith('stamp 1700000000.150000000 < previous 1700000000.200000000')
    assert not reader.report.skipped and not any(reader.report.unmatched.values())

    with pytest.raises(BagError, match=rf'{IMG} message 3: stamp .* < previous'):
        list(read_bag(bag, strict=True))


def test_undecodable_image(tmp_path: Path, samples: list[Sample]) -> None:
    msgs = _frames_msgs(samples)
    short = np.zeros(100, np.uint8)  # wrong data length for 64x128 rgb8
    msgs[3] = (IMG, msgs[3][1], _image(samples[1].image, START + 100_000_000, data=short))
    msgs[6] = (IMG, msgs[6][1], b'\x00\x01\x00\x00garbage')  # not even CDR
    bag = _hand_bag(tmp_path / 'b', msgs)

    reader = read_bag(bag)
    frames = list(reader)
    assert [f.index for f in frames] == [0, 3, 4]
    skipped = {(x.topic, x.index): x.reason for x in reader.report.skipped}
    assert set(skipped) == {(IMG, 1), (IMG, 2)}
    assert 'cannot decode image' in skipped[(IMG, 1)] and 'len(data) = 100' in skipped[(IMG, 1)]
    assert 'cannot deserialize' in skipped[(IMG, 2)]
    assert reader.report.unmatched[LAB] == [2]  # frame 2's stamp was never known

    with pytest.raises(BagError, match=rf'{IMG} message 1: cannot decode image'):
        list(read_bag(bag, strict=True))


def test_ground_truth_outside_encoding(tmp_path: Path, samples: list[Sample]) -> None:
    msgs = _frames_msgs(samples)
    bad = samples[3].anomaly.copy()
    bad[0, :3] = 7
    msgs[3 * 3 + 1] = (ANO, msgs[3 * 3 + 1][1], _mono(bad, START + 300_000_000))
    bag = _hand_bag(tmp_path / 'b', msgs)

    reader = read_bag(bag)
    assert [f.index for f in reader] == [0, 1, 2, 4]
    by_topic = {x.topic: x for x in reader.report.skipped}
    assert by_topic[ANO].index == 3 and 'anomaly values outside {0, 1, 255}: 7 (3 px)' in by_topic[ANO].reason
    assert by_topic[IMG].index == 3 and 'frame skipped' in by_topic[IMG].reason

    with pytest.raises(BagError, match=rf'{ANO} message 3: anomaly values outside'):
        list(read_bag(bag, strict=True))


def test_ground_truth_before_and_after_images(tmp_path: Path, samples: list[Sample]) -> None:
    """Anomaly GT recorded 50 ms before its image, labels 250 ms after (two frames later)."""
    msgs = []
    for i, s in enumerate(samples):
        stamp = START + i * 100_000_000
        msgs += [
            (IMG, stamp, _image(s.image, stamp)),
            (ANO, stamp - 50_000_000, _mono(s.anomaly, stamp)),
            (LAB, stamp + 250_000_000, _mono(s.labels, stamp)),
        ]
    bag = _hand_bag(tmp_path / 'b', msgs, storage='sqlite3')
    reader = read_bag(bag, window=4)
    frames = list(reader)
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert all(_same(f.sample, samples[f.index]) for f in frames)
    assert reader.report.ok


def test_sparse_labels(tmp_path: Path, samples: list[Sample]) -> None:
    msgs = [m for m in _frames_msgs(samples) if m[0] != LAB or m[2].header.stamp.nanosec == 200_000_000]
    reader = read_bag(_hand_bag(tmp_path / 'b', msgs))
    frames = list(reader)
    assert [f.sample.labels is not None for f in frames] == [False, False, True, False, False]
    assert np.array_equal(frames[2].sample.labels, samples[2].labels)
    assert reader.report.ok


def test_bag_package_does_not_import_rclpy() -> None:
    import subprocess
    import sys

    code = 'import sys, anomaly_seg_ros.bag; assert "rclpy" not in sys.modules, "rclpy imported"'
    subprocess.run([sys.executable, '-c', code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_ros1_bag_reads(tmp_path: Path, samples: list[Sample]) -> None:
    """ROS 1 bags (e.g. old Lost & Found recordings) read through the same reader."""
    from rosbags.rosbag1 import Writer as Ros1Writer

    ts1 = get_typestore(Stores.ROS1_NOETIC)
    path = tmp_path / 'old.bag'

    def header(stamp: int) -> Any:
        sec, nsec = divmod(stamp, 1_000_000_000)
        time = ts1.types['builtin_interfaces/msg/Time'](sec=sec, nanosec=nsec)
        return ts1.types['std_msgs/msg/Header'](seq=0, stamp=time, frame_id='camera')

    def image(arr: np.ndarray, stamp: int, encoding: str) -> Any:
        step, raw = rgb_to_image(arr, encoding) if encoding == 'bgr8' else (arr.shape[1], arr.tobytes())
        return ts1.types['sensor_msgs/msg/Image'](
            header=header(stamp),
            height=arr.shape[0],
            width=arr.shape[1],
            encoding=encoding,
            is_bigendian=0,
            step=step,
            data=np.frombuffer(raw, np.uint8),
        )

    with Ros1Writer(path) as writer:
        img_conn = writer.add_connection(IMG, 'sensor_msgs/msg/Image', typestore=ts1)
        ano_conn = writer.add_connection(ANO, 'sensor_msgs/msg/Image', typestore=ts1)
        for i, s in enumerate(samples[:3]):
            stamp = START + i * 100_000_000
            writer.write(img_conn, stamp, ts1.serialize_ros1(image(s.image, stamp, 'bgr8'), 'sensor_msgs/msg/Image'))
            writer.write(ano_conn, stamp, ts1.serialize_ros1(image(s.anomaly, stamp, 'mono8'), 'sensor_msgs/msg/Image'))
    reader = read_bag(path)
    frames = list(reader)
    assert bag_info(path)['storage'] == 'rosbag1'
    assert [f.index for f in frames] == [0, 1, 2] and reader.report.ok, reader.report.summary()
    for f, s in zip(frames, samples[:3], strict=True):
        assert np.array_equal(f.sample.image, s.image) and np.array_equal(f.sample.anomaly, s.anomaly)
        assert f.sample.labels is None and f.stamp_ns == START + f.index * 100_000_000
