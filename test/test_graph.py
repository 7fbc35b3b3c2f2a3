"""The pipeline graph's resizing against OpenCV, the BGR channel order, and the fused graph in ONNX Runtime.

graph.py promises: down to the net input an area average for integer factors (cv2.INTER_AREA), box then
bilinear otherwise; labels up by nearest (cv2.INTER_NEAREST); score up by bilinear with half-pixel centres
(cv2.INTER_LINEAR). The integer-factor paths are written as matmuls for speed, so they are checked here
against the OpenCV functions they replace, at factors 1 to 4, unequal factors, and non-integer sizes.
"""

from __future__ import annotations

import dataclasses
import io
import math
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from anomaly_seg_ros.checkpoint import write_model_folder
from anomaly_seg_ros.config import InputSpec, ModelConfig, load_model_config
from anomaly_seg_ros.graph import FrameToInput, MapsFromOutputs, build_graph, phase_weights
from anomaly_seg_ros.nets import build_net
from anomaly_seg_ros.scoring import build_scorer

SCORERS = ('entropy', 'max_softmax', 'softmax_distance', 'max_logit')
IN_HW = (64, 128)  # the tiny model's input (h, w)


@pytest.fixture(scope='module')
def tiny(tiny_model: Path) -> ModelConfig:
    return load_model_config(tiny_model)


@pytest.fixture(scope='module')
def tiny_bgr(tmp_path_factory: pytest.TempPathFactory) -> ModelConfig:
    out = tmp_path_factory.mktemp('models') / 'tiny_bgr'
    torch.manual_seed(0)
    net = build_net('icnet_small', 19, width=8).eval()
    spec = InputSpec(64, 128, 'bgr', mean=(0.3, 0.5, 0.7), std=(0.2, 0.25, 0.3))
    write_model_folder(out, net, 'icnet_small', {'width': 8}, spec, 'entropy', 'random weights, BGR input')
    return load_model_config(out)


def _frame(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 4 + 2, w // 4 + 2, 3), dtype=np.uint8)
    smooth = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.int16)
    return np.clip(smooth + rng.integers(-25, 26, smooth.shape), 0, 255).astype(np.uint8)


def _normalise(rgb: np.ndarray, model: ModelConfig) -> np.ndarray:
    """HxWx3 float RGB in 0..255 -> 3xHxW net input, in the net's channel order."""
    spec = model.input
    x = rgb[..., ::-1] if spec.channel_order == 'bgr' else rgb
    return ((x * spec.scale - np.array(spec.mean)) / np.array(spec.std)).transpose(2, 0, 1).astype(np.float32)


def _pre(model: ModelConfig, frame: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return FrameToInput(model, frame.shape[:2])(torch.from_numpy(frame)[None])[0].numpy()


@pytest.mark.parametrize('hw', [(64, 128), (128, 256), (256, 512), (192, 128)])  # factors 1, 2, 4 and (3, 1)
def test_integer_downsizing_is_cv2_area(tiny: ModelConfig, hw: tuple[int, int]) -> None:
    frame = _frame(*hw)
    ref = _normalise(cv2.resize(frame.astype(np.float32), IN_HW[::-1], interpolation=cv2.INTER_AREA), tiny)
    np.testing.assert_allclose(_pre(tiny, frame), ref, atol=2e-5)


def test_non_integer_downsizing_is_box_then_bilinear(tiny: ModelConfig) -> None:
    frame = _frame(170, 300)  # the largest dividing factors are 2 and 2: a 150x85 box average, then bilinear
    box = cv2.resize(frame.astype(np.float32), (150, 85), interpolation=cv2.INTER_AREA)
    ref = _normalise(cv2.resize(box, IN_HW[::-1], interpolation=cv2.INTER_LINEAR), tiny)
    np.testing.assert_allclose(_pre(tiny, frame), ref, atol=2e-5)


def test_frame_smaller_than_input_is_bilinear_up(tiny: ModelConfig) -> None:
    frame = _frame(60, 100)
    ref = _normalise(cv2.resize(frame.astype(np.float32), IN_HW[::-1], interpolation=cv2.INTER_LINEAR), tiny)
    np.testing.assert_allclose(_pre(tiny, frame), ref, atol=2e-5)


@pytest.mark.parametrize('hw', [(64, 128), (256, 512)])
def test_bgr_net_reads_the_frame_channels_reversed(tiny_bgr: ModelConfig, hw: tuple[int, int]) -> None:
    frame = _frame(*hw, seed=3)
    spec = tiny_bgr.input
    x = _pre(tiny_bgr, frame)
    # net channel 0 is the frame's blue, normalised with the first mean/std (they are in the net's order)
    for c, src in enumerate((2, 1, 0)):
        plane = np.ascontiguousarray(frame[..., src]).astype(np.float32)
        plane = cv2.resize(plane, IN_HW[::-1], interpolation=cv2.INTER_AREA)
        np.testing.assert_allclose(x[c], (plane * spec.scale - spec.mean[c]) / spec.std[c], atol=2e-5)


@pytest.mark.parametrize('hw', [(128, 256), (90, 200), (45, 100)])
def test_bgr_net_sees_what_an_rgb_net_sees_of_the_swapped_frame(tiny_bgr: ModelConfig, hw: tuple[int, int]) -> None:
    frame = _frame(*hw, seed=4)
    spec = tiny_bgr.input
    rgb_twin = dataclasses.replace(tiny_bgr, input=dataclasses.replace(spec, channel_order='rgb'))
    swapped = np.ascontiguousarray(frame[..., ::-1])
    np.testing.assert_allclose(_pre(rgb_twin, swapped), _pre(tiny_bgr, frame), atol=1e-6)


def test_phase_weights() -> None:
    for k in range(1, 7):
        w = phase_weights(k)
        assert w.shape == (3, k)
        torch.testing.assert_close(w.sum(dim=0), torch.ones(k))
        assert bool((w >= 0).all()) and bool((w[0] * w[2] == 0).all())  # only the nearer neighbour
    assert phase_weights(1).tolist() == [[0.0], [1.0], [0.0]]
    assert phase_weights(4).tolist() == [
        [0.375, 0.125, 0.0, 0.0],
        [0.625, 0.875, 0.875, 0.625],
        [0.0, 0.0, 0.125, 0.375],
    ]


# camera sizes against the 64x128 logits: factor 1, (2, 2), (4, 4), (3, 2) with an odd factor, (2, 1),
# non-integer enlargements, and smaller than the logits
UP_SIZES = [(64, 128), (128, 256), (256, 512), (192, 256), (128, 128), (170, 300), (45, 100)]


@pytest.mark.parametrize('hw', UP_SIZES)
@pytest.mark.parametrize('scorer_name', ['entropy', 'max_logit'])
def test_upsampling_is_cv2_nearest_and_linear(tiny: ModelConfig, hw: tuple[int, int], scorer_name: str) -> None:
    torch.manual_seed(hw[0] + hw[1])
    logits = torch.randn(1, 19, *IN_HW) * 3
    scorer = build_scorer(scorer_name, tiny).eval()
    post = MapsFromOutputs(tiny, scorer, hw, IN_HW)
    with torch.inference_mode():
        labels, score = (t[0].numpy() for t in post({'logits': logits}))
        low = scorer({'logits': logits})[0].numpy()
    ids = logits[0].argmax(0).to(torch.uint8).numpy()
    assert labels.dtype == np.uint8 and labels.shape == hw and score.dtype == np.float32 and score.shape == hw
    np.testing.assert_array_equal(labels, cv2.resize(ids, hw[::-1], interpolation=cv2.INTER_NEAREST))
    ref = cv2.resize(low, hw[::-1], interpolation=cv2.INTER_LINEAR)
    lo, hi = scorer.score_range
    if math.isfinite(lo):
        ref = np.clip(ref, lo, hi)
    np.testing.assert_allclose(score, ref, atol=1e-5 * max(1.0, float(np.abs(low).max())))


def test_score_stays_in_range_after_upsampling(tiny: ModelConfig) -> None:
    # uniform logits: max_softmax is exactly 1 - 1/C everywhere, the top of its declared range; never above
    for name in ('max_softmax', 'entropy', 'softmax_distance'):
        scorer = build_scorer(name, tiny).eval()
        post = MapsFromOutputs(tiny, scorer, (256, 512), IN_HW)
        with torch.inference_mode():
            score = post({'logits': torch.zeros(1, 19, *IN_HW)})[1]
        lo, hi = scorer.score_range
        assert float(score.min()) >= lo and float(score.max()) <= hi
        if name == 'max_softmax':
            assert float(score.max()) == hi


def test_export_traces_without_warnings_from_the_graph(tiny: ModelConfig) -> None:
    from anomaly_seg_ros.backends import GraphSource

    for scorer_name, hw in (('softmax_distance', (256, 512)), ('entropy', (170, 300))):
        graph = GraphSource(tiny, build_scorer(scorer_name, tiny)).graph(hw)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            torch.onnx.export(
                graph, (torch.zeros(1, *hw, 3, dtype=torch.uint8),), io.BytesIO(), opset_version=17, dynamo=False
            )
        mine = (str(Path('anomaly_seg_ros') / 'graph.py'), str(Path('anomaly_seg_ros') / 'scoring' / 'softmax.py'))
        ours = [f'{w.filename}:{w.lineno}: {w.message}' for w in caught if w.filename.endswith(mine)]
        assert not ours, ours


@pytest.mark.parametrize('scorer_name', SCORERS)
def test_fused_graph_in_onnxruntime_matches_eager_torch(tiny_model: Path, scorer_name: str) -> None:
    pytest.importorskip('onnxruntime')
    from anomaly_seg_ros.pipeline import Pipeline

    ref = Pipeline.from_model(tiny_model, scorer=scorer_name, backend='torch')
    ort = Pipeline.from_model(tiny_model, scorer=scorer_name, backend='onnxruntime')
    for hw in ((128, 256), (256, 512), (170, 300)):
        frame = _frame(*hw, seed=7)
        a, b = ref(frame), ort(frame)
        assert b.labels.dtype == np.uint8 and b.labels.shape == hw and b.score.shape == hw
        assert float((a.labels == b.labels).mean()) >= 0.999, (scorer_name, hw)
        np.testing.assert_allclose(b.score, a.score, atol=1e-4 * max(1.0, float(np.abs(a.score).max())))


def test_graph_for_a_void_model_leaves_the_void_channel_out(tiny: ModelConfig) -> None:
    void = dataclasses.replace(tiny, void_channel=True)
    torch.manual_seed(1)
    net = build_net('icnet_small', 20, width=8).eval()
    from anomaly_seg_ros.nets import TappedNet

    graph = build_graph(void, TappedNet(net), build_scorer('void', void), (128, 256))
    frame = torch.from_numpy(_frame(128, 256))[None]
    with torch.inference_mode():
        labels, score = graph(frame)
        logits = net(graph.pre(frame))
    assert int(labels.max()) < 19  # the void channel is never a label
    low = torch.softmax(logits, dim=1)[0, 19].numpy()
    np.testing.assert_allclose(score[0].numpy(), cv2.resize(low, (256, 128), interpolation=cv2.INTER_LINEAR), atol=1e-5)
