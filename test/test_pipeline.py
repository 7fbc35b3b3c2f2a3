import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from anomaly_seg_ros.checkpoint import load_state_dict_strict
from anomaly_seg_ros.config import load_model_config
from anomaly_seg_ros.errors import BackendError, CheckpointError, ConfigError
from anomaly_seg_ros.nets import build_net
from anomaly_seg_ros.pipeline import STAGES, Pipeline
from anomaly_seg_ros.scoring import SCORERS, NormalizedEntropy, Scorer, build_scorer, register_scorer


@pytest.fixture(scope='module')
def pipe(tiny_model: Path) -> Pipeline:
    return Pipeline.from_model(tiny_model, backend='torch')


@pytest.mark.parametrize('hw', [(64, 128), (100, 160), (37, 300)])
def test_result_at_input_resolution(pipe: Pipeline, hw: tuple[int, int]) -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (*hw, 3), dtype=np.uint8)
    r = pipe(rgb)
    assert r.labels.shape == hw and r.labels.dtype == np.uint8 and r.labels.max() < 19
    assert r.score.shape == hw and r.score.dtype == np.float32
    lo, hi = r.score_range
    assert r.score.min() >= lo - 1e-6 and r.score.max() <= hi + 1e-6
    assert set(r.timings) == {*STAGES, 'total'} and all(v >= 0 for v in r.timings.values())


def test_pipeline_matches_net_at_native_size(pipe: Pipeline, tiny_model: Path) -> None:
    """No hidden second path: labels equal argmax of the bare net on the same normalisation."""
    cfg = load_model_config(tiny_model)
    net = build_net(cfg.architecture, 19, **cfg.arch_args).eval()
    load_state_dict_strict(net, cfg.weights)
    rgb = np.random.default_rng(1).integers(0, 255, (64, 128, 3), dtype=np.uint8)
    x = (rgb.astype(np.float32) / 255 - np.array(cfg.input.mean, np.float32)) / np.array(cfg.input.std, np.float32)
    with torch.inference_mode():
        logits = net(torch.from_numpy(x.transpose(2, 0, 1).copy())[None])
    np.testing.assert_array_equal(pipe(rgb).labels, logits[0].argmax(0).numpy())


def test_scorer_override(tiny_model: Path) -> None:
    assert Pipeline.from_model(tiny_model, scorer='max_softmax').scorer.name == 'max_softmax'
    with pytest.raises(ConfigError, match='unknown scorer'):
        Pipeline.from_model(tiny_model, scorer='no_such_scorer')


@pytest.mark.parametrize(
    ('img', 'pattern'),
    [
        (np.zeros((10, 10), np.uint8), r'HxWx3 uint8 RGB, got shape \(10, 10\)'),
        (np.zeros((10, 10, 3), np.float32), 'dtype float32'),
        (np.zeros((0, 10, 3), np.uint8), 'empty'),
    ],
)
def test_bad_image_named(pipe: Pipeline, img: np.ndarray, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        pipe(img)


def test_checkpoint_mismatch_lists_keys(tmp_path: Path, tiny_model: Path) -> None:
    state = torch.load(tiny_model / 'model.pt', weights_only=True)
    state['extra.weight'] = torch.zeros(1)
    del state['head.1.bias']
    torch.save(state, tmp_path / 'bad.pt')
    net = build_net('icnet_small', 19, width=8)
    with pytest.raises(CheckpointError, match=r'missing keys \[head\.1\.bias\]; unexpected keys \[extra\.weight\]'):
        load_state_dict_strict(net, tmp_path / 'bad.pt')


def test_checkpoint_wrong_width_and_garbage(tmp_path: Path, tiny_model: Path) -> None:
    with pytest.raises(CheckpointError, match='shape mismatch'):
        load_state_dict_strict(build_net('icnet_small', 19, width=16), tiny_model / 'model.pt')
    (tmp_path / 'junk.pt').write_bytes(b'not a checkpoint')
    with pytest.raises(CheckpointError, match='junk.pt: cannot load weights'):
        load_state_dict_strict(build_net('icnet_small', 19, width=8), tmp_path / 'junk.pt')
    with pytest.raises(CheckpointError, match='weights file not found'):
        load_state_dict_strict(build_net('icnet_small', 19, width=8), tmp_path / 'none.pt')


def test_checkpoint_refuses_pickled_code(tmp_path: Path) -> None:
    """weights_only=True: a file that would run code on load is rejected, not executed."""

    class Evil:
        def __reduce__(self) -> tuple:
            return (print, ('executed',))

    torch.save({'x': Evil()}, tmp_path / 'evil.pt')
    with pytest.raises(CheckpointError, match='cannot load weights'):
        load_state_dict_strict(build_net('icnet_small', 19, width=8), tmp_path / 'evil.pt')


class _Coarse(Scorer):
    """Entropy pooled 2x: a score map of another size than the logits."""

    name = '_coarse_test'

    def __init__(self, num_classes: int, void_channel: bool = False) -> None:
        super().__init__(num_classes, void_channel)
        self.inner = NormalizedEntropy(num_classes, void_channel)

    def forward(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.avg_pool2d(self.inner(outputs)[:, None], 2)[:, 0]


@pytest.mark.parametrize('backend', ['torch', 'onnxruntime'])
def test_labels_and_score_resized_independently(
    tiny_model: Path, backend: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A scorer whose map has another size than the logits: labels and score both come back at the frame size."""
    monkeypatch.setenv('ANOMALY_SEG_CACHE', str(tmp_path))
    register_scorer(_Coarse)
    try:
        p = Pipeline.from_model(tiny_model, scorer='_coarse_test', backend=backend)
        r = p(np.zeros((100, 150, 3), np.uint8))
        assert r.score.shape == (100, 150) and r.labels.shape == (100, 150)
        r = p(np.zeros((p.model.input.height, p.model.input.width, 3), np.uint8))
        assert r.labels.shape == (p.model.input.height, p.model.input.width) == r.score.shape
    finally:
        SCORERS.pop('_coarse_test')


def _tapped_folder(tiny_model: Path, tmp_path: Path, taps: dict[str, str]) -> Path:
    folder = tmp_path / 'tapped'
    shutil.copytree(tiny_model, folder)
    cfg = yaml.safe_load((folder / 'model.yaml').read_text())
    cfg['taps'] = taps
    (folder / 'model.yaml').write_text(yaml.safe_dump(cfg))
    return folder


def test_tap_is_taken_before_relu(tiny_model: Path, tmp_path: Path) -> None:
    """The head's BatchNorm output (before its ReLU) comes out under the tap name, negatives intact, and the
    logits are unchanged by tapping (no in-place ReLU may overwrite the tapped tensor)."""
    from anomaly_seg_ros.backends import GraphSource

    cfg = load_model_config(_tapped_folder(tiny_model, tmp_path, {'features': 'head.0.1'}))
    source = GraphSource(cfg, build_scorer('entropy', cfg))
    net = source.named_net()
    x = torch.randn(1, 3, 64, 128, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        out = net(x)
        plain = build_net('icnet_small', 19, width=8).eval()
        load_state_dict_strict(plain, cfg.weights)
        feats: list[torch.Tensor] = []
        plain.head[0][1].register_forward_hook(lambda m, i, o: feats.append(o.clone()))
        ref = plain(x)
    assert set(out) == {'logits', 'features'}
    torch.testing.assert_close(out['logits'], ref)
    torch.testing.assert_close(out['features'], feats[0])
    assert float(out['features'].min()) < 0  # pre-ReLU: an in-place ReLU would have zeroed these


def test_unknown_tap_named_at_start(tiny_model: Path, tmp_path: Path) -> None:
    folder = _tapped_folder(tiny_model, tmp_path, {'features': 'head.7'})
    with pytest.raises(ConfigError, match=r"tap 'features': no module 'head\.7' in ICNetSmall; module paths look like"):
        Pipeline.from_model(folder, backend='torch')


@pytest.mark.parametrize('taps', [{'logits': 'head.0'}, {'bad name': 'head.0'}, {'f': ''}])
def test_bad_tap_declarations(tiny_model: Path, tmp_path: Path, taps: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match='taps'):
        load_model_config(_tapped_folder(tiny_model, tmp_path, taps))


@pytest.mark.parametrize('backend', ['torch', 'onnxruntime'])
def test_aux_maps_at_frame_size(
    tiny_model: Path, backend: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv('ANOMALY_SEG_CACHE', str(tmp_path))
    p = Pipeline.from_model(tiny_model, backend=backend, aux=('max_softmax', 'softmax_distance'))
    r = p(np.random.default_rng(0).integers(0, 255, (90, 200, 3), dtype=np.uint8))
    assert set(r.aux) == {'max_softmax', 'softmax_distance'}
    for m in r.aux.values():
        assert m.shape == (90, 200) and m.dtype == np.float32 and 0 <= m.min() and m.max() <= 1
    p.close()


def test_auto_backend_on_cpu_is_onnxruntime(tiny_model: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv('ANOMALY_SEG_CACHE', str(tmp_path))
    p = Pipeline.from_model(tiny_model)
    assert p.backend.name == 'onnxruntime' and p.backend_request == 'auto'
    assert list(tmp_path.glob('graphs/*.onnx'))  # the graph at the model input size was built at start-up
    p.close()
    with pytest.raises(BackendError, match='used after close'):
        p(np.zeros((64, 128, 3), np.uint8))


def test_named_backend_that_cannot_run_says_why(tiny_model: Path) -> None:
    with pytest.raises(BackendError, match='backend tensorrt: '):
        Pipeline.from_model(tiny_model, backend='tensorrt')
    with pytest.raises(BackendError, match="unknown backend 'tflite'"):
        Pipeline.from_model(tiny_model, backend='tflite')


@pytest.mark.parametrize('backend', ['torch', 'onnxruntime'])
def test_many_camera_sizes_keep_a_bounded_number_of_graphs(
    tiny_model: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from anomaly_seg_ros.backends import onnxruntime_backend, torch_backend

    monkeypatch.setattr(onnxruntime_backend, 'MAX_SIZES', 2)
    monkeypatch.setattr(torch_backend, 'MAX_SIZES', 2)
    p = Pipeline.from_model(tiny_model, backend=backend)
    for w in (100, 120, 140, 100):
        assert p(np.zeros((50, w, 3), np.uint8)).labels.shape == (50, w)
    held = p.backend._sessions if backend == 'onnxruntime' else p.backend._graphs  # type: ignore[attr-defined]
    assert len(held) == 2 and (50, 100) in held


@pytest.mark.parametrize('backend', ['torch', 'onnxruntime'])
@pytest.mark.parametrize('fault', ['nan_weights', 'nan_mean'])
def test_broken_model_is_never_silently_blind(tiny_model: Path, tmp_path: Path, backend: str, fault: str) -> None:
    """NaN weights or a NaN normalisation: warm-up (start-up) and every frame raise, naming the model, instead of
    returning NaN scores that would look like 'no anomaly' and labels that would all read 'road'."""
    from anomaly_seg_ros.errors import NonFiniteOutputError

    folder = tmp_path / 'broken'
    shutil.copytree(tiny_model, folder)
    if fault == 'nan_weights':
        state = torch.load(folder / 'model.pt', weights_only=True)
        state['head.1.weight'][0] = float('nan')
        torch.save(state, folder / 'model.pt')
    else:
        cfg = yaml.safe_load((folder / 'model.yaml').read_text())
        cfg['input']['mean'] = [float('nan'), 0.5, 0.5]
        (folder / 'model.yaml').write_text(yaml.safe_dump(cfg))
    p = Pipeline.from_model(folder, backend=backend)
    with pytest.raises(NonFiniteOutputError, match=r"model 'tiny': \d+ of \d+ scores are NaN or inf"):
        p.warmup()
    with pytest.raises(NonFiniteOutputError):
        p(np.zeros((90, 200, 3), np.uint8))


def test_finite_check_ignores_an_overflowing_sum_of_finite_scores() -> None:
    from anomaly_seg_ros.errors import NonFiniteOutputError
    from anomaly_seg_ros.pipeline import check_finite

    check_finite(np.full((4, 4), 3e38, np.float32), 'm')  # the float32 sum overflows; every score is finite
    with pytest.raises(NonFiniteOutputError, match='1 of 16 scores'):
        check_finite(np.array([np.inf] + [0.0] * 15, np.float32).reshape(4, 4), 'm')
