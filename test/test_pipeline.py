from pathlib import Path

import numpy as np
import pytest
import torch

from anomaly_seg_ros.checkpoint import load_state_dict_strict
from anomaly_seg_ros.config import load_model_config
from anomaly_seg_ros.errors import CheckpointError, ConfigError
from anomaly_seg_ros.nets import build_net
from anomaly_seg_ros.pipeline import STAGES, Pipeline


@pytest.fixture(scope='module')
def pipe(tiny_model: Path) -> Pipeline:
    return Pipeline.from_model(tiny_model)


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
        Pipeline.from_model(tiny_model, scorer='flow')


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


def test_labels_and_score_resized_independently(tiny_model: Path) -> None:
    """A scorer whose map has another size than the logits: the labels must still come back at the frame size."""
    import torch.nn.functional as F

    p = Pipeline.from_model(tiny_model)
    inner = p.scorer

    class Coarse(type(inner)):  # type: ignore[misc]
        def forward(self, logits: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
            return F.avg_pool2d(inner(logits, image)[:, None], 2)[:, 0]

    coarse = Coarse(inner.num_classes, inner.void_channel)
    p.scorer = coarse
    r = p(np.zeros((100, 150, 3), np.uint8))
    assert r.score.shape == (100, 150) and r.labels.shape == (100, 150)
    r = p(np.zeros((p.model.input.height, p.model.input.width, 3), np.uint8))
    assert r.labels.shape == (p.model.input.height, p.model.input.width) == r.score.shape
