from pathlib import Path

import pytest
import yaml

from anomaly_seg_ros.config import NodeConfig, load_model_config, load_node_config, resolve_model_dir
from anomaly_seg_ros.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def _write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def _params(tmp_path: Path, **params: object) -> Path:
    return _write(tmp_path / 'p.yaml', {'anomaly_seg': {'ros__parameters': params}})


def test_shipped_params_file_matches_code_defaults() -> None:
    assert load_node_config(REPO / 'config' / 'default.yaml') == NodeConfig()


def test_every_parameter_is_documented_in_readme() -> None:
    readme = (REPO / 'README.md').read_text()
    for name in NodeConfig.descriptions():
        assert f'`{name}`' in readme, name


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    p = _params(tmp_path, modle='x')
    with pytest.raises(ConfigError, match=r"p\.yaml.*unknown key 'modle'"):
        load_node_config(p)


@pytest.mark.parametrize(
    ('params', 'pattern'),
    [
        ({'heatmap_alpha': 1.5}, "key 'heatmap_alpha': must be in"),
        ({'heatmap_alpha': 'high'}, "key 'heatmap_alpha': expected float, got str"),
        ({'input_qos': 'fast'}, "key 'input_qos': 'fast' is not one of sensor_data, reliable"),
        ({'backend': 'tflite'}, "key 'backend': 'tflite' is not one of"),
        ({'subscribe_compressed': 1}, "key 'subscribe_compressed': expected bool, got int"),
        ({'diagnostics_period': 0}, r"key 'diagnostics_period': must be in \[0.05, 3600\], got 0.0"),
        ({'diagnostics_period': 1e-6}, "key 'diagnostics_period': must be in"),
        ({'device': 'banana'}, "key 'device': 'banana' is not cpu, cuda or cuda:N"),
        ({'device': 'cuda:x'}, "key 'device': 'cuda:x' is not"),
        ({'backend': 'tensorrt', 'device': 'cpu'}, "key 'device': backend tensorrt needs a cuda device"),
        ({'backend': 'onnxruntime', 'device': 'banana'}, "key 'device': 'banana'"),
        ({'max_frame_pixels': 0}, "key 'max_frame_pixels': must be in"),
        ({'max_frame_pixels': 1.5}, "key 'max_frame_pixels': expected int, got float"),
        ({'max_frame_pixels': True}, "key 'max_frame_pixels': expected int, got bool"),
        ({'output_qos': 'fast'}, "key 'output_qos': 'fast' is not one of sensor_data, reliable"),
        ({'stale_after_s': 0}, "key 'stale_after_s': must be in"),
        ({'diagnostics_window_s': float('nan')}, "key 'diagnostics_window_s': must be in"),
        ({'model': ''}, "key 'model': must not be empty"),
        ({'heatmap_alpha': True}, "key 'heatmap_alpha': expected float, got bool"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, params: dict, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        load_node_config(_params(tmp_path, **params))


def test_int_accepted_for_float(tmp_path: Path) -> None:
    cfg = load_node_config(_params(tmp_path, heatmap_alpha=1, diagnostics_period=2, stale_after_s=10))
    assert (cfg.heatmap_alpha, cfg.diagnostics_period, cfg.stale_after_s) == (1.0, 2.0, 10.0)
    assert isinstance(cfg.diagnostics_period, float)


@pytest.mark.parametrize('device', ['cpu', 'cuda', 'cuda:0', 'cuda:12'])
def test_devices_accepted(tmp_path: Path, device: str) -> None:
    assert load_node_config(_params(tmp_path, device=device)).device == device


def test_live_parameters_are_parameters() -> None:
    assert set(NodeConfig.live_parameters()) <= set(NodeConfig.descriptions())
    assert 'model' not in NodeConfig.live_parameters()


def test_params_file_structure_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no section for node 'anomaly_seg'"):
        load_node_config(_write(tmp_path / 'a.yaml', {'other': {'ros__parameters': {}}}))
    with pytest.raises(ConfigError, match='has no ros__parameters'):
        load_node_config(_write(tmp_path / 'b.yaml', {'anomaly_seg': {'model': 'x'}}))
    (tmp_path / 'c.yaml').write_text('anomaly_seg: [unclosed')
    with pytest.raises(ConfigError, match=r'c\.yaml: invalid YAML'):
        load_node_config(tmp_path / 'c.yaml')
    with pytest.raises(ConfigError, match=r'missing\.yaml: file not found'):
        load_node_config(tmp_path / 'missing.yaml')


def test_wildcard_section_accepted(tmp_path: Path) -> None:
    p = _write(tmp_path / 'w.yaml', {'/**': {'ros__parameters': {'scorer': 'max_softmax'}}})
    assert load_node_config(p).scorer == 'max_softmax'


def test_model_yaml_roundtrip(tiny_model: Path) -> None:
    cfg = load_model_config(tiny_model)
    assert cfg.architecture == 'icnet_small' and cfg.num_classes == 19
    assert (cfg.input.height, cfg.input.width) == (64, 128)
    assert cfg.weights == tiny_model / 'model.pt'


def _model_yaml(tmp_path: Path, tiny_model: Path, **changes: object) -> Path:
    data = yaml.safe_load((tiny_model / 'model.yaml').read_text())
    data['weights'] = str(tiny_model / 'model.pt')
    for k, v in changes.items():
        if v is None:
            data.pop(k)
        elif isinstance(v, dict):
            data[k] = {**data.get(k, {}), **v}
        else:
            data[k] = v
    return _write(tmp_path / 'model.yaml', data)


@pytest.mark.parametrize(
    ('changes', 'pattern'),
    [
        ({'archtecture': 'x'}, "unknown key 'archtecture'"),
        ({'name': None}, "key 'name': is required"),
        ({'input': {'height': 4}}, "key 'input.height': must be in 8..8192"),
        ({'input': {'height': 30000, 'width': 30000}}, "key 'input.height': must be in 8..8192, got 30000"),
        ({'input': {'height': 8192, 'width': 8192}}, 'is over 32 Mpixel'),
        ({'input': {'chanel_order': 'rgb'}}, "unknown key 'input.chanel_order'"),
        ({'input': {'channel_order': 'yuv'}}, "key 'input.channel_order': 'yuv' is not one of rgb, bgr"),
        ({'input': {'mean': [0.5, 0.5]}}, "key 'input.mean': must be a list of 3 numbers"),
        ({'input': {'std': [1, 0, 1]}}, "key 'input.std': must be a positive"),
        ({'format': 'caffe'}, "key 'format': 'caffe' is not one of torch, torchscript, onnx"),
        ({'classes': 5}, "key 'classes': expected str or list"),
        ({'weights': 'nope.pt'}, "key 'weights': file .*nope.pt not found"),
    ],
)
def test_bad_model_yaml(tmp_path: Path, tiny_model: Path, changes: dict, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        load_model_config(_model_yaml(tmp_path, tiny_model, **changes))


def test_missing_model_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model 'no_such_model': not a folder"):
        resolve_model_dir('no_such_model')
    with pytest.raises(ConfigError, match='model config not found'):
        load_model_config(tmp_path)
