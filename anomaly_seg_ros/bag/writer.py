"""Write Samples into a ROS 2 bag (mcap or sqlite3) with rosbags, without ROS installed.

Each frame becomes one image message (sensor_msgs/Image rgb8, or CompressedImage jpeg/png) plus its
ground truth as mono8 sensor_msgs/Image on their own topics, all with the same header stamp and
frame_id, so a subscriber (or :func:`anomaly_seg_ros.bag.read_bag`) pairs them by stamp. The bag
timestamp of every message equals its header stamp.

An mcap bag gets a CRC-32 in every chunk (:func:`~anomaly_seg_ros.bag.mcap_crc.write_chunk_crcs`, filled
in after rosbags closed the file, since its writer records none), so a flipped bit is found when the
bag is read; sqlite3 has no per-message checksum to fill.

The bag is written as rosbag2 format version 8: its metadata.yaml stores QoS profiles as a string,
which ``ros2 bag info`` / ``ros2 bag play`` of Humble and later all parse (version 9 changes that
field to a YAML list that Humble cannot read). An mcap bag needs the rosbag2_storage_mcap plugin on
Humble (``ros-humble-rosbag2-storage-mcap``); it is the default storage from Iron on.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from anomaly_seg_ros.bag.conventions import (
    COMPRESSED_TYPE,
    IMAGE_TYPE,
    bad_gt_values,
    hw,
    require_rosbags,
    ros2_typestore,
)
from anomaly_seg_ros.bag.mcap_crc import write_chunk_crcs
from anomaly_seg_ros.data.sample import Sample
from anomaly_seg_ros.defaults import BAG_FRAME_ID, BAG_RATE_HZ, BAG_STORAGE, GT_ANOMALY_TOPIC, GT_LABELS_TOPIC
from anomaly_seg_ros.errors import BagError, CodecError
from anomaly_seg_ros.io.image_codec import encode_compressed, rgb_to_image
from anomaly_seg_ros.stamps import STAMP0_NS, frame_stamp, split_ns

__all__ = ['BAG_VERSION', 'STORAGES', 'BagTopics', 'write_bag']

STORAGES = ('mcap', 'sqlite3')
COMPRESSED_FORMATS = ('jpeg', 'png')
BAG_VERSION: Final = 8  # see the module docstring


@dataclass(frozen=True)
class BagTopics:
    """Topic names of a bag written by :func:`write_bag` (and the reader's default GT topics).

    image:   sensor_msgs/Image rgb8; with ``compressed`` the CompressedImage goes to
             ``image + '/compressed'`` (the image_transport name) unless it already ends so.
    anomaly: sensor_msgs/Image mono8, Fishyscapes encoding 0 in-distribution / 1 anomaly / 255 ignore.
    labels:  sensor_msgs/Image mono8 Cityscapes trainIds 0..18 / 255; only frames that have labels.
    """

    image: str = '/camera/image_raw'
    anomaly: str = GT_ANOMALY_TOPIC
    labels: str = GT_LABELS_TOPIC

    def image_topic(self, compressed: str | None) -> str:
        if compressed and not self.image.endswith('/compressed'):
            return f'{self.image.rstrip("/")}/compressed'
        return self.image


def _check_sample(sample: Any, i: int) -> Sample:
    if not isinstance(sample, Sample):
        raise BagError(f'sample {i}: expected a Sample, got {type(sample).__name__}')
    who = f'sample {i} ({sample.name!r})' if sample.name else f'sample {i}'
    img = sample.image
    if not (isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3):
        raise BagError(
            f'{who}: image must be an HxWx3 uint8 RGB array, got shape={getattr(img, "shape", None)} '
            f'dtype={getattr(img, "dtype", type(img).__name__)}'
        )
    for kind in ('labels', 'anomaly'):
        gt = getattr(sample, kind)
        if gt is None:
            continue
        if not (isinstance(gt, np.ndarray) and gt.dtype == np.uint8 and gt.ndim == 2):
            raise BagError(
                f'{who}: {kind} must be an HxW uint8 array, got shape={getattr(gt, "shape", None)} '
                f'dtype={getattr(gt, "dtype", type(gt).__name__)}'
            )
        if gt.shape != img.shape[:2]:
            raise BagError(f'{who}: {kind} {hw(gt)} vs image {hw(img)} (HxW) differ')
        if (bad := bad_gt_values(kind, gt)) is not None:
            raise BagError(f'{who}: {bad}')
    return sample


def write_bag(
    samples: Iterable[Sample],
    out: Path | str,
    *,
    storage: str = BAG_STORAGE,
    compressed: str | None = None,
    rate_hz: float = BAG_RATE_HZ,
    topics: BagTopics = BagTopics(),
    frame_id: str = BAG_FRAME_ID,
    start_ns: int = STAMP0_NS,
    jpeg_quality: int = 90,
    progress: bool = True,
) -> dict[str, Any]:
    """Write ``samples`` as a rosbag2 directory ``out``; return a summary of what was written.

    Frame ``i`` gets header stamp :func:`anomaly_seg_ros.stamps.frame_stamp` ``(i, rate_hz, start_ns)``
    = ``start_ns + round(i * 1e9 / rate_hz)`` on all of its messages, and that stamp as bag timestamp.
    ``compressed`` is None (raw rgb8 Image), 'jpeg' or 'png'. Ground truth is written per frame when
    the sample has it (a topic appears only if some frame has it).
    Samples are checked as they are written (HxWx3 uint8 image; uint8 labels/anomaly of the image's
    size with values in their encoding); a bad sample raises :class:`BagError` naming its index and
    name, and the partly written bag is removed.

    The summary: path, storage, compressed, frames, topics ({name: {'type', 'count'}}),
    message_count, start_ns, end_ns, duration_s (last stamp - first stamp), rate_hz, frame_id.
    """
    require_rosbags()
    from rosbags.rosbag2 import StoragePlugin, Writer, WriterError  # noqa: PLC0415

    out = Path(out)
    if storage not in STORAGES:
        raise BagError(f'storage must be one of {STORAGES}, got {storage!r}')
    if compressed is not None and compressed not in COMPRESSED_FORMATS:
        raise BagError(f'compressed must be None or one of {COMPRESSED_FORMATS}, got {compressed!r}')
    if isinstance(rate_hz, bool) or not isinstance(rate_hz, (int, float)) or not math.isfinite(rate_hz) or rate_hz <= 0:
        raise BagError(f'rate_hz must be a finite number > 0, got {rate_hz!r}')
    if out.exists():
        raise BagError(f'bag output {out} exists already; rosbag2 writers never overwrite, remove it first')

    it: Iterator[Sample] = iter(samples)
    first = next(it, None)
    if first is None:
        raise BagError(f'no samples to write to {out}: the sample sequence is empty')
    _check_sample(first, 0)  # before anything is created on disk
    try:
        total: int | None = len(samples)  # type: ignore[arg-type]
    except TypeError:
        total = None

    def all_samples() -> Iterator[Sample]:
        yield first
        yield from it

    typestore = ros2_typestore()
    Header = typestore.types['std_msgs/msg/Header']
    Time = typestore.types['builtin_interfaces/msg/Time']
    Image = typestore.types[IMAGE_TYPE]
    CompressedImage = typestore.types[COMPRESSED_TYPE]
    image_topic = topics.image_topic(compressed)
    gt_topics = {'anomaly': topics.anomaly, 'labels': topics.labels}
    names = [image_topic, *gt_topics.values()]
    if len(set(names)) != len(names):
        raise BagError(
            f'topics must differ, got image={image_topic!r} anomaly={topics.anomaly!r} labels={topics.labels!r}'
        )
    fmt = f'rgb8; {compressed} compressed bgr8' if compressed else ''

    writer = Writer(out, version=BAG_VERSION, storage_plugin=StoragePlugin[storage.upper()])
    connections: dict[str, Any] = {}
    counts: dict[str, int] = {}
    msgtypes: dict[str, str] = {}

    def write(topic: str, msgtype: str, msg: Any, stamp: int) -> None:
        if topic not in connections:
            connections[topic] = writer.add_connection(topic, msgtype, typestore=typestore)
            counts[topic] = 0
            msgtypes[topic] = msgtype
        writer.write(connections[topic], stamp, typestore.serialize_cdr(msg, msgtype))
        counts[topic] += 1

    try:
        writer.open()
    except (WriterError, OSError) as exc:
        raise BagError(f'cannot create bag {out}: {exc}') from None
    n = 0
    stamps: list[int] = []
    bar = None
    try:
        # declare the topics the first frame has before any message, so that a bag cut short (recorder
        # killed, copy interrupted) still says which ground-truth topics it was meant to have
        first_type = COMPRESSED_TYPE if compressed else IMAGE_TYPE
        for topic, msgtype, present in (
            (image_topic, first_type, True),
            (topics.anomaly, IMAGE_TYPE, first.anomaly is not None),
            (topics.labels, IMAGE_TYPE, first.labels is not None),
        ):
            if present:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=typestore)
                counts[topic] = 0
                msgtypes[topic] = msgtype
        writer.set_custom_data('anomaly_seg_ros.ground_truth', f'anomaly={topics.anomaly} labels={topics.labels}')
        if progress:
            from tqdm import tqdm  # noqa: PLC0415

            bar = tqdm(total=total, desc=f'write {out.name}', unit='frame')
        for i, raw in enumerate(all_samples()):
            sample = _check_sample(raw, i)
            stamp = frame_stamp(i, rate_hz, start_ns)
            sec, nanosec = split_ns(stamp)
            header = Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame_id)
            h, w = sample.image.shape[:2]
            try:
                if compressed:
                    data = encode_compressed(sample.image, compressed, quality=jpeg_quality)
                    msg = CompressedImage(header=header, format=fmt, data=np.frombuffer(data, dtype=np.uint8))
                    write(image_topic, COMPRESSED_TYPE, msg, stamp)
                else:
                    step, data = rgb_to_image(sample.image, 'rgb8')
                    msg = Image(
                        header=header,
                        height=h,
                        width=w,
                        encoding='rgb8',
                        is_bigendian=0,
                        step=step,
                        data=np.frombuffer(data, dtype=np.uint8),
                    )
                    write(image_topic, IMAGE_TYPE, msg, stamp)
            except CodecError as exc:
                raise BagError(f'sample {i} ({sample.name!r}): cannot encode the image: {exc}') from None
            for kind, topic in gt_topics.items():
                gt = getattr(sample, kind)
                if gt is None:
                    continue
                msg = Image(
                    header=header,
                    height=h,
                    width=w,
                    encoding='mono8',
                    is_bigendian=0,
                    step=w,
                    data=np.ascontiguousarray(gt).reshape(-1),
                )
                write(topic, IMAGE_TYPE, msg, stamp)
            stamps.append(stamp)
            n += 1
            if bar is not None:
                bar.update(1)
        writer.close()
    except BaseException as exc:
        writer.abort()
        shutil.rmtree(out, ignore_errors=True)  # created by this call: out did not exist before
        if isinstance(exc, WriterError):
            raise BagError(f'writing bag {out} failed after {n} frames: {exc}') from None
        raise
    finally:
        if bar is not None:
            bar.close()
    if storage == 'mcap':
        try:
            for mcap in out.glob('*.mcap'):
                write_chunk_crcs(mcap)
        except BagError:
            shutil.rmtree(out, ignore_errors=True)
            raise

    return {
        'path': str(out),
        'storage': storage,
        'compressed': compressed,
        'frames': n,
        'topics': {t: {'type': msgtypes[t], 'count': counts[t]} for t in connections},
        'message_count': sum(counts.values()),
        'start_ns': stamps[0],
        'end_ns': stamps[-1],
        'duration_s': (stamps[-1] - stamps[0]) / 1e9,
        'rate_hz': float(rate_hz),
        'frame_id': frame_id,
    }
