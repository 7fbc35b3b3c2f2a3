"""`anomaly-seg import-model`: turn a segmentation network from outside into a model folder.

A segmentation ONNX file does not say what its input means, so the options supply it: class list,
input size, channel order, scale, mean/std, and whether a trailing void/background channel follows the
classes. The import validates by a forward pass through the same backend the node will use: output
rank and channel count must match the class list and no value may be NaN; otherwise it fails naming the
mismatch, and nothing is written.

`--tap NAME=TENSOR` declares a feature tap (a tensor name inside an ONNX graph, a module path for --torch);
it is written into model.yaml `taps:`, and a name the net does not have fails the import, naming it.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .config import RESERVED_OUTPUTS, load_model_config
from .defaults import (
    CHANNEL_ORDER,
    DEFAULT_SCORER,
    IMAGENET_MEAN,
    IMAGENET_STD,
    IMPORT_ARCHITECTURE,
    IMPORT_CLASSES,
    MAX_INPUT_PIXELS,
    MAX_INPUT_SIDE,
    PIXEL_SCALE,
)
from .errors import BackendError, ConfigError
from .pipeline import Pipeline

__all__ = ['ImportOptions', 'import_model', 'read_class_list']


@dataclass(frozen=True)
class ImportOptions:
    name: str
    classes: str = IMPORT_CLASSES  # 'cityscapes' or a text file with one class name per line
    input_size: tuple[int, int] | None = None  # (width, height); None: read from a fixed-shape ONNX input
    channel_order: str = CHANNEL_ORDER
    scale: float = PIXEL_SCALE
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    void_channel: bool = False
    scorer: str = DEFAULT_SCORER
    architecture: str = IMPORT_ARCHITECTURE
    arch_args: dict[str, Any] | None = None
    description: str = ''
    #: feature taps written into model.yaml `taps:`: NAME -> ONNX tensor name (or module path for --torch)
    taps: dict[str, str] | None = None


def read_class_list(spec: str) -> list[str] | str:
    if spec == 'cityscapes':
        return 'cityscapes'
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(f"--classes: {spec!r} is neither 'cityscapes' nor a file of class names")
    try:
        text = path.read_text(encoding='utf-8-sig')  # -sig: a BOM from a Windows editor is not a class name
    except UnicodeDecodeError:
        raise ConfigError(f'--classes: {path} is not a UTF-8 text file of class names, one per line') from None
    except OSError as e:
        raise ConfigError(f'--classes: cannot read {path}: {e.strerror or e}') from None
    if any(not line.strip().isprintable() for line in text.splitlines()):
        raise ConfigError(f'--classes: {path} holds control characters; expected class names, one per line')
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if len(names) < 2:
        raise ConfigError(f'{path}: needs at least 2 class names, one per line; found {len(names)}')
    return names


#: bounds on a declared input size, checked before any buffer is allocated


def _check_input_size(size: tuple[int, int], what: str) -> None:
    w, h = size
    if w < 1 or h < 1 or w > MAX_INPUT_SIDE or h > MAX_INPUT_SIDE or w * h > MAX_INPUT_PIXELS:
        raise ConfigError(
            f'{what} is {w}x{h}; supported: 1..{MAX_INPUT_SIDE} per side and at most '
            f'{MAX_INPUT_PIXELS // (1024 * 1024)} Mpixel (nothing was allocated)'
        )


def _inspect_onnx(path: Path) -> tuple[tuple[int, int] | None, tuple[str, ...]]:
    """(fixed WIDTHxHEIGHT or None, external-data files) of an ONNX file, read from its graph alone, so a
    huge declared input or a fixed batch is refused before a session or a frame is built."""
    from .backends.onnx_file import fixed_batch_error, read_onnx_file_info

    try:
        info = read_onnx_file_info(path)
    except BackendError as e:
        raise ConfigError(str(e)) from None
    shape = info.input_shape
    if len(info.input_names) != 1:
        raise ConfigError(f'{path}: expected one input (the image), found {list(info.input_names)}')
    if len(shape) != 4:
        raise ConfigError(f'{path}: input must be NCHW (rank 4), found shape {list(shape)}')
    if isinstance(shape[1], int) and shape[1] != 3:
        raise ConfigError(f'{path}: input must have 3 channels, found shape {list(shape)}')
    batch_error = fixed_batch_error(path, shape)
    if batch_error:
        raise ConfigError(batch_error)
    root = path.parent.resolve()
    for loc in info.external_data:
        target = (path.parent / loc).resolve()
        if root not in target.parents:
            raise ConfigError(f'{path}: external data {loc!r} lies outside the model folder; refusing to copy it')
        if not target.is_file():
            raise ConfigError(f'{path}: external data file {loc!r} is missing (expected {target})')
    h, w = shape[2], shape[3]
    if not (isinstance(h, int) and isinstance(w, int)):
        return None, info.external_data
    _check_input_size((w, h), f'{path}: the ONNX input')
    return (w, h), info.external_data


def _check_arch_args(opts: ImportOptions) -> None:
    """Build the registered net once, so a bad --arch-arg fails naming it before anything is copied."""
    from .nets import build_net

    classes = read_class_list(opts.classes)
    num_outputs = (19 if classes == 'cityscapes' else len(classes)) + int(opts.void_channel)
    try:
        build_net(opts.architecture, num_outputs, **dict(opts.arch_args or {}))
    except ConfigError as e:
        raise ConfigError(f'--arch-arg: {e}') from None


def _check_taps(source: Path, fmt: str, taps: dict[str, str]) -> None:
    """--tap NAME=TENSOR: a valid name, and for an ONNX file a tensor the graph has (read from the graph alone)."""
    if taps and fmt == 'torchscript':
        raise ConfigError('--tap needs --onnx (tensor names) or --torch (module paths), not --torchscript')
    for name, where in taps.items():
        if not re.fullmatch(r'[A-Za-z_][A-Za-z0-9_]*', name):
            raise ConfigError(f'--tap {name}={where}: the tap name must be an identifier (letters, digits, _)')
        if name in RESERVED_OUTPUTS:
            raise ConfigError(f'--tap {name}={where}: {name!r} is reserved ({", ".join(RESERVED_OUTPUTS)})')
        if not where:
            raise ConfigError(f'--tap {name}=: give the tensor name (or module path) after the =')
    if taps and fmt == 'onnx':
        from .backends.compose import expose_taps, load_graph

        try:
            expose_taps(load_graph(source), taps, source)
        except BackendError as e:
            raise ConfigError(str(e)) from None


def import_model(source: Path, fmt: str, opts: ImportOptions, models_dir: Path, overwrite: bool = False) -> Path:
    """Validate `source` (an .onnx, state-dict .pt or TorchScript file) and write models_dir/NAME/."""
    if not source.is_file():
        raise ConfigError(f'{source}: file not found')
    if not opts.name or '/' in opts.name or opts.name.startswith('.'):
        raise ConfigError(f'--name: {opts.name!r} is not a valid folder name')
    out = models_dir / opts.name
    if out.exists() and not overwrite:
        raise ConfigError(f'{out} already exists (use --overwrite to replace it)')
    size = opts.input_size
    external: tuple[str, ...] = ()
    if fmt == 'onnx':
        fixed, external = _inspect_onnx(source)
        if size is None:
            size = fixed
        elif fixed is not None and fixed != size:
            raise ConfigError(
                f'{source}: the ONNX input is fixed at {fixed[0]}x{fixed[1]}, --input-size says {size[0]}x{size[1]}'
            )
    taps = dict(opts.taps or {})
    _check_taps(source, fmt, taps)
    if size is None:
        raise ConfigError(f'{source}: input size is not fixed in the file; give --input-size WIDTHxHEIGHT')
    _check_input_size(size, '--input-size')
    if fmt == 'torch' and opts.architecture == 'external':
        raise ConfigError('--torch needs --architecture (a registered net, e.g. icnet_small)')
    if fmt == 'torch':
        _check_arch_args(opts)
    weights_name = {'onnx': 'model.onnx', 'torch': 'model.pt', 'torchscript': 'model.ts'}[fmt]
    model_yaml = {
        'name': opts.name,
        'description': opts.description or f'imported from {source.name} by anomaly-seg import-model',
        'architecture': opts.architecture,
        'arch_args': dict(opts.arch_args or {}),
        'format': fmt,
        'weights': weights_name,
        'classes': read_class_list(opts.classes),
        'void_channel': opts.void_channel,
        'input': {
            'height': size[1],
            'width': size[0],
            'channel_order': opts.channel_order,
            'scale': opts.scale,
            'mean': list(opts.mean),
            'std': list(opts.std),
        },
        'scorer': opts.scorer,
    }
    if taps:
        model_yaml['taps'] = taps
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=f'.{opts.name}-') as tmp:
        staging = Path(tmp) / opts.name
        staging.mkdir()
        shutil.copyfile(source, staging / weights_name)
        for rel in external:  # weights beside the graph (every model over 2 GB), at the same relative places
            dst = staging / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source.parent / rel, dst)
        with open(staging / 'model.yaml', 'w', encoding='utf-8') as f:
            yaml.safe_dump(model_yaml, f, sort_keys=False)
        _validate(staging, fmt)
        if out.exists():
            shutil.rmtree(out)
        staging.replace(out)
    return out


def _validate(folder: Path, fmt: str) -> None:
    """Probe the net's outputs on a normalised random frame, then run the full path the node runs once, through
    the backend it would use (the fused graph in ONNX Runtime for an ONNX file); raise naming any mismatch."""
    import torch

    from .backends import GraphSource
    from .graph import FrameToInput
    from .scoring import build_scorer

    cfg = load_model_config(folder)
    net = GraphSource(cfg, build_scorer(cfg.scorer, cfg)).named_net()
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (cfg.input.height, cfg.input.width, 3), dtype=np.uint8)
    with torch.inference_mode():
        x = FrameToInput(cfg, frame.shape[:2])(torch.from_numpy(frame)[None])
        logits = net(x)['logits']
    if logits.ndim != 4:
        raise ConfigError(
            f'{folder.name}: the net outputs shape {tuple(logits.shape)}; expected NxKxHxW logits '
            f'(a net that outputs class ids cannot be scored)'
        )
    if logits.shape[1] != cfg.num_outputs:
        hint = ''
        if logits.shape[1] == cfg.num_classes + 1 and not cfg.void_channel:
            hint = ' (one extra channel: pass --void-channel if it is void/background)'
        raise ConfigError(
            f'{folder.name}: the net outputs {logits.shape[1]} channels, the class list has '
            f'{cfg.num_classes}{" + void" if cfg.void_channel else ""} = {cfg.num_outputs}{hint}'
        )
    if not bool(torch.isfinite(logits.float()).all()):
        raise ConfigError(f'{folder.name}: the forward pass produced NaN or inf logits')
    backend = 'onnxruntime' if fmt == 'onnx' else 'torch'
    Pipeline.from_model(folder, backend=backend)(frame)  # the full path the node runs, scorer included
