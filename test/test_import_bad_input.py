"""import-model, the ONNX export cache and the dataset readers on bad input: one clear error naming the file or
argument, nothing written, no traceback."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from anomaly_seg_ros.cli import main as cli_main
from anomaly_seg_ros.errors import ConfigError, DatasetError
from anomaly_seg_ros.importer import ImportOptions, import_model
from anomaly_seg_ros.nets import build_net
from anomaly_seg_ros.pipeline import Pipeline

onnx = pytest.importorskip('onnx', reason='onnx not installed')
pytest.importorskip('onnxruntime', reason='onnxruntime not installed')

H, W = 128, 256


class _Tiny(nn.Module):
    """A cheap per-pixel 'segmentation net': 1x1 conv to 19 channels, so any declared input size exports."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 19, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _export(net: nn.Module, path: Path, shape: tuple[int, int, int, int], dynamic_batch: bool = False) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(
            net.eval(),
            (torch.zeros(*shape),),
            str(path),
            opset_version=17,
            dynamo=False,
            input_names=['image'],
            output_names=['logits'],
            dynamic_axes={'image': {0: 'n'}, 'logits': {0: 'n'}} if dynamic_batch else None,
        )
    return path


def test_fixed_batch_of_4_is_named(tmp_path: Path) -> None:
    src = _export(_Tiny(), tmp_path / 'b4.onnx', (4, 3, H, W))
    with pytest.raises(ConfigError, match='batch dimension is fixed at 4.*re-export with batch 1'):
        import_model(src, 'onnx', ImportOptions(name='b4'), tmp_path / 'models')
    assert not (tmp_path / 'models' / 'b4').exists()


def test_huge_declared_input_is_refused_before_allocating(tmp_path: Path) -> None:
    # the graph is built at a small size, then its declared input is rewritten to 30000x30000
    src = _export(_Tiny(), tmp_path / 'big.onnx', (1, 3, 8, 8))
    model = onnx.load(str(src))
    for vi in (model.graph.input[0], model.graph.output[0]):
        dims = vi.type.tensor_type.shape.dim
        dims[2].dim_value, dims[3].dim_value = 30000, 30000
    onnx.save(model, str(src))
    with pytest.raises(ConfigError, match=r'the ONNX input is 30000x30000; supported: 1\.\.8192 per side'):
        import_model(src, 'onnx', ImportOptions(name='big'), tmp_path / 'models')
    with pytest.raises(ConfigError, match='--input-size is 9000x100'):
        import_model(src, 'torch', ImportOptions(name='x', input_size=(9000, 100)), tmp_path / 'models')


def test_external_data_is_copied_with_the_model(tmp_path: Path) -> None:
    src_dir = tmp_path / 'export'
    src_dir.mkdir()
    plain = _export(_Tiny(), tmp_path / 'plain.onnx', (1, 3, H, W))
    model = onnx.load(str(plain))
    onnx.save_model(
        model, str(src_dir / 'ext.onnx'), save_as_external_data=True, location='ext.weights', size_threshold=0
    )
    assert (src_dir / 'ext.weights').is_file()
    out = import_model(src_dir / 'ext.onnx', 'onnx', ImportOptions(name='ext'), tmp_path / 'models')
    assert (out / 'ext.weights').read_bytes() == (src_dir / 'ext.weights').read_bytes()
    frame = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    direct = Pipeline.from_model(out, backend='onnxruntime')(frame)
    assert direct.labels.shape == (H, W)
    (src_dir / 'ext.weights').unlink()
    with pytest.raises(ConfigError, match="external data file 'ext.weights' is missing"):
        import_model(src_dir / 'ext.onnx', 'onnx', ImportOptions(name='ext2'), tmp_path / 'models')


def test_binary_class_list_is_named(tmp_path: Path) -> None:
    src = _export(_Tiny(), tmp_path / 'm.onnx', (1, 3, H, W))
    classes = tmp_path / 'classes.bin'
    classes.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match=r'--classes: .*classes\.bin is not a UTF-8 text file'):
        import_model(src, 'onnx', ImportOptions(name='c', classes=str(classes)), tmp_path / 'models')
    classes.write_bytes(b'road\x00\x01\nsidewalk\n')
    with pytest.raises(ConfigError, match='control characters'):
        import_model(src, 'onnx', ImportOptions(name='c', classes=str(classes)), tmp_path / 'models')


@pytest.mark.parametrize('width', [-4, 0, 'wide', True])
def test_bad_arch_arg_is_named(tmp_path: Path, width: object) -> None:
    torch.save(build_net('icnet_small', 19, width=8).state_dict(), tmp_path / 'w.pt')
    opts = ImportOptions(name='own', architecture='icnet_small', arch_args={'width': width}, input_size=(W, H))
    with pytest.raises(ConfigError, match=r"architecture 'icnet_small': arch_args width must be an int >= 1"):
        import_model(tmp_path / 'w.pt', 'torch', opts, tmp_path / 'models')
    assert not (tmp_path / 'models' / 'own').exists()


def test_cli_bad_arch_arg_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.save(build_net('icnet_small', 19, width=8).state_dict(), tmp_path / 'w.pt')
    rc = cli_main(
        ['import-model', '--torch', str(tmp_path / 'w.pt'), '--architecture', 'icnet_small', '--arch-arg', 'width=-4',
         '--input-size', f'{W}x{H}', '--name', 'own', '--models-dir', str(tmp_path / 'models')]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and 'width must be an int >= 1, got -4' in err and 'Traceback' not in err


def test_corrupt_cached_export_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('ANOMALY_SEG_CACHE', str(tmp_path / 'cache'))
    torch.save(build_net('icnet_small', 19, width=8).state_dict(), tmp_path / 'w.pt')
    opts = ImportOptions(name='own', architecture='icnet_small', arch_args={'width': 8}, input_size=(W, H))
    own = import_model(tmp_path / 'w.pt', 'torch', opts, tmp_path / 'models')
    frame = np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)
    first = Pipeline.from_model(own, backend='onnxruntime')(frame)
    (cached,) = (tmp_path / 'cache' / 'graphs').glob('*.onnx')
    good = cached.read_bytes()
    cached.write_bytes(good[: len(good) // 2])  # a truncated copy: every start failed on it before
    again = Pipeline.from_model(own, backend='onnxruntime')(frame)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert cached.read_bytes() == good


def test_unreadable_images_folder_names_the_os_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from anomaly_seg_ros.data import readers

    (tmp_path / 'images').mkdir()
    (tmp_path / 'masks').mkdir()
    real = os.scandir

    def deny(path: object) -> object:
        if Path(str(path)).name == 'images':
            raise PermissionError(13, 'Permission denied', str(path))
        return real(path)  # type: ignore[call-overload]

    monkeypatch.setattr(readers.os, 'scandir', deny)
    with pytest.raises(DatasetError, match=r'cannot list .*images.*Permission denied'):
        readers.open_dataset('folder', tmp_path)


def test_hand_written_folder_with_fixed_batch_fails_at_backend_start(tmp_path: Path) -> None:
    import yaml

    from anomaly_seg_ros.errors import BackendError

    folder = tmp_path / 'b4'
    folder.mkdir()
    _export(_Tiny(), folder / 'model.onnx', (4, 3, H, W))
    model_yaml = {'name': 'b4', 'format': 'onnx', 'weights': 'model.onnx', 'input': {'height': H, 'width': W}}
    (folder / 'model.yaml').write_text(yaml.safe_dump(model_yaml))
    with pytest.raises(BackendError, match=r"model\.onnx: the model's batch dimension is fixed at 4"):
        Pipeline.from_model(folder, backend='onnxruntime')


def test_huge_declared_input_never_builds_a_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime

    src = _export(_Tiny(), tmp_path / 'big.onnx', (1, 3, 8, 8))
    model = onnx.load(str(src))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value, dims[3].dim_value = 30000, 30000
    onnx.save(model, str(src))

    def no_session(*args: object, **kwargs: object) -> None:
        raise AssertionError('an ONNX Runtime session was built for a 30000x30000 input')

    monkeypatch.setattr(onnxruntime, 'InferenceSession', no_session)
    with pytest.raises(ConfigError, match='30000x30000; supported: .*32 Mpixel'):
        import_model(src, 'onnx', ImportOptions(name='big'), tmp_path / 'models')


def test_cli_binary_class_list_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _export(_Tiny(), tmp_path / 'm.onnx', (1, 3, H, W))
    classes = tmp_path / 'classes.bin'
    classes.write_bytes(b'\x89PNG\r\n\x1a\n' + bytes(range(256)))
    rc = cli_main(['import-model', '--onnx', str(src), '--classes', str(classes), '--models-dir', str(tmp_path / 'm')])
    err = capsys.readouterr().err
    assert rc == 2 and str(classes) in err and 'Traceback' not in err
    assert not (tmp_path / 'm' / 'm').exists()


def test_class_list_with_a_bom_is_read(tmp_path: Path) -> None:
    from anomaly_seg_ros.importer import read_class_list

    classes = tmp_path / 'classes.txt'
    classes.write_bytes('\ufeffroad\r\nobstacle\r\n'.encode())
    assert read_class_list(str(classes)) == ['road', 'obstacle']


def test_cached_export_without_digest_is_rebuilt_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv('ANOMALY_SEG_CACHE', str(tmp_path / 'cache'))
    torch.save(build_net('icnet_small', 19, width=8).state_dict(), tmp_path / 'w.pt')
    opts = ImportOptions(name='own', architecture='icnet_small', arch_args={'width': 8}, input_size=(W, H))
    own = import_model(tmp_path / 'w.pt', 'torch', opts, tmp_path / 'models')
    Pipeline.from_model(own, backend='onnxruntime')
    (cached,) = (tmp_path / 'cache' / 'graphs').glob('*.onnx')
    digest = cached.with_name(cached.name + '.sha256')
    assert digest.is_file()
    cached.write_bytes(b'garbage')
    with caplog.at_level('WARNING', logger='anomaly_seg_ros.backends.export'):
        Pipeline.from_model(own, backend='onnxruntime')
    assert any('damaged' in r.getMessage() and str(cached) in r.getMessage() for r in caplog.records)
    digest.unlink()  # an entry cached before digests were written cannot be trusted either
    Pipeline.from_model(own, backend='onnxruntime')
    assert digest.is_file() and onnx.load(str(cached)) is not None


def test_concurrent_exports_of_one_cache_entry_do_not_collide(tmp_path: Path) -> None:
    """Exporters writing the same cache entry at once (pipelines built in threads, or two nodes starting together)
    all succeed and leave one valid, verified file; they used to share one temporary path, and torch's exporter
    fails when two threads run it at once."""
    import threading

    from anomaly_seg_ros.backends.export import cache_entry_ok, export_onnx

    target = tmp_path / 'cache' / 'same.onnx'
    errors: list[BaseException] = []
    # built here, one after another: _Tiny() seeds torch's global generator, and nets built in the threads raced
    # on it (seed, seed, draw, draw) into different weights, so the last model and last digest written could be
    # of two different graphs (seen under load on the Jazzy run); the same entry is the same graph
    nets = [_Tiny() for _ in range(4)]

    def work(net: nn.Module) -> None:
        try:
            export_onnx(net, H, W, target)
        except BaseException as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(net,)) for net in nets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    onnx.checker.check_model(str(target))
    assert cache_entry_ok(target)
    assert not list(target.parent.glob('*.tmp.onnx*'))
