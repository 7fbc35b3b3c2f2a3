"""int8 calibration for TensorRT: frames from a folder or a bag, a batch feeder, and the calibration cache.

TensorRT's implicit int8 mode measures activation ranges on representative frames (entropy calibration).
The pieces, all plain Python except the calibrator subclass:

- `CalibrationSource`: where frames come from, with an *identity* the calibration cache is keyed by.
  `folder_source` reads a folder of images (``io.image_files.read_image``, sorted by name; the identity is a
  hash of the names and bytes of the files used). A bag is read by the bag layer, which sits above the
  backends: `anomaly-seg build-engine --calibration BAG` hands its frames in as a CalibrationSource
  (``cli/build_engine.py``). Given a bag path directly, the backend can still use a calibration cache made
  from that bag before (the identity of a bag is its path, file sizes and times, no reading), and otherwise
  says to run build-engine.
- `BatchFeeder`: up to N frames, each resized to the engine's frame size (INTER_AREA down, INTER_LINEAR up),
  one 1xHxWx3 uint8 batch at a time, logging progress; `next_batch()` returns None at the end.
- `CalibrationCache`: the cache file TensorRT writes after calibrating, stored beside the engines
  (``cache_dir()/engines/calib-WxH-KEY.calib``, written atomically with a sha256 sidecar), keyed by the ONNX
  hash, TensorRT version, frame size, source identity and frame count. A damaged cache is recalibrated.
- `make_entropy_calibrator`: the ``trt.IInt8EntropyCalibrator2`` subclass, defined only when TensorRT is
  imported, delegating to the feeder and the cache. Implicit int8 calibration is deprecated since TensorRT
  10.1 and removed in 11 (explicit Q/DQ quantization replaces it); where the class is missing this says so.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..checks import image_problem
from ..data.readers import IMAGE_EXTENSIONS
from ..errors import BackendError
from ..io.image_files import read_image
from ..preprocess import resize_interpolation
from .engine_cache import discard, engine_dir, store_bytes
from .export import cache_entry_ok

__all__ = [
    'BAG_SUFFIXES',
    'BatchFeeder',
    'CalibrationCache',
    'CalibrationSource',
    'bag_identity',
    'calibration_cache_path',
    'calibration_key',
    'calibration_source',
    'folder_images',
    'folder_source',
    'is_bag',
    'make_entropy_calibrator',
    'resize_frame',
]

log = logging.getLogger(__name__)

#: single-file bags by suffix (a rosbag2 folder is known by its metadata.yaml)
BAG_SUFFIXES = ('.bag', '.mcap', '.db3')


@dataclass(frozen=True)
class CalibrationSource:
    """Frames for calibration. `identity` changes when the frames would (it keys the calibration cache)."""

    description: str
    identity: str
    read: Callable[[], Iterable[np.ndarray]]  # RGB uint8 HxWx3 frames of any size, read when called


def is_bag(path: Path) -> bool:
    return (path.is_file() and path.suffix in BAG_SUFFIXES) or (path.is_dir() and (path / 'metadata.yaml').is_file())


def folder_images(folder: Path) -> list[Path]:
    """The image files directly inside `folder`, sorted by name; BackendError when there are none."""
    try:
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    except OSError as e:
        raise BackendError(f'calibration folder {folder}: cannot list it: {e}') from None
    if not files:
        raise BackendError(f'calibration folder {folder} holds no {"/".join(IMAGE_EXTENSIONS)} images')
    return files


def folder_source(folder: Path, limit: int) -> CalibrationSource:
    """The first `limit` images of a folder (by name); identity = their names and contents."""
    files = folder_images(folder)[:limit]
    h = hashlib.sha256(b'folder\n')
    for f in files:
        h.update(f.name.encode() + b'\0')
        try:
            h.update(hashlib.sha256(f.read_bytes()).digest())
        except OSError as e:
            raise BackendError(f'calibration image {f}: cannot read it: {e}') from None

    def read() -> Iterator[np.ndarray]:
        for f in files:
            yield read_image(f)

    return CalibrationSource(f'{len(files)} images in {folder}', h.hexdigest(), read)


def bag_identity(path: Path, image_topic: str | None = None) -> str:
    """A bag's identity without reading it: resolved path, image topic, and each file's name, size and mtime."""
    path = path.resolve()
    files = sorted(p for p in path.rglob('*') if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256(f'bag\n{path}\n{image_topic or ""}\n'.encode())
    for f in files:
        st = f.stat()
        h.update(f'{f.relative_to(path.parent)}:{st.st_size}:{st.st_mtime_ns}\n'.encode())
    return h.hexdigest()


def _bag_needs_reader(path: Path) -> CalibrationSource:
    def read() -> Iterator[np.ndarray]:
        raise BackendError(
            f'int8 calibration from the bag {path}: no calibration cache from it yet, and the backend does not '
            f'read bags; run `anomaly-seg build-engine --precision int8 --calibration {path}` once (it reads '
            'the bag and caches the calibration), or pass a folder of images'
        )

    return CalibrationSource(f'bag {path}', bag_identity(path), read)


def calibration_source(spec: str | Path | CalibrationSource, limit: int) -> CalibrationSource:
    """A CalibrationSource from what a user passes: a folder of images, a bag path, or a ready source."""
    if isinstance(spec, CalibrationSource):
        return spec
    path = Path(spec)
    if not path.exists():
        raise BackendError(f'calibration source {path} does not exist (expected a folder of images or a bag)')
    if is_bag(path):
        return _bag_needs_reader(path)
    if path.is_dir():
        return folder_source(path, limit)
    raise BackendError(
        f'calibration source {path} is neither a folder of images nor a bag ({", ".join(BAG_SUFFIXES)} file or '
        'a rosbag2 folder with metadata.yaml)'
    )


def resize_frame(frame: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
    """HxWx3 uint8 -> frame_hw (INTER_AREA when shrinking, INTER_LINEAR when only enlarging), contiguous."""
    h, w = frame.shape[:2]
    if (h, w) == frame_hw:
        return np.ascontiguousarray(frame)
    out = cv2.resize(frame, (frame_hw[1], frame_hw[0]), interpolation=resize_interpolation((h, w), frame_hw))
    return np.ascontiguousarray(out)


class BatchFeeder:
    """Calibration batches of one frame (1xHxWx3 uint8 at the engine's size), up to `limit`, read lazily.

    The frames are read only when the first batch is asked for, so a build that finds a calibration cache
    reads none. `error` holds an exception raised while reading inside TensorRT's callback (which cannot
    raise through TensorRT); the builder re-raises it after the build.
    """

    def __init__(
        self,
        source: CalibrationSource,
        frame_hw: tuple[int, int],
        limit: int,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        if limit < 1:
            raise BackendError(f'calibration frames must be >= 1, got {limit}')
        self.source = source
        self.frame_hw = frame_hw
        self.limit = limit
        self.fed = 0
        self.error: BaseException | None = None
        self._frames: Iterator[np.ndarray] | None = None
        self._done = False
        self._every = max(1, limit // 10)
        self._progress = progress or (lambda text: log.info('%s', text))

    def next_batch(self) -> np.ndarray | None:
        """The next batch, or None when `limit` frames were fed or the source has no more."""
        if self._done:
            return None
        if self._frames is None:
            self._progress(f'int8 calibration: reading up to {self.limit} frames from {self.source.description}')
            self._frames = iter(self.source.read())
        if self.fed >= self.limit:
            self._end()
            return None
        try:
            frame = next(self._frames)
        except StopIteration:
            self._end()
            return None
        problem = image_problem(frame)
        if problem is not None:
            raise BackendError(f'calibration frame {self.fed} of {self.source.description}: {problem}')
        self.fed += 1
        if self.fed % self._every == 0 or self.fed == self.limit:
            self._progress(f'int8 calibration: {self.fed}/{self.limit} frames')
        return resize_frame(frame, self.frame_hw)[None]

    def _end(self) -> None:
        self._done = True
        if self.fed == 0:
            raise BackendError(f'int8 calibration: no frames in {self.source.description}')
        if self.fed < self.limit:
            self._progress(f'int8 calibration: {self.source.description} ran out after {self.fed} frames')


def calibration_key(
    onnx_sha256: str, trt_version: str, frame_hw: tuple[int, int], source_identity: str, frames: int
) -> str:
    text = f'calib\nonnx={onnx_sha256}\ntrt={trt_version}\nhw={frame_hw}\nsource={source_identity}\nn={frames}'
    return hashlib.sha256(text.encode()).hexdigest()


def calibration_cache_path(key: str, frame_hw: tuple[int, int], directory: Path | None = None) -> Path:
    return (directory or engine_dir()) / f'calib-{frame_hw[1]}x{frame_hw[0]}-{key[:16]}.calib'


class CalibrationCache:
    """The calibration cache file: verified by its sha256 sidecar when read, written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> bytes | None:
        if cache_entry_ok(self.path):
            return self.path.read_bytes()
        if self.path.exists():
            log.warning('calibration cache %s is damaged or unverified: calibrating again', self.path)
            discard(self.path)
        return None

    def write(self, data: bytes) -> None:
        store_bytes(bytes(data), self.path)
        log.info('int8 calibration cache written: %s (%d bytes)', self.path, len(data))


def make_entropy_calibrator(trt: Any, feeder: BatchFeeder, cache: CalibrationCache, device: Any) -> Any:
    """A ``trt.IInt8EntropyCalibrator2`` feeding `feeder`'s batches from one device buffer, reading and writing
    `cache`. `device` is the torch CUDA device the engine is built on."""
    base = getattr(trt, 'IInt8EntropyCalibrator2', None)
    if base is None:
        raise BackendError(
            f'TensorRT {getattr(trt, "__version__", "?")} has no IInt8EntropyCalibrator2: implicit int8 '
            'calibration was removed (TensorRT 11); quantize the ONNX graph explicitly (Q/DQ) or use fp16'
        )
    import torch  # noqa: PLC0415 - only on a CUDA machine with TensorRT

    h, w = feeder.frame_hw

    class EntropyCalibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)  # type: ignore[misc]  # pybind11 bases must be initialised explicitly
            self.buffer = torch.empty((1, h, w, 3), dtype=torch.uint8, device=device)

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: list[str]) -> list[int] | None:
            try:
                batch = feeder.next_batch()
            except Exception as e:  # noqa: BLE001 - TensorRT cannot carry it: kept and re-raised after the build
                feeder.error = e
                return None
            if batch is None:
                return None
            self.buffer.copy_(torch.from_numpy(batch))
            if self.buffer.is_cuda:  # TensorRT reads it on its own stream
                torch.cuda.current_stream(self.buffer.device).synchronize()
            return [int(self.buffer.data_ptr())]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read()

        def write_calibration_cache(self, data: Any) -> None:
            try:
                cache.write(bytes(memoryview(data)))
            except Exception as e:  # noqa: BLE001 - as in get_batch
                feeder.error = e

    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)  # deprecated since TensorRT 10.1, said in the docs
        return EntropyCalibrator()
