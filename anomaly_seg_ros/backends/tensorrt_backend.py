"""TensorRT backend: the fused pipeline graph (frame -> labels, score, aux) compiled into one engine per camera size.

Build: tensorrt_build.py (the fused ONNX file from ``source.onnx(frame_hw)``, parsed and built with the
TensorRT Python API; fp16 by default, fp32, or int8 calibrated on frames, see calibration.py). The engine is
cached on disk (engine_cache.py: keyed by ONNX sha256, TensorRT version, GPU, precision, size; rebuilt when
stale or damaged; one builder at a time across processes). While an engine is built or loaded, ``status``
says so and ``on_status`` is called, so the node can log it and show it in its diagnostics.

Run: tensorrt_run.py (buffers, addresses and a CUDA stream made once per engine; per frame one upload, one
``execute_async_v3``, downloads and one synchronize). The maps handed back are copies (callers keep results
across frames); ``reuse_outputs=True`` hands out views of the pinned buffers instead, valid until the next call.

Camera sizes: an engine is built for a fixed frame size (the graph's resize constants are fixed, and fixed
shapes give the fastest engines). ``prepare(frame_hw)`` builds or loads the engine of a size ahead of time
(`build_backend('auto')` does it for the model's input size; `anomaly-seg build-engine --size` builds for
vehicle provisioning). A frame of a size met for the first time:
- its engine is in the cache: it is loaded and used (the fused graph is exported first if it is not cached:
  seconds, not minutes);
- no engine exists at all yet: one is built for this size, the only case where a frame waits for a build;
- else no engine is built inside the frame loop: the frame is resized on the host (cv2, INTER_AREA down,
  INTER_LINEAR up) to the size of the first engine, run, and the maps are resized back to the frame
  (`resize_maps`: labels nearest, score and aux bilinear, clipped to the range the engine produced). A
  warning is logged once per size and ``resized_frames`` counts such frames. `prepare` that size to stop it.
  Offline tools that would rather wait for a build than resize (evaluation, parity tests) pass
  ``build_new_sizes=True``; the node never does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

import cv2
import numpy as np
import torch

from .. import defaults
from ..errors import BackendError
from ..preprocess import resize_interpolation
from .base import Capabilities
from .calibration import (
    BatchFeeder,
    CalibrationCache,
    CalibrationSource,
    calibration_cache_path,
    calibration_key,
    calibration_source,
    make_entropy_calibrator,
)
from .engine_cache import (
    PRECISIONS,
    CachedEngine,
    EngineKey,
    discard,
    file_sha256,
    get_or_build,
    get_or_calibrate_and_build,
    lookup,
    timing_cache_path,
)
from .export import cache_entry_ok
from .source import GraphSource
from .tensorrt_build import (
    TRT_MISSING,
    build_serialized_engine,
    import_tensorrt,
    make_logger,
    supported_precisions,
    trt_version,
)
from .tensorrt_run import HW, EngineRunner, gpu_identity, on_device

__all__ = [
    'DEFAULT_CALIB_FRAMES',
    'DEFAULT_PRECISION',
    'DEFAULT_WORKSPACE_GB',
    'NO_CUDA',
    'TRT_MISSING',
    'EngineRunner',
    'SizeRouter',
    'TensorRTBackend',
    'build_serialized_engine',
    'capabilities',
    'import_tensorrt',
    'make_logger',
    'resize_maps',
    'run_resized',
    'supported_precisions',
]

log = logging.getLogger(__name__)

NO_CUDA = 'no CUDA GPU'
DEFAULT_PRECISION = defaults.TRT_PRECISION
DEFAULT_CALIB_FRAMES = defaults.TRT_CALIB_FRAMES
DEFAULT_WORKSPACE_GB = defaults.TRT_WORKSPACE_GB

E = TypeVar('E')


# ---------------------------------------------------------------------------------------------- availability


def capabilities() -> Capabilities:
    """Available (None) only where tensorrt imports and torch sees a CUDA GPU; never raises."""
    try:
        trt = import_tensorrt()
    except BackendError as e:
        return Capabilities('tensorrt', (), (), True, available=str(e))
    try:
        cuda = torch.cuda.is_available()
    except Exception as e:  # noqa: BLE001 - a broken driver must not crash the registry
        return Capabilities('tensorrt', (), (), True, available=f'{NO_CUDA} ({type(e).__name__}: {e})')
    if not cuda:
        return Capabilities('tensorrt', (), (), True, available=NO_CUDA)
    return Capabilities('tensorrt', ('cuda',), supported_precisions(trt), True)


# ---------------------------------------------------------------------------------------- frame size policy


def resize_maps(maps: dict[str, np.ndarray], frame_hw: HW) -> dict[str, np.ndarray]:
    """Graph maps (HxW each) back to the camera frame's size: labels nearest (as the graph upsamples them),
    score and aux bilinear (half-pixel centres, as the graph), clipped to the range each map had."""
    h, w = frame_hw
    out: dict[str, np.ndarray] = {}
    for name, m in maps.items():
        if m.shape[:2] == (h, w):
            out[name] = m
        elif name == 'labels':
            out[name] = cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST)
        else:
            up = cv2.resize(np.ascontiguousarray(m, dtype=np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
            # bilinear weights sum to 1 only up to rounding: keep a declared range's top exact
            out[name] = np.clip(up, m.min(), m.max(), out=up) if m.size else up
    return out


def run_resized(
    frame: np.ndarray, engine_hw: HW, run: Callable[[np.ndarray], dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Run a frame through an engine built for another size: resize the frame on the host (INTER_AREA when
    shrinking, INTER_LINEAR when enlarging), run, and resize the maps back to the frame's size."""
    h, w = frame.shape[:2]
    if (h, w) == engine_hw:
        return run(frame)
    small = cv2.resize(frame, (engine_hw[1], engine_hw[0]), interpolation=resize_interpolation((h, w), engine_hw))
    return resize_maps(run(np.ascontiguousarray(small)), (h, w))


class SizeRouter(Generic[E]):
    """Which engine a frame of a given size runs on (the policy in the module docstring), without TensorRT.

    find(hw):  the engine of that size if it can be had without building (from the cache), else None;
               asked once per size.
    build(hw): build one; used while there is no engine at all, or for every new size when
               `build_new_sizes` (offline tools that would rather wait than resize; never the node).
    """

    def __init__(
        self,
        find: Callable[[HW], E | None],
        build: Callable[[HW], E],
        warn: Callable[[str], None] = log.warning,
        build_new_sizes: bool = False,
    ) -> None:
        self.find = find
        self.build = build
        self.warn = warn
        self.build_new_sizes = build_new_sizes
        self.engines: dict[HW, E] = {}
        self.primary: HW | None = None
        self.resized: dict[HW, int] = {}
        self._asked: set[HW] = set()

    @property
    def resized_frames(self) -> int:
        return sum(self.resized.values())

    def add(self, hw: HW, engine: E) -> None:
        self.engines[hw] = engine
        self._asked.add(hw)
        if self.primary is None:
            self.primary = hw

    def route(self, hw: HW) -> tuple[HW, E]:
        """(size of the engine to use, engine); when the size differs, the caller resizes (run_resized)."""
        engine = self.engines.get(hw)
        if engine is not None:
            return hw, engine
        if hw not in self._asked:
            self._asked.add(hw)
            found = self.find(hw)
            if found is not None:
                self.add(hw, found)
                return hw, found
        if self.primary is None or self.build_new_sizes:
            built = self.build(hw)
            self.add(hw, built)
            return hw, built
        if hw not in self.resized:
            self.resized[hw] = 0
            (h, w), (ph, pw) = hw, self.primary
            self.warn(
                f'tensorrt backend: no engine for camera size {w}x{h}; its frames are resized to {pw}x{ph} on the '
                f'host and the maps resized back (slower, less sharp). Build one: anomaly-seg build-engine '
                f'--size {w}x{h} (or prepare() it)'
            )
        self.resized[hw] += 1
        return self.primary, self.engines[self.primary]

    def clear(self) -> None:
        self.engines.clear()
        self.primary = None


# ---------------------------------------------------------------------------------------------------- backend


class TensorRTBackend:
    name = 'tensorrt'

    def __init__(
        self,
        source: GraphSource,
        device: str = 'cuda',
        precision: str = DEFAULT_PRECISION,
        calibration: str | Path | CalibrationSource | None = None,
        calib_frames: int = DEFAULT_CALIB_FRAMES,
        workspace_gb: float = DEFAULT_WORKSPACE_GB,
        on_status: Callable[[str], None] | None = None,
        reuse_outputs: bool = False,
        build_new_sizes: bool = False,
    ) -> None:
        if precision not in PRECISIONS:
            raise BackendError(f'backend tensorrt: precision {precision!r}: expected one of {", ".join(PRECISIONS)}')
        try:
            dev = torch.device(device)
        except RuntimeError as e:
            raise BackendError(f'backend tensorrt: bad device {device!r}: {e}') from None
        if dev.type != 'cuda':
            raise BackendError(f'backend tensorrt: device {device!r}: TensorRT runs on a CUDA device (cuda, cuda:N)')
        if not workspace_gb > 0:
            raise BackendError(f'backend tensorrt: workspace_gb must be > 0, got {workspace_gb!r}')
        if calib_frames < 1:
            raise BackendError(f'backend tensorrt: calib_frames must be >= 1, got {calib_frames!r}')
        self._trt = import_tensorrt()
        if not torch.cuda.is_available():
            raise BackendError(f'backend tensorrt: {NO_CUDA}')
        offered = supported_precisions(self._trt)
        if precision not in offered:
            raise BackendError(
                f'backend tensorrt: TensorRT {trt_version(self._trt)} offers {", ".join(offered)}, not {precision} '
                '(TensorRT 11 dropped the fp16/int8 builder flags)'
            )
        self._device = dev if dev.index is not None else torch.device('cuda', torch.cuda.current_device())
        self.device = str(self._device)
        self.precision = precision
        self.source = source
        self.calib_frames = calib_frames
        self.workspace_bytes = int(workspace_gb * (1 << 30))
        self.on_status = on_status
        self.reuse_outputs = reuse_outputs
        self._calibration: CalibrationSource | None = None
        if precision == 'int8':
            if calibration is None:
                raise BackendError(
                    'backend tensorrt: precision int8 needs calibration frames: calibration=FOLDER of images '
                    '(or build the engine once with anomaly-seg build-engine --precision int8 --calibration '
                    'FOLDER_OR_BAG)'
                )
            self._calibration = calibration_source(calibration, calib_frames)
        elif calibration is not None:
            log.warning('backend tensorrt: calibration is only used for precision int8, not %s: ignored', precision)
        self.trt_version = trt_version(self._trt)
        self.gpu_name, self.compute_capability = gpu_identity(self._device)
        self._logger = make_logger(self._trt)
        self._runtime = self._trt.Runtime(self._logger)
        self._records: dict[HW, CachedEngine] = {}
        self._router: SizeRouter[EngineRunner] = SizeRouter(
            self._find, self._prepare_runner, build_new_sizes=build_new_sizes
        )
        self._closed = False
        self.status = 'no engine loaded yet'

    # ---------------------------------------------------------------- status and keys

    def _set_status(self, text: str) -> None:
        self.status = text
        log.info('tensorrt backend: %s', text)
        if self.on_status is not None:
            self.on_status(text)

    @property
    def resized_frames(self) -> int:
        """Frames run through another size's engine with a host resize (see the module docstring)."""
        return self._router.resized_frames

    @property
    def engines(self) -> dict[str, Path]:
        """'WxH' -> engine file, for every engine loaded."""
        return {f'{w}x{h}': r.path for (h, w), r in self._records.items()}

    def engine_key(self, frame_hw: HW, onnx_sha256: str, calibration_sha256: str = '') -> EngineKey:
        return EngineKey(
            onnx_sha256=onnx_sha256,
            trt_version=self.trt_version,
            gpu_name=self.gpu_name,
            compute_capability=self.compute_capability,
            precision=self.precision,
            width=frame_hw[1],
            height=frame_hw[0],
            calibration_sha256=calibration_sha256,
            stem=f'{self.source.model.name}-{self.source.scorer.name}',
        )

    def _calibration_path(self, frame_hw: HW, onnx_sha256: str) -> Path:
        if self._calibration is None:  # the constructor sets it for int8, the only caller
            raise BackendError('backend tensorrt: int8 without a calibration source')
        key = calibration_key(onnx_sha256, self.trt_version, frame_hw, self._calibration.identity, self.calib_frames)
        return calibration_cache_path(key, frame_hw)

    def _onnx(self, frame_hw: HW) -> tuple[Path, str]:
        self._set_status(f'exporting the pipeline graph at {frame_hw[1]}x{frame_hw[0]} (if not cached)')
        path = self.source.onnx(frame_hw)
        return path, file_sha256(path)

    # ---------------------------------------------------------------- build and load

    def _build(self, onnx_path: Path, frame_hw: HW, calibration_cache: Path | None) -> bytes:
        timing = timing_cache_path(self.trt_version, self.gpu_name, self.compute_capability)
        feeder = None
        with on_device(self._device):
            calibrator = None
            if calibration_cache is not None and self._calibration is not None:
                feeder = BatchFeeder(self._calibration, frame_hw, self.calib_frames, progress=self._set_status)
                calibrator = make_entropy_calibrator(
                    self._trt, feeder, CalibrationCache(calibration_cache), self._device
                )
            try:
                data = build_serialized_engine(
                    self._trt,
                    onnx_path,
                    self.precision,
                    workspace_bytes=self.workspace_bytes,
                    timing_cache=timing,
                    logger=self._logger,
                    calibrator=calibrator,
                )
            except BackendError:
                if feeder is not None and feeder.error is not None:
                    raise feeder.error from None  # the cause: a calibration frame could not be read
                raise
        if feeder is not None and feeder.error is not None:
            raise feeder.error
        return data

    def _get_or_build(self, frame_hw: HW, onnx_path: Path, onnx_sha: str) -> CachedEngine:
        if self.precision == 'int8':
            calib = self._calibration_path(frame_hw, onnx_sha)
            return get_or_calibrate_and_build(
                lambda sha: self.engine_key(frame_hw, onnx_sha, sha),
                calib,
                lambda: self._build(onnx_path, frame_hw, calib),
                on_status=self._set_status,
            )
        return get_or_build(
            self.engine_key(frame_hw, onnx_sha),
            lambda: self._build(onnx_path, frame_hw, None),
            on_status=self._set_status,
        )

    def _load(self, cached: CachedEngine, frame_hw: HW) -> EngineRunner | None:
        """The engine file deserialized with its buffers; None (file discarded) when TensorRT refuses it."""
        h, w = frame_hw
        self._set_status(f'loading engine {w}x{h} {self.precision} from {cached.path}')
        with on_device(self._device):
            engine = self._runtime.deserialize_cuda_engine(cached.path.read_bytes())
            if engine is None:
                log.warning('TensorRT cannot deserialize the cached engine %s: discarding it', cached.path)
                discard(cached.path)
                return None
            runner = EngineRunner(
                self._trt,
                engine,
                frame_hw,
                tuple(self.source.output_names),
                self._device,
                str(cached.path),
                self.reuse_outputs,
            )
        self._records[frame_hw] = cached
        return runner

    def _prepare_runner(self, frame_hw: HW) -> EngineRunner:
        onnx_path, onnx_sha = self._onnx(frame_hw)
        cached = self._get_or_build(frame_hw, onnx_path, onnx_sha)
        runner = self._load(cached, frame_hw)
        if runner is None:  # an intact file TensorRT would not take: rebuilt once
            cached = self._get_or_build(frame_hw, onnx_path, onnx_sha)
            runner = self._load(cached, frame_hw)
            if runner is None:
                raise BackendError(f'{cached.path}: TensorRT cannot load the engine it has just built')
        self._set_status('ready')
        return runner

    def _find(self, frame_hw: HW) -> EngineRunner | None:
        """The engine of a new camera size from the cache, or None; never builds (frame-loop path)."""
        try:
            onnx_path, onnx_sha = self._onnx(frame_hw)
        except BackendError as e:  # this size's graph cannot be made: the frame still runs, resized
            log.warning('tensorrt backend: no graph for camera size %dx%d: %s', frame_hw[1], frame_hw[0], e)
            self._set_status('ready')
            return None
        calib_sha = ''
        if self.precision == 'int8':
            calib = self._calibration_path(frame_hw, onnx_sha)
            if not cache_entry_ok(calib):
                self._set_status('ready')
                return None
            calib_sha = file_sha256(calib)
        key = self.engine_key(frame_hw, onnx_sha, calib_sha)
        path = lookup(key)
        runner = self._load(CachedEngine(path, key, built=False), frame_hw) if path is not None else None
        self._set_status('ready')
        return runner

    # ---------------------------------------------------------------- the Backend protocol

    def prepare(self, frame_hw: HW) -> CachedEngine:
        """Build (or load from the cache) the engine of a camera size now; its cache record."""
        if self._closed:
            raise BackendError('tensorrt backend: used after close()')
        hw = (int(frame_hw[0]), int(frame_hw[1]))
        if hw not in self._router.engines:
            self._router.add(hw, self._prepare_runner(hw))
        return self._records[hw]

    def __call__(self, frame: np.ndarray) -> dict[str, np.ndarray]:
        if self._closed:
            raise BackendError('tensorrt backend: used after close()')
        hw = (int(frame.shape[0]), int(frame.shape[1]))
        engine_hw, runner = self._router.route(hw)
        if engine_hw == hw:
            return runner(frame)
        return run_resized(frame, engine_hw, runner)

    def close(self) -> None:
        for runner in self._router.engines.values():
            runner.close()
        self._router.clear()
        self._records.clear()
        self._runtime = None
        self._closed = True
        self.status = 'closed'
