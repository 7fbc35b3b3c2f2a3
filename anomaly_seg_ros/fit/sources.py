"""Where a fit's frames come from: the user's bag, an image folder, a dataset layout, or the synthetic world.

`add_source_arguments` adds exactly one of

    --bag BAG [--image-topic T]       rosbag2 (mcap, sqlite3) or ROS 1 bag; images decoded to RGB
    --images DIR                      the image files directly in DIR, sorted by name
    --dataset FORMAT --root DIR [--split S]   a dataset layout (anomaly_seg_ros.data.readers.open_dataset)
    --synthetic N [--seed S] [--synthetic-size WxH]   the project's synthetic world, no road obstacles

plus `--limit N`. `open_frames` checks the source up front, before any net runs, and refuses what the model
cannot take, naming the bag topic or the file: frames that are not colour (a mono8 or 16-bit topic, a grey
or 16-bit image file), frames under 32 pixels a side, and frames whose aspect ratio differs from the model
input's by more than a factor 2 (a camera that shape is not what the net was trained to see; anything
closer is resized by the Pipeline, as at run time). Frames are read lazily, one at a time, and each is
checked again as it is read; a bag's encoding is checked on its first image message (a camera topic does not
change encoding). Ground truth is optional: a fitter that needs no labels never asks for them, and a
bag's /ground_truth/anomaly topic or a dataset's anomaly masks are passed along so fitters can leave
anomalous pixels out of in-distribution statistics.

The synthetic world renders frames at the model's input size with `anomaly_prob` 0, the configuration
`train seg` trains on (seed 0 there), so `--synthetic N --seed 0` is the training split; without obstacles
unless the fitter asks for them (fit meta's --anomaly-family: it needs anomaly ground truth).
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import cv2
import numpy as np

from ..checks import image_problem
from ..config import ModelConfig
from ..data.readers import IMAGE_EXTENSIONS
from ..data.sample import Sample
from ..errors import BagError, ConfigError, DatasetError

__all__ = [
    'COLOUR_ENCODINGS',
    'MAX_ASPECT_FACTOR',
    'MIN_SIDE',
    'FrameSource',
    'add_source_arguments',
    'frame_problem',
    'open_frames',
]

#: smallest frame side a fit accepts
MIN_SIDE = 32
#: the most a frame's aspect ratio may differ from the model input's, as a factor either way
MAX_ASPECT_FACTOR = 2.0
#: sensor_msgs/Image encodings that carry colour (bayer and YUV are demosaiced / converted to RGB)
COLOUR_ENCODINGS = (
    'rgb8',
    'bgr8',
    'rgba8',
    'bgra8',
    'bayer_rggb8',
    'bayer_bggr8',
    'bayer_gbrg8',
    'bayer_grbg8',
    'yuv422',
    'uyvy',
    'yuyv',
    'yuv422_yuy2',
)


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """The frame source options of every fit command (exactly one source)."""
    group = parser.add_argument_group('frames (exactly one of --bag, --images, --dataset, --synthetic)')
    one = group.add_mutually_exclusive_group(required=True)
    one.add_argument('--bag', type=Path, help='a rosbag2 folder/file (mcap, sqlite3) or a ROS 1 .bag of your drives')
    one.add_argument('--images', type=Path, help='a folder of image files (png, jpg, webp), read in name order')
    one.add_argument('--dataset', help='a dataset layout (cityscapes, lostandfound, fishyscapes, ...) under --root')
    one.add_argument('--synthetic', type=_count, metavar='N', help="N frames of the project's synthetic world")
    group.add_argument('--image-topic', help='--bag: the image topic (needed when the bag has several)')
    group.add_argument('--root', type=Path, help='--dataset: the dataset root folder')
    group.add_argument('--split', help="--dataset: the split, for layouts that have splits (default: the reader's)")
    group.add_argument('--seed', type=int, default=None, help='--synthetic: world seed (0 is the training split)')
    group.add_argument(
        '--synthetic-size',
        type=_size,
        default=None,
        help="--synthetic: frame WIDTHxHEIGHT (default: the model's input)",
    )
    group.add_argument('--limit', type=_count, default=None, help='use at most this many frames (default: all)')


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f'expected a whole number >= 1, got {text!r}')
    return value


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected WIDTHxHEIGHT like 1024x512, got {text!r}') from None
    if w < MIN_SIDE or h < MIN_SIDE:
        raise argparse.ArgumentTypeError(f'size {text!r} too small (min {MIN_SIDE}x{MIN_SIDE})')
    return w, h


def frame_problem(image: Any, model: ModelConfig) -> str | None:
    """Why the model cannot take this frame for a fit, or None: not HxWx3 uint8, a side under MIN_SIDE, or
    an aspect ratio more than MAX_ASPECT_FACTOR away from the model input's."""
    problem = image_problem(image)
    if problem is not None:
        return problem
    h, w = image.shape[:2]
    if min(h, w) < MIN_SIDE:
        return f'frame {w}x{h} is under {MIN_SIDE} pixels a side'
    factor = (w / h) / (model.input.width / model.input.height)
    if not 1 / MAX_ASPECT_FACTOR <= factor <= MAX_ASPECT_FACTOR:
        return (
            f'frame {w}x{h} (aspect {w / h:.2f}) differs from the model input {model.input.width}x'
            f'{model.input.height} (aspect {model.input.width / model.input.height:.2f}) by more than a factor '
            f"{MAX_ASPECT_FACTOR:g}; crop the frames to the model's shape first"
        )
    return None


class FrameSource(Sequence[Sample]):
    """A lazily read, re-iterable sequence of frames; every frame is checked against the model as it is read.

    `describe` says where the frames come from (for logs and --json). Iterating reads the frames in order;
    random access works too but a bag is read from its start to reach frame i (fitters iterate)."""

    def __init__(
        self,
        describe: str,
        length: int,
        iterate: Callable[[], Iterator[tuple[str, Sample]]],
        model: ModelConfig,
        get: Callable[[int], tuple[str, Sample]] | None = None,
    ) -> None:
        self.describe = describe
        self.length = length
        self._iterate = iterate
        self._get = get
        self.model = model

    def __len__(self) -> int:
        return self.length

    def _checked(self, where: str, sample: Sample) -> Sample:
        problem = frame_problem(sample.image, self.model)
        if problem is not None:
            raise DatasetError(f'{where}: {problem}')
        return sample

    def __iter__(self) -> Iterator[Sample]:
        for where, sample in itertools.islice(self._iterate(), self.length):
            yield self._checked(where, sample)

    @overload
    def __getitem__(self, i: int) -> Sample: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[Sample]: ...

    def __getitem__(self, i: int | slice) -> Sample | Sequence[Sample]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.length))]
        if i < 0:
            i += self.length
        if not 0 <= i < self.length:
            raise IndexError(f'frame {i} out of range: {self.describe} has {self.length}')
        if self._get is not None:
            return self._checked(*self._get(i))
        where, sample = next(itertools.islice(self._iterate(), i, None))
        return self._checked(where, sample)

    def __repr__(self) -> str:
        return f'FrameSource({self.describe}, {self.length} frames)'


def open_frames(args: argparse.Namespace, model: ModelConfig) -> FrameSource:
    """The frames the source options name, checked up front (see the module docstring)."""
    _check_combination(args)
    limit = args.limit
    if args.bag is not None:
        source = _bag_frames(Path(args.bag), args.image_topic, model)
    elif args.images is not None:
        source = _image_frames(Path(args.images), model)
    elif args.dataset is not None:
        source = _dataset_frames(args.dataset, Path(args.root), args.split, model)
    else:
        source = _synthetic_frames(
            args.synthetic,
            0 if args.seed is None else args.seed,
            args.synthetic_size,
            model,
            getattr(args, 'anomaly_family', None),
            getattr(args, 'anomaly_prob', 0.5),
        )
    if limit is not None:
        source.length = min(source.length, limit)
    if source.length == 0:
        raise DatasetError(f'{source.describe}: no frames to fit on')
    source[0]  # noqa: B018 - the first frame is read and checked now, before any net is loaded
    return source


def _check_combination(args: argparse.Namespace) -> None:
    if args.image_topic is not None and args.bag is None:
        raise ConfigError('--image-topic applies to --bag only')
    if args.dataset is not None and args.root is None:
        raise ConfigError(f'--dataset {args.dataset} needs --root DIR (the dataset folder)')
    if args.root is not None and args.dataset is None:
        raise ConfigError('--root applies to --dataset only')
    if args.split is not None and args.dataset is None:
        raise ConfigError('--split applies to --dataset only')
    if args.synthetic is None and (args.seed is not None or args.synthetic_size is not None):
        raise ConfigError('--seed and --synthetic-size apply to --synthetic only')


# --------------------------------------------------------------------------- image folder


def _read_colour(path: Path) -> np.ndarray:
    """An image file as HxWx3 uint8 RGB; a grey, 16-bit or float file is refused (not silently converted)."""
    from ..io.image_files import read_bytes  # noqa: PLC0415

    img = cv2.imdecode(read_bytes(path, 'image'), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise DatasetError(f'image file {str(path)!r} is corrupt or not an image OpenCV can decode')
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        raise DatasetError(f'image file {str(path)!r} is grey (one channel); fit needs colour frames like the camera')
    if img.dtype != np.uint8:
        raise DatasetError(
            f'image file {str(path)!r} has {img.dtype} pixels ({img.dtype.itemsize * 8}-bit); fit needs 8-bit colour'
        )
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise DatasetError(f'image file {str(path)!r} has shape {img.shape}; expected HxWx3 colour')
    code = cv2.COLOR_BGRA2RGB if img.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return np.ascontiguousarray(cv2.cvtColor(img, code))


def _image_frames(folder: Path, model: ModelConfig) -> FrameSource:
    if not folder.is_dir():
        raise DatasetError(f'--images {folder}: not a folder')
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DatasetError(f'--images {folder}: no {"/".join(IMAGE_EXTENSIONS)} files in it')

    def get(i: int) -> tuple[str, Sample]:
        return f'image file {files[i]}', Sample(image=_read_colour(files[i]), name=files[i].stem)

    def iterate() -> Iterator[tuple[str, Sample]]:
        for i in range(len(files)):
            yield get(i)

    return FrameSource(f'{len(files)} images in {folder}', len(files), iterate, model, get)


# --------------------------------------------------------------------------- dataset layout


def _dataset_frames(fmt: str, root: Path, split: str | None, model: ModelConfig) -> FrameSource:
    from ..data.readers import open_dataset  # noqa: PLC0415

    reader = open_dataset(fmt, root, **({'split': split} if split is not None else {}))
    names = reader.names

    def get(i: int) -> tuple[str, Sample]:
        return f'dataset {fmt} {root} frame {names[i]!r}', reader[i]

    def iterate() -> Iterator[tuple[str, Sample]]:
        for i in range(len(reader)):
            yield get(i)

    what = f'dataset {fmt} at {root}' + (f' split {split}' if split else '')
    return FrameSource(f'{what} ({len(reader)} frames)', len(reader), iterate, model, get)


# --------------------------------------------------------------------------- synthetic world


def _synthetic_frames(
    count: int,
    seed: int,
    size: tuple[int, int] | None,
    model: ModelConfig,
    anomaly_family: str | None = None,
    anomaly_prob: float = 0.5,
) -> FrameSource:
    """`anomaly_family` None: no obstacles (in-distribution fits); a family name (a fitter that needs anomaly
    ground truth, fit meta, adds --anomaly-family): obstacles of that family in `anomaly_prob` of the frames."""
    from ..data.synthetic import SyntheticWorld, WorldConfig  # noqa: PLC0415

    w, h = size or (model.input.width, model.input.height)
    if anomaly_family is None:
        config = WorldConfig(height=h, width=w, anomaly_prob=0.0)
        what = 'no obstacles'
    else:
        config = WorldConfig(height=h, width=w, anomaly_prob=anomaly_prob, anomaly_family=anomaly_family)
        what = f'{anomaly_family} obstacles in {anomaly_prob:g} of the frames'
    world = SyntheticWorld(count, seed=seed, config=config)

    def get(i: int) -> tuple[str, Sample]:
        return f'synthetic frame {i} (seed {seed})', world[i]

    def iterate() -> Iterator[tuple[str, Sample]]:
        for i in range(count):
            yield get(i)

    return FrameSource(f'{count} synthetic frames {w}x{h} (seed {seed}, {what})', count, iterate, model, get)


# --------------------------------------------------------------------------- bags


def _bag_frames(path: Path, image_topic: str | None, model: ModelConfig) -> FrameSource:
    from ..bag import BagReader, BagTopics, bag_info  # noqa: PLC0415
    from ..bag.conventions import IMAGE_TYPES  # noqa: PLC0415

    if not path.exists():
        raise BagError(f'--bag {path}: no such file or folder')
    info = bag_info(path)
    topics = info['topics']
    listing = ', '.join(f'{t} ({v["type"]})' for t, v in topics.items()) or 'none'
    gt = {BagTopics().anomaly, BagTopics().labels}
    if image_topic is None:
        candidates = [t for t, v in topics.items() if v['type'] in IMAGE_TYPES and t not in gt]
        if len(candidates) != 1:
            what = 'no image topic' if not candidates else f'{len(candidates)} image topics ({", ".join(candidates)})'
            raise BagError(f'bag {path} has {what}; pass --image-topic TOPIC. Topics: {listing}')
        image_topic = candidates[0]
    elif image_topic not in topics:
        raise BagError(f'bag {path}: --image-topic {image_topic!r} is not in the bag. Topics: {listing}')
    elif topics[image_topic]['type'] not in IMAGE_TYPES:
        raise BagError(
            f'bag {path}: --image-topic {image_topic!r} has type {topics[image_topic]["type"]}, expected '
            'sensor_msgs/msg/Image or CompressedImage'
        )
    _check_bag_encoding(path, image_topic)
    topic = image_topic
    count = int(topics[topic]['count'] or 0)

    def iterate() -> Iterator[tuple[str, Sample]]:
        with BagReader(path, image_topic=topic, labels_topic=None) as reader:
            for frame in reader:
                yield f'bag {path} topic {topic} message {frame.index}', frame.sample

    return FrameSource(f'bag {path} topic {topic}', count, iterate, model)


def _check_bag_encoding(path: Path, topic: str) -> None:
    """Refuse a topic whose first image is not colour (mono8, mono16, 16-bit or float encodings)."""
    from ..bag.conventions import COMPRESSED_TYPE  # noqa: PLC0415
    from ..bag.sources import LostChunk, open_source  # noqa: PLC0415

    source = open_source(path)
    try:
        for item in source.messages({topic}):
            if isinstance(item, LostChunk):
                continue
            _, msgtype, _, raw = item
            msg = source.deserialize(raw, msgtype)
            if msgtype == COMPRESSED_TYPE:
                buf = np.frombuffer(bytes(msg.data), np.uint8)
                img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
                if img is None:
                    return  # undecodable: the reader reports and skips it with its index
                if img.ndim == 2 or img.shape[2] == 1 or img.dtype != np.uint8:
                    raise BagError(
                        f'bag {path}: image topic {topic} carries {msg.format!r} frames that are grey or not 8-bit '
                        '(message 0); fit needs colour frames like those the model sees'
                    )
                return
            encoding = str(msg.encoding).strip().lower()
            if encoding not in COLOUR_ENCODINGS:
                raise BagError(
                    f'bag {path}: image topic {topic} has encoding {msg.encoding!r} (message 0), which is not colour; '
                    f'fit needs colour frames ({", ".join(COLOUR_ENCODINGS)})'
                )
            return
    finally:
        source.close()
