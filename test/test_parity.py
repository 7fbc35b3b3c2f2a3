"""Parity: the same frames through every available backend and scorer, against eager torch on the CPU.

Labels must agree on >= 99.9 % of pixels and scores within 1e-3 (fp32). fp16 differences are measured and
printed (run with -s to see them), not held to the fp32 bound. CUDA and TensorRT cases skip with the reason
where there is no GPU or no TensorRT (CI has neither; test/gpu_check.sh runs them on a GPU machine).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from anomaly_seg_ros.backends import backend_capabilities
from anomaly_seg_ros.pipeline import Pipeline, Result

SCORERS = ('entropy', 'max_softmax', 'softmax_distance', 'max_logit')
SIZES = ((64, 128), (150, 300), (45, 100))  # the input size, a non-integer enlargement, smaller than the input
LABEL_AGREEMENT = 0.999
SCORE_ATOL = 1e-3

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason='no CUDA GPU on this machine (test/gpu_check.sh runs these)')
_trt_reason = backend_capabilities()['tensorrt'].available
needs_trt = pytest.mark.skipif(_trt_reason is not None, reason=f'tensorrt backend unavailable: {_trt_reason}')


def _frames(hw: tuple[int, int], n: int = 2) -> list[np.ndarray]:
    rng = np.random.default_rng(hw[0] * 1000 + hw[1])
    smooth = [rng.integers(0, 256, (hw[0] // 4 + 1, hw[1] // 4 + 1, 3), dtype=np.uint8) for _ in range(n)]
    import cv2

    # textured but spatially correlated, like camera frames (pure noise makes every pixel a near-tie)
    return [cv2.resize(s, (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR) for s in smooth]


def _compare(ref: Result, other: Result, atol: float = SCORE_ATOL) -> tuple[float, float]:
    agree = float((ref.labels == other.labels).mean())
    diff = float(np.abs(ref.score.astype(np.float64) - other.score).max())
    return agree, diff


@pytest.fixture(scope='module')
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp('cache')


@pytest.fixture(scope='module')
def reference(tiny_model: Path) -> dict[str, Pipeline]:
    return {s: Pipeline.from_model(tiny_model, scorer=s, backend='torch') for s in SCORERS}


def _assert_parity(ref: Pipeline, other: Pipeline, atol: float = SCORE_ATOL) -> None:
    for hw in SIZES:
        for frame in _frames(hw):
            a, b = ref(frame), other(frame)
            assert b.labels.shape == a.labels.shape and b.score.dtype == np.float32
            agree, diff = _compare(a, b)
            assert agree >= LABEL_AGREEMENT, f'{other.backend.name} {hw}: labels agree on {agree:.5f}'
            assert diff <= atol, f'{other.backend.name} {hw}: scores differ by {diff:.2e}'


@pytest.mark.parametrize('scorer', SCORERS)
def test_onnxruntime_cpu_matches_eager_torch(
    tiny_model: Path, scorer: str, reference: dict[str, Pipeline], cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv('ANOMALY_SEG_CACHE', str(cache))
    ort = Pipeline.from_model(tiny_model, scorer=scorer, backend='onnxruntime')
    _assert_parity(reference[scorer], ort)


def test_aux_maps_match_across_backends(tiny_model: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('ANOMALY_SEG_CACHE', str(cache))
    aux = ('max_softmax', 'softmax_distance')
    ref = Pipeline.from_model(tiny_model, backend='torch', aux=aux)
    ort = Pipeline.from_model(tiny_model, backend='onnxruntime', aux=aux)
    frame = _frames((150, 300))[0]
    a, b = ref(frame), ort(frame)
    for name in aux:
        assert float(np.abs(a.aux[name] - b.aux[name]).max()) <= SCORE_ATOL


def test_auto_is_a_backend_with_parity(
    tiny_model: Path, reference: dict[str, Pipeline], cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv('ANOMALY_SEG_CACHE', str(cache))
    _assert_parity(reference['entropy'], Pipeline.from_model(tiny_model, scorer='entropy', backend='auto'))


@needs_cuda
@pytest.mark.parametrize('scorer', SCORERS)
def test_torch_cuda_fp32_matches_cpu(tiny_model: Path, scorer: str, reference: dict[str, Pipeline]) -> None:
    _assert_parity(
        reference[scorer],
        Pipeline.from_model(tiny_model, scorer=scorer, backend='torch', device='cuda', precision='fp32'),
    )


@needs_cuda
def test_torch_cuda_graphs_equal_eager_cuda(tiny_model: Path) -> None:
    eager = Pipeline.from_model(tiny_model, backend='torch', device='cuda', precision='fp32')
    graphs = Pipeline.from_model(tiny_model, backend='torch', device='cuda', precision='fp32', cuda_graphs=True)
    for hw in SIZES:
        for frame in _frames(hw):
            a, b = eager(frame), graphs(frame)
            np.testing.assert_array_equal(a.labels, b.labels)
            np.testing.assert_allclose(a.score, b.score, atol=1e-5)


@needs_cuda
@pytest.mark.parametrize('scorer', SCORERS)
def test_torch_cuda_fp16_difference_measured(tiny_model: Path, scorer: str, reference: dict[str, Pipeline]) -> None:
    half = Pipeline.from_model(tiny_model, scorer=scorer, backend='torch', device='cuda', precision='fp16')
    agree, diff = _compare(reference[scorer](_frames((150, 300))[0]), half(_frames((150, 300))[0]))
    print(f'fp16 torch cuda {scorer}: labels agree {agree:.5f}, max score diff {diff:.2e}')
    assert agree >= 0.99  # fp16 is reported, and held only to a loose bound


@needs_trt
@pytest.mark.parametrize('precision', ['fp32', 'fp16'])
def test_tensorrt_matches_eager_torch(
    tiny_model: Path, precision: str, reference: dict[str, Pipeline], cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv('ANOMALY_SEG_CACHE', str(cache))
    trt = Pipeline.from_model(
        tiny_model, scorer='entropy', backend='tensorrt', device='cuda', precision=precision, build_new_sizes=True
    )
    if precision == 'fp32':
        _assert_parity(reference['entropy'], trt)
    else:
        agree, diff = _compare(reference['entropy'](_frames((64, 128))[0]), trt(_frames((64, 128))[0]))
        print(f'fp16 tensorrt entropy: labels agree {agree:.5f}, max score diff {diff:.2e}')
        assert agree >= 0.99


@pytest.fixture(scope='module')
def void_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny own net with a trailing void channel (20 outputs), as several public Cityscapes nets have."""
    import yaml

    from anomaly_seg_ros.checkpoint import write_model_folder
    from anomaly_seg_ros.config import InputSpec
    from anomaly_seg_ros.nets import build_net

    out = tmp_path_factory.mktemp('models') / 'tiny_void'
    torch.manual_seed(1)
    net = build_net('icnet_small', 20, width=8).eval()
    write_model_folder(out, net, 'icnet_small', {'width': 8}, InputSpec(64, 128), 'void', 'random weights, void')
    cfg = yaml.safe_load((out / 'model.yaml').read_text())
    cfg['void_channel'] = True
    (out / 'model.yaml').write_text(yaml.safe_dump(cfg))
    return out


@pytest.mark.parametrize('scorer', ['void', 'entropy'])
def test_void_channel_model_parity(void_model: Path, scorer: str, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every scorer, the void one included, on a model with a void channel: the fused graph agrees with eager."""
    monkeypatch.setenv('ANOMALY_SEG_CACHE', str(cache))
    ref = Pipeline.from_model(void_model, scorer=scorer, backend='torch')
    _assert_parity(ref, Pipeline.from_model(void_model, scorer=scorer, backend='onnxruntime'))
    assert int(ref(_frames((64, 128))[0]).labels.max()) < 19  # the void channel never becomes a label
