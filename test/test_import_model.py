"""Bring your own model: ONNX / state dict / TorchScript imports, validated by a forward pass."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from anomaly_seg_ros.backends.export import export_onnx
from anomaly_seg_ros.cli import main as cli_main
from anomaly_seg_ros.config import load_model_config
from anomaly_seg_ros.errors import CheckpointError, ConfigError
from anomaly_seg_ros.importer import ImportOptions, import_model
from anomaly_seg_ros.nets import build_net
from anomaly_seg_ros.pipeline import Pipeline

pytest.importorskip('onnxruntime', reason='onnxruntime not installed')

H, W = 128, 256


class _Wrap(nn.Module):
    """An 'outside' net: our net plus optional extra channels or NaNs, as foreign exports behave."""

    def __init__(self, net: nn.Module, extra: int = 0, nan: bool = False, argmax: bool = False) -> None:
        super().__init__()
        self.net, self.extra, self.nan, self.argmax = net, extra, nan, argmax

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x)
        if self.extra:
            y = torch.cat([y, y[:, : self.extra] * 0.5 - 1.0], dim=1)
        if self.nan:
            y = y * torch.tensor(float('nan'))
        if self.argmax:
            y = y.argmax(dim=1).float()
        return y


@pytest.fixture(scope='module')
def net() -> nn.Module:
    torch.manual_seed(0)
    return build_net('icnet_small', 19, width=8).eval()


def _onnx(tmp_path: Path, module: nn.Module, name: str = 'ext.onnx') -> Path:
    return export_onnx(module, H, W, tmp_path / name)


def _frame(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (200, 300, 3), dtype=np.uint8)


def test_onnx_import_runs_every_softmax_scorer_and_matches_torch(tmp_path: Path, net: nn.Module) -> None:
    out = import_model(_onnx(tmp_path, net), 'onnx', ImportOptions(name='ext'), tmp_path / 'models')
    cfg = load_model_config(out)
    assert cfg.format == 'onnx' and (cfg.input.width, cfg.input.height) == (W, H)  # size read from the file
    onnx_pipe = Pipeline.from_model(out, backend='onnxruntime')
    torch.save(net.state_dict(), tmp_path / 'w.pt')
    own = import_model(
        tmp_path / 'w.pt',
        'torch',
        ImportOptions(name='own', architecture='icnet_small', arch_args={'width': 8}, input_size=(W, H)),
        tmp_path / 'models',
    )
    torch_pipe = Pipeline.from_model(own)
    frame = _frame()
    a, b = onnx_pipe(frame), torch_pipe(frame)
    assert (a.labels == b.labels).mean() > 0.999
    np.testing.assert_allclose(a.score, b.score, atol=1e-4)
    for scorer in ('entropy', 'max_softmax', 'softmax_distance', 'max_logit'):
        r = Pipeline.from_model(out, scorer=scorer, backend='onnxruntime')(frame)
        assert r.score.shape == frame.shape[:2] and np.isfinite(r.score).all()


def test_void_channel_needs_flag_and_is_excluded_from_softmax(tmp_path: Path, net: nn.Module) -> None:
    path = _onnx(tmp_path, _Wrap(net, extra=1), 'void.onnx')
    with pytest.raises(ConfigError, match=r'outputs 20 channels.*19 = 19.*--void-channel'):
        import_model(path, 'onnx', ImportOptions(name='v'), tmp_path / 'm')
    assert not (tmp_path / 'm' / 'v').exists()  # nothing written on failure
    out = import_model(path, 'onnx', ImportOptions(name='v', void_channel=True), tmp_path / 'm')
    plain = import_model(_onnx(tmp_path, net), 'onnx', ImportOptions(name='p'), tmp_path / 'm')
    frame = _frame(1)
    with_void = Pipeline.from_model(out, backend='onnxruntime')(frame)
    without = Pipeline.from_model(plain, backend='onnxruntime')(frame)
    np.testing.assert_array_equal(with_void.labels, without.labels)
    np.testing.assert_allclose(with_void.score, without.score, atol=1e-6)
    void = Pipeline.from_model(out, scorer='void', backend='onnxruntime')(frame)
    assert 0.0 <= void.score.min() and void.score.max() <= 1.0
    with pytest.raises(ConfigError, match="scorer 'void' needs a model with a void output channel"):
        Pipeline.from_model(plain, scorer='void', backend='onnxruntime')


def test_class_count_mismatch_named(tmp_path: Path, net: nn.Module) -> None:
    names = tmp_path / 'classes.txt'
    names.write_text('\n'.join(f'c{i}' for i in range(5)))
    with pytest.raises(ConfigError, match='outputs 19 channels, the class list has 5'):
        import_model(_onnx(tmp_path, net), 'onnx', ImportOptions(name='x', classes=str(names)), tmp_path / 'm')


def test_nan_output_rejected(tmp_path: Path, net: nn.Module) -> None:
    with pytest.raises(ConfigError, match='NaN or inf'):
        import_model(_onnx(tmp_path, _Wrap(net, nan=True)), 'onnx', ImportOptions(name='n'), tmp_path / 'm')


def test_argmax_only_output_rejected(tmp_path: Path, net: nn.Module) -> None:
    with pytest.raises(ConfigError, match='outputs shape .*expected NxKxHxW logits'):
        import_model(_onnx(tmp_path, _Wrap(net, argmax=True)), 'onnx', ImportOptions(name='a'), tmp_path / 'm')


def test_fixed_onnx_size_conflict_named(tmp_path: Path, net: nn.Module) -> None:
    with pytest.raises(ConfigError, match=r'fixed at 256x128, --input-size says 512x256'):
        import_model(_onnx(tmp_path, net), 'onnx', ImportOptions(name='s', input_size=(512, 256)), tmp_path / 'm')


def test_existing_folder_needs_overwrite(tmp_path: Path, net: nn.Module) -> None:
    path = _onnx(tmp_path, net)
    import_model(path, 'onnx', ImportOptions(name='e'), tmp_path / 'm')
    with pytest.raises(ConfigError, match='already exists'):
        import_model(path, 'onnx', ImportOptions(name='e'), tmp_path / 'm')
    import_model(path, 'onnx', ImportOptions(name='e'), tmp_path / 'm', overwrite=True)


def test_torch_state_dict_wrong_architecture_lists_keys(tmp_path: Path, net: nn.Module) -> None:
    torch.save(net.state_dict(), tmp_path / 'w.pt')
    with pytest.raises(CheckpointError, match='shape mismatch'):
        import_model(
            tmp_path / 'w.pt',
            'torch',
            ImportOptions(name='w', architecture='icnet_small', arch_args={'width': 16}, input_size=(W, H)),
            tmp_path / 'm',
        )
    with pytest.raises(ConfigError, match='--torch needs --architecture'):
        import_model(tmp_path / 'w.pt', 'torch', ImportOptions(name='w', input_size=(W, H)), tmp_path / 'm')


def test_torch_import_with_a_module_path_tap(tmp_path: Path, net: nn.Module) -> None:
    torch.save(net.state_dict(), tmp_path / 'w.pt')
    base = {'architecture': 'icnet_small', 'arch_args': {'width': 8}, 'input_size': (W, H)}
    out = import_model(
        tmp_path / 'w.pt', 'torch', ImportOptions(name='t', taps={'features': 'head.0.1'}, **base), tmp_path / 'm'
    )
    assert load_model_config(out).taps == {'features': 'head.0.1'}
    with pytest.raises(ConfigError, match=r"tap 'features': no module 'head\.9' in ICNetSmall"):
        import_model(
            tmp_path / 'w.pt', 'torch', ImportOptions(name='u', taps={'features': 'head.9'}, **base), tmp_path / 'm'
        )
    assert not (tmp_path / 'm' / 'u').exists()
    with pytest.raises(ConfigError, match=r"--tap logits=head\.0\.1: 'logits' is reserved"):
        import_model(tmp_path / 'w.pt', 'torch', ImportOptions(name='r', taps={'logits': 'head.0.1'}, **base), tmp_path)
    with pytest.raises(ConfigError, match='--tap needs --onnx .* or --torch .*, not --torchscript'):
        import_model(
            tmp_path / 'w.pt', 'torchscript', ImportOptions(name='s', input_size=(W, H), taps={'f': 'x'}), tmp_path
        )


def test_torchscript_import(tmp_path: Path, net: nn.Module) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.jit.trace(net, torch.zeros(1, 3, H, W)).save(str(tmp_path / 'n.ts'))
    out = import_model(tmp_path / 'n.ts', 'torchscript', ImportOptions(name='ts', input_size=(W, H)), tmp_path / 'm')
    assert Pipeline.from_model(out)(_frame()).labels.shape == (200, 300)


def test_onnxruntime_backend_exports_torch_models_once(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv('ANOMALY_SEG_CACHE', str(tmp_path / 'cache'))
    cfg = load_model_config(tiny_model)
    frame = np.random.default_rng(2).integers(0, 256, (H, W, 3), dtype=np.uint8)  # the imported model's size
    torch.save(torch.load(cfg.weights, weights_only=True), tmp_path / 'w.pt')
    own = import_model(
        tmp_path / 'w.pt',
        'torch',
        ImportOptions(name='own', architecture='icnet_small', arch_args={'width': 8}, input_size=(W, H)),
        tmp_path / 'm',
    )
    a = Pipeline.from_model(own, backend='onnxruntime')(frame)
    b = Pipeline.from_model(own)(frame)
    np.testing.assert_allclose(a.score, b.score, atol=1e-4)
    (cached,) = (tmp_path / 'cache' / 'graphs').glob('*.onnx')  # one fused graph for the one camera size
    stamp = cached.stat().st_mtime_ns
    Pipeline.from_model(own, backend='onnxruntime')(frame)
    assert list((tmp_path / 'cache' / 'graphs').glob('*.onnx')) == [cached]
    assert cached.stat().st_mtime_ns == stamp  # reused, not exported again


def test_cli_import_model(tmp_path: Path, net: nn.Module, capsys: pytest.CaptureFixture[str]) -> None:
    path = _onnx(tmp_path, _Wrap(net, extra=1))
    rc = cli_main(
        [
            'import-model',
            '--onnx',
            str(path),
            '--name',
            'cli',
            '--void-channel',
            '--scale',
            '1/255',
            '--mean',
            '0.5,0.5,0.5',
            '--std',
            '0.25,0.25,0.25',
            '--channel-order',
            'bgr',
            '--models-dir',
            str(tmp_path / 'm'),
        ]
    )
    assert rc == 0 and 'validated' in capsys.readouterr().out
    cfg = load_model_config(tmp_path / 'm' / 'cli')
    assert cfg.void_channel and cfg.input.channel_order == 'bgr' and cfg.input.mean == (0.5, 0.5, 0.5)
    rc = cli_main(['import-model', '--onnx', str(tmp_path / 'missing.onnx'), '--models-dir', str(tmp_path / 'm')])
    assert rc == 2 and 'missing.onnx: file not found' in capsys.readouterr().err


@pytest.mark.parametrize('value', ['0.5,0.5', '0.5,x,0.5', ''])
def test_cli_rejects_bad_number_lists(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main(['import-model', '--onnx', 'x.onnx', '--mean', value])
    assert exc.value.code == 2
    assert f'expected 3 comma-separated numbers like 0.485,0.456,0.406, got {value!r}' in capsys.readouterr().err
