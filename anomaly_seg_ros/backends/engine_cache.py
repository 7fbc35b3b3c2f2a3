"""Where TensorRT engines live on disk, how they are named, and who builds one when it is missing.

An engine is valid only for the exact graph, TensorRT version, GPU and build settings it was made with, and a
build takes minutes, so engines are cached under a key of everything that changes the result:

    EngineKey = sha256 of the fused ONNX file, TensorRT version, GPU name + compute capability, precision,
                camera size W x H, and for int8 the sha256 of the calibration cache the engine was built with

The key's digest is part of the file name, so a stale entry (another TensorRT, another GPU, a changed model
or scorer) is simply never looked up again: the new key names a new file, which is built. Files live under
``cache_dir() / 'engines'`` (``$ANOMALY_SEG_CACHE``, else ``$XDG_CACHE_HOME/anomaly_seg_ros``, else
``~/.cache/anomaly_seg_ros``), never at a fixed /tmp path. Each engine is written atomically beside a sha256
of its bytes (``export.publish``); an entry whose bytes no longer match (a truncated copy, a disk error) is
rebuilt with a warning. A cross-process lock (``fcntl.flock`` on ``NAME.lock``) makes a second process that
needs the same engine wait for the first one's build and then load it, instead of building it twice.

The TensorRT timing cache (kernel timings, reused across builds) is one file per TensorRT version and GPU
under ``engines/timing/``.

Nothing here imports TensorRT: the build is a callable returning the serialized engine, so every rule above
is tested without a GPU.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType

from ..errors import BackendError
from .export import cache_dir, cache_entry_ok, publish
from .source import file_sha256

__all__ = [
    'ENGINE_FORMAT',
    'PRECISIONS',
    'CachedEngine',
    'EngineKey',
    'FileLock',
    'discard',
    'engine_dir',
    'file_sha256',
    'get_or_build',
    'get_or_calibrate_and_build',
    'lookup',
    'store_bytes',
    'timing_cache_path',
]

log = logging.getLogger(__name__)

#: bump when the way engines are built changes (builder flags, network creation): every cached engine is rebuilt
ENGINE_FORMAT = 1
PRECISIONS = ('fp32', 'fp16', 'int8')

StatusCallback = Callable[[str], None]


def engine_dir() -> Path:
    """The engine folder inside the project cache (read at call time, so ANOMALY_SEG_CACHE set later counts)."""
    return cache_dir() / 'engines'


def _slug(text: str) -> str:
    """A file-name-safe spelling of a GPU name or version: 'NVIDIA H200 NVL' -> 'NVIDIA-H200-NVL'."""
    return re.sub(r'[^A-Za-z0-9.]+', '-', text).strip('-') or 'unknown'


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine's bytes depend on; `file_name()` changes when any part does."""

    onnx_sha256: str
    trt_version: str
    gpu_name: str
    compute_capability: str  # '9.0'
    precision: str  # fp32 | fp16 | int8
    width: int
    height: int
    calibration_sha256: str = ''  # int8 only: the calibration cache the engine was built with
    #: readable prefix of the file name (model-scorer); not part of the identity
    stem: str = field(default='graph', compare=False)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise BackendError(f'engine precision {self.precision!r}: expected one of {", ".join(PRECISIONS)}')
        if (self.precision == 'int8') != bool(self.calibration_sha256):
            raise BackendError(
                'an int8 engine key needs the sha256 of its calibration cache, and only an int8 key has one '
                f'(precision {self.precision}, calibration sha256 {self.calibration_sha256!r})'
            )
        if self.width < 1 or self.height < 1:
            raise BackendError(f'engine size {self.width}x{self.height}: both sides must be >= 1')

    def identity(self) -> dict[str, object]:
        """The fields that define the engine (what `digest` hashes), for printing and reports."""
        fields = asdict(self)
        fields.pop('stem')
        return fields

    def digest(self) -> str:
        parts = [f'format={ENGINE_FORMAT}', *(f'{k}={v}' for k, v in sorted(self.identity().items()))]
        return hashlib.sha256('\n'.join(parts).encode()).hexdigest()

    def file_name(self) -> str:
        cc = self.compute_capability.replace('.', '')
        return (
            f'{_slug(self.stem)}-{self.width}x{self.height}-{self.precision}-trt{_slug(self.trt_version)}-'
            f'{_slug(self.gpu_name)}-sm{cc}-{self.digest()[:16]}.engine'
        )

    def path(self, directory: Path | None = None) -> Path:
        return (directory or engine_dir()) / self.file_name()


def timing_cache_path(trt_version: str, gpu_name: str, compute_capability: str, directory: Path | None = None) -> Path:
    """One TensorRT timing cache per (TensorRT version, GPU): its timings are only valid there."""
    cc = compute_capability.replace('.', '')
    return (directory or engine_dir()) / 'timing' / f'trt{_slug(trt_version)}-{_slug(gpu_name)}-sm{cc}.timing'


@dataclass(frozen=True)
class CachedEngine:
    """An engine file in the cache and how it got there."""

    path: Path
    key: EngineKey
    built: bool  # built by this call (False: found in the cache, possibly after waiting for another process)
    build_s: float = 0.0  # seconds the build took


class FileLock:
    """An exclusive cross-process lock on ``PATH.lock`` (fcntl.flock), held for the ``with`` block.

    flock locks belong to an open file description, so two threads of one process that each open the lock
    file exclude each other too. The lock file is left behind: removing it while another process waits on it
    would let a third process lock a new file of the same name.
    """

    def __init__(
        self,
        path: Path,
        *,
        on_wait: Callable[[], None] | None = None,
        timeout_s: float | None = None,
        poll_s: float = 0.2,
    ) -> None:
        self.path = path.with_name(path.name + '.lock')
        self.on_wait = on_wait
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self._fd: int | None = None

    def __enter__(self) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not self._try(fd):
                if self.on_wait is not None:
                    self.on_wait()
                if self.timeout_s is None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                else:
                    deadline = time.monotonic() + self.timeout_s
                    while not self._try(fd):
                        if time.monotonic() >= deadline:
                            raise BackendError(
                                f'waited {self.timeout_s:g} s for {self.path} (another process is building '
                                f'{self.path.stem}); giving up'
                            )
                        time.sleep(self.poll_s)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    @staticmethod
    def _try(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def store_bytes(data: bytes, path: Path) -> None:
    """Write `data` to `path` atomically with its sha256 sidecar (a unique temporary file per writer)."""
    if not data:
        raise BackendError(f'{path}: refusing to cache an empty file')
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp')
    try:
        tmp.write_bytes(data)
        publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + '.sha256').unlink(missing_ok=True)
        raise


def discard(path: Path) -> None:
    """Remove a cache entry and its digest (an engine TensorRT refused to load is rebuilt next time)."""
    path.unlink(missing_ok=True)
    path.with_name(path.name + '.sha256').unlink(missing_ok=True)


def lookup(key: EngineKey, directory: Path | None = None) -> Path | None:
    """The cached engine for `key` when present and intact, else None (never builds, never waits)."""
    path = key.path(directory)
    return path if cache_entry_ok(path) else None


def _other_versions(key: EngineKey, directory: Path) -> list[Path]:
    """Engines of the same model and size built under other keys (other TensorRT, GPU or graph)."""
    prefix = f'{_slug(key.stem)}-{key.width}x{key.height}-{key.precision}-'
    return sorted(p for p in directory.glob(prefix + '*.engine') if p.name != key.file_name())


def get_or_build(
    key: EngineKey,
    build: Callable[[], bytes],
    *,
    directory: Path | None = None,
    on_status: StatusCallback | None = None,
    lock_timeout_s: float | None = None,
) -> CachedEngine:
    """The engine for `key`: from the cache when intact, else built once (under the lock) and cached.

    A damaged entry is rebuilt with a warning; a process that finds another one building the same engine
    waits for it (``on_status`` says so) and then uses its result.
    """
    directory = directory or engine_dir()
    path = key.path(directory)
    if cache_entry_ok(path):
        return CachedEngine(path, key, built=False)

    def waiting() -> None:
        _status(on_status, f'waiting for another process building engine {key.width}x{key.height} {key.precision}')

    with FileLock(path, on_wait=waiting, timeout_s=lock_timeout_s):
        if cache_entry_ok(path):  # built by the process we waited for
            return CachedEngine(path, key, built=False)
        return _build_locked(key, path, build, directory, on_status)


def _build_locked(
    key: EngineKey, path: Path, build: Callable[[], bytes], directory: Path, on_status: StatusCallback | None
) -> CachedEngine:
    if path.exists():
        log.warning('cached engine %s is damaged or unverified (its sha256 does not match): rebuilding it', path)
    others = _other_versions(key, directory)
    if others:
        log.info(
            'engine cache: %d engine(s) of %s %dx%d %s were built under other keys (TensorRT, GPU or graph '
            'changed) and are not used: %s',
            len(others),
            key.stem,
            key.width,
            key.height,
            key.precision,
            ', '.join(p.name for p in others),
        )
    _status(on_status, f'building engine {key.width}x{key.height} {key.precision} (first build takes minutes)')
    t0 = time.perf_counter()
    data = build()
    seconds = time.perf_counter() - t0
    store_bytes(data, path)
    log.info('engine cache: built %s in %.1f s', path, seconds)
    return CachedEngine(path, key, built=True, build_s=seconds)


def get_or_calibrate_and_build(
    key_for: Callable[[str], EngineKey],
    calibration_cache: Path,
    build: Callable[[], bytes],
    *,
    directory: Path | None = None,
    on_status: StatusCallback | None = None,
    lock_timeout_s: float | None = None,
) -> CachedEngine:
    """An int8 engine, whose key holds the sha256 of the calibration cache that is only known after calibrating.

    With an intact calibration cache: the engine for its key, from the cache or built (the calibrator then
    reads the cache, no frames are needed). Without one: one build during which the calibrator feeds frames
    and writes the cache; the engine is then stored under the key of the cache just written. `build` must
    leave an intact cache at `calibration_cache` (else BackendError). Everything past a cache hit runs under
    the calibration cache's lock, so a second process waits for the first one's calibration and engine
    instead of building a copy.
    """
    directory = directory or engine_dir()
    if cache_entry_ok(calibration_cache):
        key = key_for(file_sha256(calibration_cache))
        path = lookup(key, directory)
        if path is not None:
            return CachedEngine(path, key, built=False)

    def waiting() -> None:
        _status(on_status, f'waiting for another process calibrating {calibration_cache.name}')

    with FileLock(calibration_cache, on_wait=waiting, timeout_s=lock_timeout_s):
        if cache_entry_ok(calibration_cache):  # calibrated before, or by the process we waited for
            return get_or_build(
                key_for(file_sha256(calibration_cache)),
                build,
                directory=directory,
                on_status=on_status,
                lock_timeout_s=lock_timeout_s,
            )
        if calibration_cache.exists():
            log.warning('calibration cache %s is damaged or unverified: calibrating again', calibration_cache)
            discard(calibration_cache)
        _status(on_status, f'calibrating int8 and building engine {calibration_cache.stem} (takes minutes)')
        t0 = time.perf_counter()
        data = build()
        seconds = time.perf_counter() - t0
        if not cache_entry_ok(calibration_cache):
            raise BackendError(
                f'int8 build finished without writing the calibration cache {calibration_cache}: '
                'the calibrator got no frames?'
            )
        key = key_for(file_sha256(calibration_cache))
        path = key.path(directory)
        with FileLock(path, timeout_s=lock_timeout_s):
            store_bytes(data, path)
        log.info('engine cache: calibrated and built %s in %.1f s', path, seconds)
        return CachedEngine(path, key, built=True, build_s=seconds)


def _status(on_status: StatusCallback | None, text: str) -> None:
    """Tell the owner (the backend logs it and shows it in diagnostics), or log it when there is none."""
    if on_status is not None:
        on_status(text)
    else:
        log.info('tensorrt: %s', text)
