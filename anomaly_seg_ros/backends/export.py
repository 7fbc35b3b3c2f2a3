"""Export a model folder's net to ONNX, cached by content, for the onnxruntime (and later TensorRT) backends.

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

from ..config import ModelConfig
from ..errors import BackendError

__all__ = ['OPSET', 'cache_dir', 'cache_entry_ok', 'export_onnx', 'exported_onnx_for']

log = logging.getLogger(__name__)
_EXPORT_LOCK = threading.Lock()

OPSET = 17


def cache_dir() -> Path:
    root = os.environ.get('ANOMALY_SEG_CACHE') or os.path.join(
        os.environ.get('XDG_CACHE_HOME', os.path.expanduser('~/.cache')), 'anomaly_seg_ros'
    )
    return Path(root)


def export_onnx(net: nn.Module, height: int, width: int, path: Path, opset: int = OPSET) -> Path:
    """Trace `net` at a fixed 1x3xHxW input (fixed shapes build the fastest TensorRT engines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # unique per writer: two processes exporting the same cache entry at once must not write into one file
    tmp = path.with_name(f'{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp.onnx')
    x = torch.zeros(1, 3, height, width)
    try:
        # torch's exporter keeps global state: two threads exporting at once fail ("in_onnx_export")
        with _EXPORT_LOCK, warnings.catch_warnings():
            warnings.simplefilter('ignore')
            torch.onnx.export(
                net.eval(),
                (x,),
                str(tmp),
                opset_version=opset,
                dynamo=False,
                input_names=['image'],
                output_names=['logits'],
            )
    except Exception as e:  # noqa: BLE001 - the exporter raises many types; the reason is in the text
        tmp.unlink(missing_ok=True)
        raise BackendError(
            f'ONNX export of {type(net).__name__} at {width}x{height} failed: {type(e).__name__}: {str(e)[-400:]}'
        ) from None
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    tmp_digest = tmp.with_name(tmp.name + '.sha256')
    tmp_digest.write_text(digest + '\n')
    # model first, then its digest, each by an atomic rename: a reader sees an old, a new or no entry, and a
    # model whose digest is not there yet is merely re-exported, never used unverified
    tmp.replace(path)
    tmp_digest.replace(_digest_file(path))
    return path


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


def exported_onnx_for(model: ModelConfig, net: nn.Module) -> Path:
    """Path of the cached ONNX export of this model folder; exported on first use."""
    h = hashlib.sha256()
    h.update(model.weights.read_bytes())
    h.update(
        f'{model.architecture}|{sorted(model.arch_args.items())}|{model.input.height}x{model.input.width}|'
        f'{OPSET}|{torch.__version__}'.encode()
    )
    path = cache_dir() / 'onnx' / f'{model.name}-{h.hexdigest()[:16]}.onnx'
    if not cache_entry_ok(path):
        if path.exists():
            log.warning('cached ONNX export %s is damaged or unverified: rebuilding it', path)
        export_onnx(net, model.input.height, model.input.width, path)
    return path
