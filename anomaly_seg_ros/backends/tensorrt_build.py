"""TensorRT engine build: whether TensorRT imports and which precisions it builds, and the fused ONNX graph
compiled into a serialized engine.

Build (TensorRT Python API): the fused ONNX file is parsed with ``OnnxParser`` (its errors are reported with
node names), built by ``Builder.build_serialized_network`` with a ``BuilderConfig``: a workspace memory-pool
limit, fp16 (the default, defaults.TRT_PRECISION: ``BuilderFlag.FP16``), fp32, or int8 (``BuilderFlag.INT8``
plus FP16 for layers without int8 kernels, with an entropy calibrator, see calibration.py), and the timing
cache of this TensorRT and GPU loaded before and saved after. Caching the engines and deciding when to build
is tensorrt_backend.py's (with engine_cache.py).

TensorRT 10 is the target. TensorRT 8.x networks get the explicit-batch flag. TensorRT 11 removed the fp16
and int8 builder flags and implicit int8 calibration (strongly typed networks only): there only fp32 is
offered, and asking for fp16/int8 is an error that says so.

Precision fp32 means true fp32 (TF32 tactics off), so an fp32 engine can be held to the eager-torch reference.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from ..errors import BackendError
from .engine_cache import FileLock, store_bytes
from .export import cache_entry_ok

__all__ = [
    'TRT_MISSING',
    'build_serialized_engine',
    'configure_precision',
    'import_tensorrt',
    'make_logger',
    'network_flags',
    'parser_error_text',
    'read_timing_cache',
    'supported_precisions',
    'trt_version',
    'write_timing_cache',
]

log = logging.getLogger(__name__)

TRT_MISSING = 'TensorRT is not installed (pip install tensorrt on a machine with an NVIDIA GPU)'


# ---------------------------------------------------------------------------------------------- availability


def import_tensorrt() -> Any:
    """The tensorrt module; BackendError saying why when it cannot be imported."""
    try:
        import tensorrt as trt
    except ImportError:
        raise BackendError(TRT_MISSING) from None
    except Exception as e:  # noqa: BLE001 - a broken install (missing libnvinfer) raises OSError and friends
        raise BackendError(f'TensorRT is installed but cannot be imported: {type(e).__name__}: {e}') from None
    return trt


def trt_version(trt: Any) -> str:
    return str(getattr(trt, '__version__', 'unknown'))


def _major(trt: Any) -> int:
    try:
        return int(trt_version(trt).split('.')[0])
    except ValueError:
        return 0


def supported_precisions(trt: Any) -> tuple[str, ...]:
    """fp32 always; fp16 and int8 while the builder still has their flags (not in TensorRT 11)."""
    flags = trt.BuilderFlag
    out = ['fp32']
    if hasattr(flags, 'FP16'):
        out.append('fp16')
    if hasattr(flags, 'INT8') and hasattr(trt, 'IInt8EntropyCalibrator2'):
        out.append('int8')
    return tuple(out)


# ------------------------------------------------------------------------------------------------------ build


_SEVERITY = {'INTERNAL_ERROR': logging.CRITICAL, 'ERROR': logging.ERROR, 'WARNING': logging.WARNING, 'INFO': 15}


def make_logger(trt: Any) -> Any:
    """A ``trt.ILogger`` writing TensorRT's messages to this module's log (INFO as debug, VERBOSE dropped),
    keeping the errors so a failed build can quote them."""

    class Logger(trt.ILogger):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            level = _SEVERITY.get(getattr(severity, 'name', str(severity)).rsplit('.', 1)[-1])
            if level is None:
                return
            if level >= logging.ERROR:
                self.errors.append(str(msg))
            log.log(level if level != 15 else logging.DEBUG, 'TensorRT: %s', msg)

    return Logger()


def network_flags(trt: Any) -> int:
    """0 on TensorRT 10+ (networks are always explicit batch); the EXPLICIT_BATCH bit before that."""
    flag = getattr(trt.NetworkDefinitionCreationFlag, 'EXPLICIT_BATCH', None)
    if _major(trt) < 10 and flag is not None:
        return 1 << int(flag)
    return 0


def parser_error_text(error: Any) -> str:
    """One parser error: its description with the node (name where TensorRT 10 gives it) and operator."""
    where: list[str] = []
    name = getattr(error, 'node_name', None)
    name = name() if callable(name) else None
    if name:
        where.append(f'node {name}')
    else:
        node = error.node() if callable(getattr(error, 'node', None)) else -1
        if isinstance(node, int) and node >= 0:
            where.append(f'node #{node}')
    op = getattr(error, 'node_operator', None)
    op = op() if callable(op) else None
    if op:
        where.append(f'op {op}')
    desc = str(error.desc()) if callable(getattr(error, 'desc', None)) else str(error)
    return f'{desc} ({", ".join(where)})' if where else desc


def configure_precision(trt: Any, config: Any, precision: str, calibrator: Any | None) -> None:
    flags = trt.BuilderFlag
    if precision == 'fp32':
        if hasattr(flags, 'TF32'):  # on by default on Ampere and later: 10-bit mantissas in convolutions
            config.clear_flag(flags.TF32)
        return
    if precision not in supported_precisions(trt):
        raise BackendError(
            f'TensorRT {trt_version(trt)} cannot build {precision} engines from an fp32 graph (TensorRT 11 removed '
            'the fp16/int8 builder flags and implicit calibration); use precision fp32, or TensorRT 10'
        )
    config.set_flag(flags.FP16)
    if precision == 'int8':
        if calibrator is None:
            raise BackendError('an int8 engine needs a calibrator (calibration frames)')
        with warnings.catch_warnings():  # implicit int8 is deprecated since TensorRT 10.1 (module docstring)
            warnings.simplefilter('ignore', DeprecationWarning)
            config.set_flag(flags.INT8)
            config.int8_calibrator = calibrator


def read_timing_cache(path: Path) -> bytes:
    """The serialized timing cache, or b'' (an empty cache) when there is none or it is damaged."""
    if cache_entry_ok(path):
        return path.read_bytes()
    if path.exists():
        log.warning('TensorRT timing cache %s is damaged or unverified: starting an empty one', path)
    return b''


def write_timing_cache(path: Path, data: bytes) -> None:
    if data:
        with FileLock(path):
            store_bytes(data, path)


def build_serialized_engine(
    trt: Any,
    onnx_path: Path,
    precision: str,
    *,
    workspace_bytes: int,
    timing_cache: Path | None,
    logger: Any,
    calibrator: Any | None = None,
) -> bytes:
    """Parse the ONNX file, configure the builder and build; the serialized engine's bytes."""
    errors = getattr(logger, 'errors', None)
    if isinstance(errors, list):
        errors.clear()  # a failed build quotes its own errors, not an earlier build's
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [parser_error_text(parser.get_error(i)) for i in range(parser.num_errors)]
        raise BackendError(
            f'{onnx_path}: the TensorRT {trt_version(trt)} ONNX parser rejected the graph: '
            + ('; '.join(errors) if errors else 'no error reported')
        )
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    configure_precision(trt, config, precision, calibrator)
    timing = None
    if timing_cache is not None:
        try:
            timing = config.create_timing_cache(read_timing_cache(timing_cache))
            # ignore_mismatch=False: a cache from another device or version is refused, not trusted
            if timing is None or config.set_timing_cache(timing, False) is False:
                raise RuntimeError('set_timing_cache returned False')
        except Exception as e:  # noqa: BLE001 - pybind raises RuntimeError and friends
            log.warning('TensorRT did not take the timing cache %s (%s): building without it', timing_cache, e)
            timing = None
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        reason = '; '.join(getattr(logger, 'errors', [])[-5:]) or 'see the TensorRT messages in the log'
        raise BackendError(f'{onnx_path}: TensorRT could not build a {precision} engine: {reason}')
    if timing is not None and timing_cache is not None:
        write_timing_cache(timing_cache, bytes(memoryview(timing.serialize())))
    return bytes(memoryview(serialized))
