"""Typed configuration: a model folder's model.yaml and the node's parameters, validated at load.

Every error names the key and the file (or parameter source) it came from, because the person reading it is
on a test vehicle looking at a launch log, not at this code.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .classes import CITYSCAPES_CLASSES
from .defaults import IMAGENET_MEAN, IMAGENET_STD, MAX_INPUT_PIXELS, MAX_INPUT_SIDE, PIXEL_SCALE
from .errors import ConfigError

__all__ = [
    'InputSpec',
    'MAX_FRAME_PIXELS',
    'ModelConfig',
    'NodeConfig',
    'PARAMETER_RANGES',
    'PACKAGE_ROOT',
    'default_models_dir',
    'default_params_file',
    'shipped_config_file',
    'load_model_config',
    'load_node_config',
    'load_yaml',
    'resolve_model_dir',
]

PACKAGE_ROOT = Path(__file__).resolve().parent


def _data_search_path(sub: str) -> tuple[Path, ...]:
    """models/ and config/ sit next to the package in a source checkout; pip and colcon put them under share/."""
    roots = [PACKAGE_ROOT.parent / sub, Path(sys.prefix) / 'share' / 'anomaly_seg_ros' / sub]
    # colcon: <prefix>/lib/pythonX.Y/site-packages/anomaly_seg_ros -> <prefix>/share/anomaly_seg_ros
    if len(PACKAGE_ROOT.parents) > 3:
        roots.append(PACKAGE_ROOT.parents[3] / 'share' / 'anomaly_seg_ros' / sub)
    return tuple(dict.fromkeys(roots))


_MODEL_SEARCH = _data_search_path('models')


def default_models_dir() -> Path:
    """Where `import-model` writes by default: the first models/ folder of the search path."""
    return _MODEL_SEARCH[0]


def shipped_config_file(name: str) -> Path:
    """A file of the package's config/ folder, wherever the package was installed from."""
    for root in _data_search_path('config'):
        if (root / name).is_file():
            return root / name
    raise ConfigError(f'config/{name} not found under {", ".join(map(str, _data_search_path("config")))}')


def default_params_file() -> Path:
    """The shipped config/default.yaml."""
    return shipped_config_file('default.yaml')


def load_yaml(path: Path) -> Any:
    """Read YAML safely; a missing file or a syntax error raises ConfigError naming the file."""
    try:
        with open(path, encoding='utf-8') as f:
            return yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f'{path}: file not found') from None
    except OSError as e:
        raise ConfigError(f'{path}: cannot read: {e.strerror}') from None
    except yaml.YAMLError as e:
        raise ConfigError(f'{path}: invalid YAML: {e}') from None


class _Reader:
    """Pops typed values from a mapping, so what is left at the end is exactly the unknown keys."""

    def __init__(self, data: Any, source: str, prefix: str = '') -> None:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f'{source}: {prefix or "top level"} must be a mapping, got {type(data).__name__}')
        self.data = dict(data)
        self.source = source
        self.prefix = prefix

    def key(self, name: str) -> str:
        return f'{self.prefix}{name}'

    def fail(self, name: str, why: str) -> ConfigError:
        return ConfigError(f'{self.source}: key {self.key(name)!r}: {why}')

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = dataclasses.MISSING) -> Any:
        if name not in self.data:
            if default is dataclasses.MISSING:
                raise self.fail(name, 'is required')
            return default
        value = self.data.pop(name)
        # bool is an int subclass; a YAML `true` where a number is wanted is a mistake, not a 1.
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            raise self.fail(name, f'expected {_kind_name(kinds)}, got bool {value!r}')
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kinds):
            raise self.fail(name, f'expected {_kind_name(kinds)}, got {type(value).__name__} {value!r}')
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: Any = dataclasses.MISSING) -> str:
        value = self.get(name, str, default)
        if value not in choices:
            raise self.fail(name, f'{value!r} is not one of {", ".join(choices)}')
        return str(value)

    def finish(self) -> None:
        if self.data:
            unknown = ', '.join(repr(self.key(k)) for k in sorted(self.data))
            raise ConfigError(f'{self.source}: unknown key {unknown}')


def _kind_name(kinds: tuple[type, ...]) -> str:
    return ' or '.join(k.__name__ for k in kinds)


def _positive(r: _Reader, name: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise r.fail(name, f'must be a positive finite number, got {value!r}')


@dataclass(frozen=True)
class InputSpec:
    """What the network expects: the input contract travels with the weights."""

    height: int
    width: int
    channel_order: str = 'rgb'  # 'rgb' | 'bgr'
    scale: float = PIXEL_SCALE  # multiply uint8 by this before mean/std
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


@dataclass(frozen=True)
class ModelConfig:
    """Contents of models/NAME/model.yaml, with paths resolved against the model folder."""

    name: str
    directory: Path
    architecture: str  # registry name for format torch; free text (e.g. 'external') for onnx/torchscript
    format: str  # 'torch' (state dict of a registered architecture) | 'torchscript' | 'onnx'
    weights: Path
    classes: tuple[str, ...]
    input: InputSpec
    scorer: str
    arch_args: dict[str, Any] = field(default_factory=dict)
    description: str = ''
    #: the net outputs one more channel after the classes: void/background (several public Cityscapes nets)
    void_channel: bool = False
    #: named feature taps besides `logits`: a module path (format torch) or a tensor name (format onnx)
    taps: dict[str, str] = field(default_factory=dict)
    #: per-scorer entries: {NAME: {'params': {...}, 'artefacts': {KEY: FILE}}}, FILE relative to the folder
    scorers: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: obstacle stage files beside model.yaml: {'meta': FILE} (the meta classifier of `anomaly-seg fit meta`)
    obstacles: dict[str, str] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def num_outputs(self) -> int:
        return self.num_classes + int(self.void_channel)


MODEL_FORMATS = ('torch', 'torchscript', 'onnx')


def load_model_config(path: str | Path) -> ModelConfig:
    """Load and validate model.yaml; `path` is the file or the folder holding it."""
    path = Path(path)
    if path.is_dir():
        path = path / 'model.yaml'
    if not path.exists():
        raise ConfigError(f'{path}: model config not found')
    r = _Reader(load_yaml(path), str(path))
    name = r.get('name', str)
    architecture = r.get('architecture', str, 'external')
    fmt = r.choice('format', MODEL_FORMATS, 'torch')
    weights = path.parent / r.get('weights', str)
    classes_raw = r.get('classes', (str, list), 'cityscapes')
    if classes_raw == 'cityscapes':
        classes = CITYSCAPES_CLASSES
    elif isinstance(classes_raw, list) and classes_raw and all(isinstance(c, str) for c in classes_raw):
        classes = tuple(classes_raw)
    else:
        raise r.fail('classes', f"must be 'cityscapes' or a non-empty list of names, got {classes_raw!r}")
    scorer = r.get('scorer', str, 'entropy')
    arch_args = r.get('arch_args', dict, {})
    description = r.get('description', str, '')
    void_channel = r.get('void_channel', bool, False)
    taps = _taps(r, fmt)
    scorers = _scorer_entries(r)
    obstacles = _obstacles(r)
    ri = _Reader(r.get('input', dict), str(path), 'input.')
    height = ri.get('height', int)
    width = ri.get('width', int)
    for k, v in (('height', height), ('width', width)):
        if v < 8 or v > MAX_INPUT_SIDE:
            raise ri.fail(k, f'must be in 8..{MAX_INPUT_SIDE}, got {v}')
    if height * width > MAX_INPUT_PIXELS:
        raise ri.fail('height', f'{width}x{height} is over {MAX_INPUT_PIXELS // 2**20} Mpixel (nothing was allocated)')
    channel_order = ri.choice('channel_order', ('rgb', 'bgr'), 'rgb')
    scale = ri.get('scale', float, PIXEL_SCALE)
    _positive(ri, 'scale', scale)
    mean = _triple(ri, 'mean', IMAGENET_MEAN)
    std = _triple(ri, 'std', IMAGENET_STD)
    for s in std:
        _positive(ri, 'std', s)
    ri.finish()
    r.finish()
    if not weights.exists():
        raise ConfigError(f"{path}: key 'weights': file {weights} not found")
    return ModelConfig(
        name=name,
        directory=path.parent,
        architecture=architecture,
        format=fmt,
        weights=weights,
        classes=classes,
        input=InputSpec(height, width, channel_order, scale, mean, std),
        scorer=scorer,
        arch_args=arch_args,
        description=description,
        void_channel=void_channel,
        taps=taps,
        scorers=scorers,
        obstacles=obstacles,
    )


#: output names a tap may not take: the net's logits and the graph's own input and outputs
RESERVED_OUTPUTS = ('logits', 'image', 'frame', 'labels', 'score')
_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')


def _taps(r: _Reader, fmt: str) -> dict[str, str]:
    raw = r.get('taps', dict, {})
    taps: dict[str, str] = {}
    for name, where in raw.items():
        key = f'taps.{name}'
        if not isinstance(name, str) or not _NAME.match(name):
            raise r.fail('taps', f'tap name {name!r} must be an identifier (letters, digits, _)')
        if name in RESERVED_OUTPUTS:
            raise r.fail(key, f"{name!r} is reserved ({', '.join(RESERVED_OUTPUTS)} are the graph's own names)")
        if not isinstance(where, str) or not where:
            what = 'a tensor name inside the ONNX graph' if fmt == 'onnx' else 'a module path such as head.0.1'
            raise r.fail(key, f'must be {what}, got {where!r}')
        taps[name] = where
    if taps and fmt == 'torchscript':
        raise r.fail('taps', 'feature taps need format torch (module paths) or onnx (tensor names), not torchscript')
    return taps


def _scorer_entries(r: _Reader) -> dict[str, dict[str, dict[str, Any]]]:
    raw = r.get('scorers', dict, {})
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, entry in raw.items():
        key = f'scorers.{name}'
        if not isinstance(entry, dict):
            raise r.fail(key, f'must be a mapping with params and/or artefacts, got {entry!r}')
        unknown = sorted(set(entry) - {'params', 'artefacts'})
        if unknown:
            raise r.fail(key, f'unknown key(s) {", ".join(map(str, unknown))}; allowed: params, artefacts')
        params = entry.get('params', {}) or {}
        artefacts = entry.get('artefacts', {}) or {}
        if not isinstance(params, dict):
            raise r.fail(f'{key}.params', f'must be a mapping, got {params!r}')
        if not isinstance(artefacts, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in artefacts.items()
        ):
            raise r.fail(f'{key}.artefacts', f'must map artefact keys to file names, got {artefacts!r}')
        out[str(name)] = {'params': dict(params), 'artefacts': dict(artefacts)}
    return out


def _obstacles(r: _Reader) -> dict[str, str]:
    raw = r.get('obstacles', dict, {})
    unknown = sorted(set(map(str, raw)) - {'meta'})
    if unknown:
        raise r.fail('obstacles', f'unknown key(s) {", ".join(unknown)}; allowed: meta')
    meta = raw.get('meta')
    if meta is not None and (not isinstance(meta, str) or not meta):
        raise r.fail('obstacles.meta', f'must be a file name beside model.yaml, got {meta!r}')
    return {} if meta is None else {'meta': meta}


def _triple(r: _Reader, name: str, default: tuple[float, float, float]) -> tuple[float, float, float]:
    value = r.get(name, list, list(default))
    if len(value) != 3 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise r.fail(name, f'must be a list of 3 numbers, got {value!r}')
    return (float(value[0]), float(value[1]), float(value[2]))


def resolve_model_dir(model: str) -> Path:
    """A model parameter is a folder path or the name of a folder under models/."""
    candidate = Path(model).expanduser()
    if candidate.is_dir() or candidate.suffix in ('.yaml', '.yml'):
        return candidate if candidate.is_dir() else candidate.parent
    for root in _MODEL_SEARCH:
        if (root / model).is_dir():
            return root / model
    searched = ', '.join(str(r) for r in _MODEL_SEARCH)
    raise ConfigError(f'model {model!r}: not a folder, and no models/{model} under {searched}')


QOS_CHOICES = ('sensor_data', 'reliable')
BACKENDS = ('auto', 'torch', 'onnxruntime', 'tensorrt')
PRECISIONS = ('auto', 'fp32', 'fp16', 'int8')
_DEVICE = re.compile(r'^(cpu|cuda(:[0-9]+)?)$')
#: default upper bound of an incoming frame, width*height: 4096x3072 (12.6 MP), above any automotive camera here
MAX_FRAME_PIXELS = 4096 * 3072
#: [low, high] of the numeric node parameters: the params-file check and the node's ParameterDescriptors share them
PARAMETER_RANGES: dict[str, tuple[float, float]] = {
    'heatmap_alpha': (0.0, 1.0),
    'diagnostics_period': (0.05, 3600.0),
    'log_throttle_s': (0.0, 3600.0),
    'diagnostics_window_s': (0.1, 3600.0),
    'stale_after_s': (0.1, 3600.0),
    'max_frame_pixels': (1, 1 << 31),
}


@dataclass(frozen=True)
class NodeConfig:
    """The node's parameters. Field defaults are the documented defaults; config/default.yaml repeats them."""

    model: str = 'default'
    scorer: str = ''  # empty: the scorer named in model.yaml
    backend: str = 'auto'
    device: str = 'cpu'
    precision: str = 'auto'
    cuda_graphs: bool = False
    input_qos: str = 'sensor_data'
    subscribe_compressed: bool = False
    publish_color: bool = True
    publish_heatmap: bool = True
    heatmap_alpha: float = 0.6
    diagnostics_period: float = 1.0
    log_throttle_s: float = 5.0
    diagnostics_window_s: float = 5.0
    stale_after_s: float = 3.0
    max_frame_pixels: int = MAX_FRAME_PIXELS
    output_qos: str = 'reliable'
    tune_malloc: bool = True

    @staticmethod
    def descriptions() -> dict[str, str]:
        """One line per parameter; the node uses these as ParameterDescriptor text and README repeats them."""
        return {
            'model': 'model folder path, or the name of a folder under models/ (default: the embedded model)',
            'scorer': 'anomaly scorer name; empty uses the one in model.yaml',
            'backend': f'inference backend: {", ".join(BACKENDS)} (auto: the fastest one available here)',
            'device': "where inference runs: 'cpu', 'cuda', 'cuda:N' (tensorrt needs cuda)",
            'precision': f'{", ".join(PRECISIONS)}: auto is fp16 on TensorRT and CUDA torch, fp32 elsewhere',
            'cuda_graphs': 'torch backend on cuda: capture and replay a CUDA graph per camera size',
            'input_qos': "subscription QoS: 'sensor_data' (best effort, keep last 1) or 'reliable' (keep last 1)",
            'subscribe_compressed': 'also subscribe image/compressed (sensor_msgs/CompressedImage, jpeg/png)',
            'publish_color': 'publish ~/segmentation/color (rgb8)',
            'publish_heatmap': 'publish ~/anomaly_heatmap (bgr8 overlay)',
            'heatmap_alpha': 'weight of the heatmap colour over the camera image, in [0, 1]',
            'diagnostics_period': 'seconds between /diagnostics messages, 0.05..3600',
            'log_throttle_s': 'at most one warning per this many seconds for dropped frames (>= 0)',
            'diagnostics_window_s': 'rate, drops and failures in /diagnostics cover the last this many seconds (> 0)',
            'stale_after_s': 'diagnostics level STALE when no frame arrived for this many seconds (> 0)',
            'max_frame_pixels': 'larger frames (width*height, read from the header before decoding) are dropped',
            'output_qos': "output QoS: 'reliable' (keep last 2) or 'sensor_data' (best effort, keep last 2)",
            'tune_malloc': 'raise glibc malloc thresholds so frame-sized buffers are reused, not re-mapped per frame',
        }

    @staticmethod
    def live_parameters() -> tuple[str, ...]:
        """Parameters a running node applies on `ros2 param set`; every other one needs a restart (read-only)."""
        return (
            'publish_color',
            'publish_heatmap',
            'heatmap_alpha',
            'log_throttle_s',
            'diagnostics_window_s',
            'stale_after_s',
            'max_frame_pixels',
        )

    @classmethod
    def from_dict(cls, data: Any, source: str) -> NodeConfig:
        r = _Reader(data, source)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            kind: type | tuple[type, ...] = {'float': float, 'int': int, 'str': str, 'bool': bool}.get(str(f.type), str)
            values[f.name] = r.get(f.name, kind, f.default)
        r.finish()
        if values['backend'] not in BACKENDS:
            raise r.fail('backend', f'{values["backend"]!r} is not one of {", ".join(BACKENDS)}')
        if values['precision'] not in PRECISIONS:
            raise r.fail('precision', f'{values["precision"]!r} is not one of {", ".join(PRECISIONS)}')
        if values['input_qos'] not in QOS_CHOICES:
            raise r.fail('input_qos', f'{values["input_qos"]!r} is not one of {", ".join(QOS_CHOICES)}')
        if values['output_qos'] not in QOS_CHOICES:
            raise r.fail('output_qos', f'{values["output_qos"]!r} is not one of {", ".join(QOS_CHOICES)}')
        if not _DEVICE.match(values['device']):
            raise r.fail('device', f'{values["device"]!r} is not cpu, cuda or cuda:N')
        if values['backend'] == 'tensorrt' and not values['device'].startswith('cuda'):
            raise r.fail('device', f'backend tensorrt needs a cuda device, got {values["device"]!r}')
        for name, (low, high) in PARAMETER_RANGES.items():
            value = values[name]
            if not (low <= value <= high and math.isfinite(value)):
                raise r.fail(name, f'must be in [{low:g}, {high:g}], got {value!r}')
        if not values['model']:
            raise r.fail('model', 'must not be empty')
        return cls(**values)


def load_node_config(path: str | Path, node_name: str = 'anomaly_seg') -> NodeConfig:
    """Read a ROS 2 params file into a NodeConfig: the section `/**/node`, `node`, `/node` or `/**`, in that order."""
    path = Path(path)
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f'{path}: expected a ROS 2 params file mapping node names to ros__parameters')
    section = None
    for key in (f'/**/{node_name}', node_name, f'/{node_name}', '/**'):
        if key in data:
            section = data[key]
            break
    if section is None:
        raise ConfigError(f'{path}: no section for node {node_name!r} (or /**); found {", ".join(map(str, data))}')
    if not isinstance(section, dict) or 'ros__parameters' not in section:
        raise ConfigError(f'{path}: section {node_name!r} has no ros__parameters')
    return NodeConfig.from_dict(section['ros__parameters'], f'{path} [{node_name}.ros__parameters]')
