"""Export the fused pipeline graph to ONNX, cached by content, for the onnxruntime and tensorrt backends.

The legacy TorchScript-based exporter is used: the dynamo exporter needs onnxscript, which the vehicle
image does not carry. Opset 17 covers everything the project's nets use.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import uuid
import warnings
from pathlib import Path

import torch
from torch import nn

from ..errors import BackendError
from .source import GraphSource

__all__ = [
    'EXPORT_LOCK',
    'OPSET',
    'cache_dir',
    'cache_entry_ok',
    'check_onnx',
    'export_module',
    'export_onnx',
    'fused_onnx_for',
    'publish',
]

log = logging.getLogger(__name__)
#: torch's exporter keeps global state: two threads exporting at once fail ("in_onnx_export")
EXPORT_LOCK = threading.Lock()

OPSET = 17


def cache_dir() -> Path:
    root = os.environ.get('ANOMALY_SEG_CACHE') or os.path.join(
        os.environ.get('XDG_CACHE_HOME', os.path.expanduser('~/.cache')), 'anomaly_seg_ros'
    )
    return Path(root)


def export_module(
    module: nn.Module,
    example: torch.Tensor,
    path: Path,
    input_names: tuple[str, ...] = ('image',),
    output_names: tuple[str, ...] = ('logits',),
    opset: int = OPSET,
) -> Path:
    """Trace `module` at the fixed shape of `example` (fixed shapes build the fastest TensorRT engines) and
    write it atomically beside a sha256 of its bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # unique per writer: two processes exporting the same cache entry at once must not write into one file
    tmp = path.with_name(f'{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp.onnx')
    what = f'{type(module).__name__} at {"x".join(map(str, example.shape))}'
    try:
        with EXPORT_LOCK, warnings.catch_warnings():
            warnings.simplefilter('ignore')
            torch.onnx.export(
                module.eval(),
                (example,),
                str(tmp),
                opset_version=opset,
                dynamo=False,
                input_names=list(input_names),
                output_names=list(output_names),
            )
    except Exception as e:  # noqa: BLE001 - the exporter raises many types; the reason is in the text
        tmp.unlink(missing_ok=True)
        raise BackendError(f'ONNX export of {what} failed: {type(e).__name__}: {str(e)[-400:]}') from None
    publish(tmp, path)
    return path


def export_onnx(net: nn.Module, height: int, width: int, path: Path, opset: int = OPSET) -> Path:
    """A bare net (normalised 1x3xHxW 'image' -> 'logits') as ONNX, as a user's own net file would be."""
    return export_module(net, torch.zeros(1, 3, height, width), path, opset=opset)


def publish(tmp: Path, path: Path) -> None:
    """Move a finished file into the cache: model first, then its digest, each by an atomic rename, so a reader
    sees an old, a new or no entry, and a model whose digest is not there yet is merely rebuilt, never used
    unverified."""
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    tmp_digest = tmp.with_name(tmp.name + '.sha256')
    tmp_digest.write_text(digest + '\n')
    tmp.replace(path)
    tmp_digest.replace(_digest_file(path))


def _digest_file(path: Path) -> Path:
    return path.with_name(path.name + '.sha256')


def cache_entry_ok(path: Path) -> bool:
    """A cached export is used only when its bytes still match the sha256 written beside it at export time
    (a truncated copy, a disk error or a hand edit would otherwise make every start fail)."""
    digest = _digest_file(path)
    if not path.is_file() or not digest.is_file():
        return False
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == digest.read_text().strip()
    except OSError:
        return False


def code_digest() -> str:
    """Hash of the source that defines what a fused graph computes: a code change re-exports cached graphs."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    files = [root / 'graph.py', *sorted((root / 'scoring').glob('*.py')), *sorted((root / 'nets').glob('*.py'))]
    files += [root / 'backends' / 'source.py', root / 'backends' / 'export.py', root / 'backends' / 'onnx_net.py']
    files += [root / 'backends' / 'compose.py', root / 'backends' / 'onnx_file.py']
    for f in files:
        if f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def fused_onnx_for(source: GraphSource, frame_hw: tuple[int, int]) -> Path:
    """Path of the cached fused graph (frame -> labels, score, aux) at one camera size; built on first use."""
    height, width = frame_hw
    key = hashlib.sha256(f'{source.key(frame_hw)}|{OPSET}|{torch.__version__}|{code_digest()}'.encode())
    name = f'{source.model.name}-{source.scorer.name}-{width}x{height}-{key.hexdigest()[:16]}.onnx'
    path = cache_dir() / 'graphs' / name
    if cache_entry_ok(path):
        return path
    if path.exists():
        log.warning('cached graph %s is damaged or unverified: rebuilding it', path)
    if source.model.format == 'onnx':
        from .compose import compose_fused  # noqa: PLC0415 - needs the onnx package

        compose_fused(source, frame_hw, path)
    else:
        graph = source.graph(frame_hw).cpu()
        frame = torch.zeros(1, height, width, 3, dtype=torch.uint8)
        export_module(graph, frame, path, ('frame',), source.output_names)
    check_onnx(path)
    return path


def check_onnx(path: Path) -> None:
    """onnx.checker on the written file (by path, so a graph over 2 GB with external data checks too)."""
    try:
        import onnx
    except ImportError:
        raise BackendError('checking an exported graph needs the onnx package (pip install onnx)') from None
    try:
        onnx.checker.check_model(str(path))
    except Exception as e:  # noqa: BLE001 - the checker raises ValidationError and friends
        raise BackendError(f'{path}: exported graph fails onnx.checker: {type(e).__name__}: {e}') from None
