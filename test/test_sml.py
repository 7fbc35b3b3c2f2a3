"""Standardized max-logit: the fitted statistics against numpy, boundary suppression and smoothing on constructed
maps, parameter and artefact errors, and the fused ONNX graph against eager torch."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from anomaly_seg_ros.checkpoint import write_model_folder
from anomaly_seg_ros.classes import ANOMALY_ID
from anomaly_seg_ros.config import InputSpec, load_model_config
from anomaly_seg_ros.data.synthetic import SyntheticWorld, WorldConfig
from anomaly_seg_ros.errors import CheckpointError, ConfigError
from anomaly_seg_ros.fit import sml as fit_sml
from anomaly_seg_ros.fit.base import FitResult
from anomaly_seg_ros.fit.model_yaml import update_model_yaml
from anomaly_seg_ros.nets import build_net
from anomaly_seg_ros.scoring import build_scorer
from anomaly_seg_ros.scoring.sml import (
    StandardizedMaxLogit,
    boundary_suppression,
    boundary_widths,
    dilated_smoothing,
)

H, W = 64, 128


@pytest.fixture(scope='module')
def varied_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model whose random head predicts several classes (a plain random net predicts one everywhere)."""
    out = tmp_path_factory.mktemp('sml') / 'varied'
    torch.manual_seed(0)
    net = build_net('icnet_small', 19, width=8).eval()
    head = dict(net.named_modules())['head.1']
    with torch.no_grad():
        torch.nn.init.normal_(head.weight, std=1.0)
        head.bias.zero_()
    write_model_folder(out, net, 'icnet_small', {'width': 8}, InputSpec(H, W), 'entropy', 'varied random head')
    return out


@pytest.fixture(scope='module')
def frames() -> list:
    return list(SyntheticWorld(3, seed=5, config=WorldConfig(height=H, width=W, anomaly_prob=1.0)))


def _args(**kw: object) -> argparse.Namespace:
    base = {
        'device': 'cpu',
        'min_pixels': 1,
        'boundary_iterations': None,
        'boundary_width': None,
        'smoothing_kernel': None,
        'smoothing_dilation': None,
    }
    return argparse.Namespace(**{**base, **kw})


def _direct_logits(model_dir: Path, image: np.ndarray) -> np.ndarray:
    """The net on a frame at its input size, normalised by hand (x/255, ImageNet mean/std): K x h x w."""
    cfg = load_model_config(model_dir)
    net = build_net('icnet_small', 19, width=8).eval()
    net.load_state_dict(torch.load(cfg.weights, weights_only=True))
    x = (image.astype(np.float32) / 255.0 - np.array(cfg.input.mean, np.float32)) / np.array(cfg.input.std, np.float32)
    with torch.no_grad():
        return net(torch.from_numpy(x).permute(2, 0, 1)[None].contiguous())[0].numpy()


def test_fitted_statistics_match_numpy(varied_model: Path, frames: list, tmp_path: Path) -> None:
    model_dir = tmp_path / 'm'
    shutil.copytree(varied_model, model_dir)
    result = fit_sml.fit(model_dir, frames, _args())
    stats = torch.load(model_dir / result.artefacts['stats'], weights_only=True)
    values, classes = [], []
    for s in frames:
        logits = _direct_logits(model_dir, s.image)
        keep = s.anomaly != ANOMALY_ID  # at the input size the logit pixels are the frame's pixels
        values.append(logits.max(axis=0)[keep])
        classes.append(logits.argmax(axis=0)[keep])
    v, c = np.concatenate(values).astype(np.float64), np.concatenate(classes)
    assert result.summary['pixels_excluded_anomaly'] == sum(int((s.anomaly == ANOMALY_ID).sum()) for s in frames) > 0
    present = np.unique(c)
    assert len(present) >= 3
    np.testing.assert_array_equal(stats['count'].numpy(), np.bincount(c, minlength=19))
    # a class never predicted, or on one pixel only (std 0), gets the all-pixel statistics
    fallback = [k for k in range(19) if k not in present or v[c == k].std() <= 1e-6]
    assert len(fallback) < 19 - 2
    for k in range(19):
        want = (v.mean(), v.std()) if k in fallback else (v[c == k].mean(), v[c == k].std())
        np.testing.assert_allclose(float(stats['mean'][k]), want[0], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(float(stats['std'][k]), want[1], rtol=1e-4, atol=1e-6)
    names = load_model_config(model_dir).classes
    assert result.summary['fallback_classes'] == [names[k] for k in fallback]
    # the paper's sizes scaled to a 128-pixel-wide logit map (8 and 6 x 128/2048, at least 1)
    assert result.params == {
        'boundary_iterations': 4,
        'boundary_width': 1,
        'smoothing_kernel': 7,
        'smoothing_dilation': 1,
    }


def test_running_stats_merge_equals_one_pass() -> None:
    rng = np.random.default_rng(0)
    stats = fit_sml.RunningClassStats(5)
    vs, cs = [], []
    for n in (10, 1, 300, 0, 57):
        v = rng.normal(20.0, 3.0, n) + 1e4  # a large offset: a raw sum of squares would lose digits here
        c = rng.choice([0, 1, 3], n)
        stats.update(v, c)
        vs.append(v)
        cs.append(c)
    v, c = np.concatenate(vs), np.concatenate(cs)
    for k in (0, 1, 3):
        assert stats.count[k] == (c == k).sum()
        np.testing.assert_allclose(stats.mean[k], v[c == k].mean(), rtol=1e-12)
        np.testing.assert_allclose(stats.std()[k], v[c == k].std(), rtol=1e-9)
    assert stats.count[2] == stats.count[4] == 0
    n, mean, std = stats.total()
    assert n == v.size and mean == pytest.approx(v.mean(), rel=1e-12) and std == pytest.approx(v.std(), rel=1e-9)


def _reference_suppression(score: np.ndarray, classes: np.ndarray, widths: list[int]) -> np.ndarray:
    """Straight loops over pixels: the band is where the (2r+1)^2 window holds two classes; band pixels take the
    mean of their non-band 3x3 neighbours."""
    s = score.astype(np.float64).copy()
    h, w = s.shape
    for r in widths:
        band = np.zeros((h, w), bool)
        for i in range(h):
            for j in range(w):
                win = classes[max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1]
                band[i, j] = win.min() != win.max()
        new = s.copy()
        for i in range(h):
            for j in range(w):
                if not band[i, j]:
                    continue
                vals = [
                    s[a, b]
                    for a in range(max(0, i - 1), min(h, i + 2))
                    for b in range(max(0, j - 1), min(w, j + 2))
                    if not band[a, b]
                ]
                if vals:
                    new[i, j] = np.mean(vals)
        s = new
    return s


def test_boundary_suppression_on_a_two_class_map() -> None:
    h, w = 6, 12
    classes = np.zeros((h, w), np.int64)
    classes[:, 6:] = 1  # the class edge runs between columns 5 and 6
    rng = np.random.default_rng(1)
    score = rng.normal(size=(h, w)).astype(np.float32)
    t = torch.from_numpy(score)[None, None]
    c = torch.from_numpy(classes).float()[None, None]
    out = boundary_suppression(t, c, [1])[0, 0].numpy()
    # width 1: columns 5 and 6 are the band; each band pixel takes the mean of its neighbours in column 4 (or 7)
    for i in range(h):
        rows = slice(max(0, i - 1), min(h, i + 2))
        assert out[i, 5] == pytest.approx(score[rows, 4].mean(), abs=1e-6)
        assert out[i, 6] == pytest.approx(score[rows, 7].mean(), abs=1e-6)
    interior = np.r_[0:5, 7:12]
    np.testing.assert_array_equal(out[:, interior], score[:, interior])  # untouched, bit for bit
    # several iterations with a shrinking band, and a second region, against the loop reference
    classes[4:, 2:5] = 2
    c = torch.from_numpy(classes).float()[None, None]
    got = boundary_suppression(t, c, [3, 2, 1])[0, 0].numpy()
    np.testing.assert_allclose(got, _reference_suppression(score, classes, [3, 2, 1]), atol=1e-5)


def test_boundary_width_schedule_ends_at_one() -> None:
    assert boundary_widths(8, 4) == [8, 6, 3, 1]
    assert boundary_widths(2, 4) == [2, 2, 1, 1]
    assert boundary_widths(5, 1) == [5]
    assert boundary_widths(5, 0) == []


def test_dilated_smoothing_averages_inside_the_map() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(9, 11)).astype(np.float32)
    k, d = 3, 2
    got = dilated_smoothing(torch.from_numpy(x)[None, None], torch.ones(1, 1, k, k), d)[0, 0].numpy()
    want = np.zeros_like(x)
    for i in range(9):
        for j in range(11):
            taps = [
                x[i + a * d, j + b * d]
                for a in (-1, 0, 1)
                for b in (-1, 0, 1)
                if 0 <= i + a * d < 9 and 0 <= j + b * d < 11
            ]
            want[i, j] = np.mean(taps)
    np.testing.assert_allclose(got, want, atol=1e-6)
    const = dilated_smoothing(torch.full((1, 1, 9, 11), 2.5), torch.ones(1, 1, 7, 7), 3)
    torch.testing.assert_close(const, torch.full((1, 1, 9, 11), 2.5))  # the frame edge does not pull to 0


def test_score_is_minus_standardized_max_logit() -> None:
    mean = torch.tensor([1.0, 5.0, -2.0])
    std = torch.tensor([2.0, 0.5, 1.0])
    s = StandardizedMaxLogit(3, False, mean, std, boundary_iterations=0, smoothing_kernel=1)
    logits = torch.randn(2, 3, 4, 5) * 3
    top, cls = logits.max(dim=1)
    want = -(top - mean[cls]) / std[cls]
    torch.testing.assert_close(s({'logits': logits}), want, rtol=1e-5, atol=1e-5)
    # a void channel is never the predicted class
    with_void = torch.cat([logits, torch.full((2, 1, 4, 5), 100.0)], dim=1)
    sv = StandardizedMaxLogit(3, True, mean, std, boundary_iterations=0, smoothing_kernel=1)
    torch.testing.assert_close(sv({'logits': with_void}), want, rtol=1e-5, atol=1e-5)


def _write_stats(folder: Path, **override: torch.Tensor) -> None:
    stats = {'mean': torch.zeros(19), 'std': torch.ones(19), 'count': torch.ones(19, dtype=torch.int64)}
    torch.save({**stats, **override}, folder / 'sml_stats.pt')


def test_bad_params_and_artefacts_are_named(tiny_model: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / 'm'
    shutil.copytree(tiny_model, model_dir)
    with pytest.raises(ConfigError, match=r"scorer 'sml'.*needs the fitted artefact 'stats'"):
        build_scorer('sml', load_model_config(model_dir))
    _write_stats(model_dir)

    def record(**params: object) -> None:
        update_model_yaml(model_dir, FitResult('sml', {'stats': 'sml_stats.pt'}, dict(params)))

    record(smoothing_kernel=4)
    with pytest.raises(ConfigError, match=r'scorers\.sml\.params\.smoothing_kernel\): must be odd'):
        build_scorer('sml', load_model_config(model_dir))
    record(boundary_width=0)
    with pytest.raises(ConfigError, match=r'scorers\.sml\.params\.boundary_width.*>= 1, got 0'):
        build_scorer('sml', load_model_config(model_dir))
    record(radius=3)
    with pytest.raises(ConfigError, match=r'unknown parameter\(s\) radius'):
        build_scorer('sml', load_model_config(model_dir))
    record()
    _write_stats(model_dir, std=torch.zeros(19))
    with pytest.raises(CheckpointError, match=r'sml_stats\.pt: std must be > 0'):
        build_scorer('sml', load_model_config(model_dir))
    _write_stats(model_dir, mean=torch.zeros(7))
    with pytest.raises(CheckpointError, match=r"'mean' must be a tensor of 19 values"):
        build_scorer('sml', load_model_config(model_dir))
    (model_dir / 'sml_stats.pt').write_bytes(b'not a checkpoint')
    with pytest.raises(CheckpointError, match='cannot load scorer artefact'):
        build_scorer('sml', load_model_config(model_dir))


def test_onnx_graph_matches_torch(varied_model: Path, frames: list, tmp_path: Path) -> None:
    pytest.importorskip('onnxruntime')
    from anomaly_seg_ros.backends.onnxruntime_backend import make_session
    from anomaly_seg_ros.pipeline import Pipeline

    model_dir = tmp_path / 'm'
    shutil.copytree(varied_model, model_dir)
    # width 2, dilation 2 on the 128-pixel logits: bands and smoothing reach across several pixels
    result = fit_sml.fit(model_dir, frames, _args(boundary_width=3, smoothing_dilation=2))
    update_model_yaml(model_dir, result)
    reference = Pipeline.from_model(model_dir, scorer='sml', backend='torch')
    for w, h in ((W, H), (2 * W, 2 * H)):
        if (w, h) == (W, H):
            images = [f.image for f in frames]
        else:
            images = [SyntheticWorld(1, seed=9, config=WorldConfig(height=h, width=w))[0].image]
        session = make_session(reference.backend.source.onnx((h, w)))
        names = [o.name for o in session.get_outputs()]
        for image in images:
            ref = reference(image)
            got = dict(zip(names, (o[0] for o in session.run(names, {'frame': image[None]})), strict=True))
            np.testing.assert_array_equal(got['labels'], ref.labels)
            assert float(np.abs(got['score'] - ref.score).max()) <= 1e-3
            assert np.isfinite(ref.score).all() and float(ref.score.std()) > 0
    reference.close()
