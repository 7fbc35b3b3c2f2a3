"""Obstacle segments, their metrics against a direct per-segment loop, the meta classifier and `fit meta`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from anomaly_seg_ros.errors import ConfigError, DatasetError
from anomaly_seg_ros.obstacles import (
    AUX_MAPS,
    FEATURE_NAMES,
    FP,
    IGNORED,
    TP,
    DetectionCounts,
    MetaClassifier,
    boundary_mask,
    ego_mask,
    extract_segments,
    fit_logistic,
    frame_segments,
    label_segments,
    segment_features,
)
from anomaly_seg_ros.obstacles.meta import FORMAT


def _blobs(h: int = 60, w: int = 90, seed: int = 0) -> np.ndarray:
    """A score map in [0, 1) with rectangles, an L shape, a diagonal chain (8-connected only) and noise."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(0.0, 0.3, (h, w)).astype(np.float32)
    s[5:15, 5:25] = rng.uniform(0.6, 1.0, (10, 20))
    s[30:50, 10:14] = 0.7
    s[46:50, 10:30] = 0.8  # L with the bar above
    for i in range(8):  # diagonal: 8-connected, not 4-connected
        s[20 + i, 60 + i] = 0.9
    s[0:6, 84:90] = rng.uniform(0.5, 1.0, (6, 6))  # touches the image border
    s[40, 70] = 0.95  # one pixel
    return s


def _aux(score: np.ndarray, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {a: rng.uniform(0, 1, score.shape).astype(np.float32) for a in AUX_MAPS.values()}


# --------------------------------------------------------------------------- segments


def test_components_are_8_connected_and_numbered_1_to_n() -> None:
    s = _blobs()
    seg = extract_segments(s, 0.5)
    assert seg.instance.dtype == np.uint16
    assert seg.count == 5
    assert set(np.unique(seg.instance)) == set(range(seg.count + 1))
    # the diagonal chain is one segment of 8 pixels
    diag = seg.instance[20, 60]
    assert diag > 0 and all(seg.instance[20 + i, 60 + i] == diag for i in range(8))
    assert seg.sizes[diag - 1] == 8
    # ids in order of the first pixel (row-major): the border blob at row 0 is 1, the rectangle at row 5 is 2
    assert seg.instance[0, 85] == 1 and seg.instance[5, 5] == 2
    assert (seg.instance > 0).sum() == (s >= 0.5).sum()
    assert seg.sizes.tolist() == np.bincount(seg.instance.ravel())[1:].tolist()


def test_min_size_and_threshold() -> None:
    s = _blobs()
    seg = extract_segments(s, 0.5, min_size=9)
    assert seg.count == 3 and seg.dropped_small == 2  # the single pixel and the diagonal chain
    assert seg.instance[40, 70] == 0 and seg.instance[20, 60] == 0
    high = extract_segments(s, 0.85)  # the L (0.7 / 0.8) is gone, the chain (0.9) and the pixel (0.95) stay
    assert high.instance[32, 11] == 0 and high.instance[47, 20] == 0
    assert high.instance[40, 70] > 0 and high.instance[20, 60] > 0
    with pytest.raises(ConfigError, match='min_size'):
        extract_segments(s, 0.5, min_size=0)
    with pytest.raises(ConfigError, match='threshold'):
        extract_segments(s, float('nan'))


def test_ego_mask_polygon_and_mostly_inside() -> None:
    mask = ego_mask([[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]], 10, 20)
    assert mask is not None and mask[:5].sum() == 0 and mask[5:].all()
    tri = ego_mask([[0, 0], [1, 0], [0, 1]], 100, 100)
    assert tri is not None and tri[10, 10] and not tri[90, 90] and abs(tri.mean() - 0.5) < 0.02
    assert ego_mask(None, 4, 4) is None and ego_mask([], 4, 4) is None
    with pytest.raises(ConfigError, match='at least 3'):
        ego_mask([[0, 0], [1, 1]], 4, 4)
    with pytest.raises(ConfigError, match=r'\[0, 1\]'):
        ego_mask([[0, 0], [2, 0], [0, 1]], 4, 4)

    s = np.zeros((20, 20), np.float32)
    s[2:6, 2:6] = 1  # outside the ego mask
    s[12:20, 0:4] = 1  # 32 px, 24 inside the mask (rows >= 14): mostly inside
    s[8:16, 10:14] = 1  # 32 px, 8 inside (rows 14, 15): mostly outside
    ego = np.zeros((20, 20), bool)
    ego[14:] = True
    seg = extract_segments(s, 0.5, 1, ego)
    assert seg.count == 2 and seg.dropped_ego == 1
    assert seg.instance[15, 1] == 0 and seg.instance[15, 11] > 0


# --------------------------------------------------------------------------- features against a loop


def _loop_features(inst: np.ndarray, n: int, score: np.ndarray, aux: dict[str, np.ndarray]) -> np.ndarray:
    """The features the slow way: one segment at a time, neighbours checked pixel by pixel."""
    h, w = inst.shape
    maps = {m: aux[a] for m, a in AUX_MAPS.items()}
    maps['score'] = score
    rows = []
    for k in range(1, n + 1):
        seg = inst == k
        bd = np.zeros_like(seg)
        for y, x in zip(*np.nonzero(seg), strict=True):
            for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                yy, xx = y + dy, x + dx
                if not (0 <= yy < h and 0 <= xx < w) or inst[yy, xx] != k:
                    bd[y, x] = True
        interior = seg & ~bd
        f: dict[str, float] = {}
        for m, arr in maps.items():
            for r, region in (('', seg), ('_in', interior), ('_bd', bd)):
                v = arr[region].astype(np.float64)
                f[f'{m}_mean{r}'] = float(v.mean()) if v.size else 0.0
                f[f'{m}_var{r}'] = float(v.var()) if v.size else 0.0
        ys, xs = np.nonzero(seg)
        f.update(
            size=seg.sum(),
            size_in=interior.sum(),
            size_bd=bd.sum(),
            size_rel=seg.sum() / bd.sum(),
            size_in_rel=interior.sum() / bd.sum(),
            box_x0=xs.min() / w,
            box_y0=ys.min() / h,
            box_w=(xs.max() - xs.min() + 1) / w,
            box_h=(ys.max() - ys.min() + 1) / h,
            centroid_x=(xs + 0.5).mean() / w,
            centroid_y=(ys + 0.5).mean() / h,
            score_max=float(score[seg].max()),
        )
        rows.append([f[name] for name in FEATURE_NAMES])
    return np.asarray(rows)


@pytest.mark.parametrize('seed', [0, 3])
def test_every_feature_matches_a_per_segment_loop(seed: int) -> None:
    s = _blobs(seed=seed)
    aux = _aux(s, seed)
    seg = extract_segments(s, 0.5)
    feats = segment_features(seg, s, aux)
    want = _loop_features(seg.instance, seg.count, s, aux)
    assert feats.values.shape == (seg.count, len(FEATURE_NAMES)) == want.shape
    for j, name in enumerate(FEATURE_NAMES):
        np.testing.assert_allclose(feats.values[:, j], want[:, j], rtol=1e-9, atol=1e-12, err_msg=name)
    # boxes are inclusive pixel boxes; the rectangle is rows 5..14, columns 5..24
    rect = seg.instance[5, 5] - 1
    assert feats.boxes[rect].tolist() == [5, 5, 24, 14]
    assert feats.area.tolist() == seg.sizes.tolist()


def test_interior_boundary_split_of_a_rectangle() -> None:
    inst = np.zeros((10, 12), np.uint16)
    inst[2:7, 3:9] = 1  # 5 x 6: boundary ring 18 pixels, interior 3 x 4 = 12
    inst[0:3, 10:12] = 2  # touches the top and right border: every pixel is boundary
    bd = boundary_mask(inst)
    assert bd[inst == 1].sum() == 18 and (~bd[inst == 1]).sum() == 12
    assert bd[inst == 2].all() and not bd[inst == 0].any()
    # thin segments: no interior, interior stats are 0
    s = np.zeros((10, 12), np.float32)
    s[inst > 0] = 0.8
    seg = extract_segments(s, 0.5)
    feats = segment_features(seg, s, _aux(s))
    thin = seg.instance[0, 10] - 1
    assert feats.column('size_in')[thin] == 0 and feats.column('entropy_mean_in')[thin] == 0


def test_features_of_no_segments_and_missing_aux() -> None:
    s = np.zeros((8, 8), np.float32)
    seg = extract_segments(s, 0.5)
    assert seg.count == 0 and segment_features(seg, s, _aux(s)).values.shape == (0, len(FEATURE_NAMES))
    with pytest.raises(ValueError, match='softmax_distance'):
        segment_features(seg, s, {'entropy': s, 'max_softmax': s})


# --------------------------------------------------------------------------- labels and counts


def test_labels_and_table_counts() -> None:
    s = np.zeros((20, 30), np.float32)
    s[1:5, 1:5] = 1  # segment A overlaps object 1
    s[10:14, 1:5] = 1  # segment B: in-distribution -> FP
    s[10:14, 20:24] = 1  # segment C: mostly ignore -> IGNORED
    anomaly = np.zeros((20, 30), np.uint8)
    anomaly[3:8, 3:8] = 1  # object 1
    anomaly[15:18, 15:18] = 1  # object 2, missed
    anomaly[9:20, 19:25] = 255
    labels = np.zeros((20, 30), np.uint8)  # all road
    seg = extract_segments(s, 0.5)
    assert label_segments(seg, anomaly).tolist() == [TP, FP, IGNORED]
    fs = frame_segments(seg, anomaly, labels)
    assert fs.objects == 2 and fs.pairs.tolist() == [[0, 0]]
    c = DetectionCounts()
    c.add(fs)
    assert (c.tp, c.fp, c.fn) == (1, 1, 1)
    assert c.f1 == pytest.approx(2 / 4)
    road = int(((anomaly == 0) & (labels == 0)).sum())
    assert c.road_total == road and c.road_missed == (16 - 4) + 16  # A's in-distribution part, B
    c2 = DetectionCounts()
    c2.add(fs, np.array([False, False, True]))
    assert (c2.tp, c2.fp, c2.fn) == (0, 0, 2) and c2.road_missed == 0


# --------------------------------------------------------------------------- the classifier


def _separable(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, len(FEATURE_NAMES)))
    y = rng.uniform(size=n) < 0.5
    x[:, FEATURE_NAMES.index('entropy_mean')] += np.where(y, 2.0, -2.0)
    x[:, FEATURE_NAMES.index('size')] = x[:, FEATURE_NAMES.index('size')] * 100 + 500 + np.where(y, 300, 0)
    return x, y


def test_classifier_separates_and_matches_sklearn(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler

    x, y = _separable()
    clf = fit_logistic(x, y, segment_threshold=0.3, min_size=20, scorer='entropy')
    xt, yt = _separable(seed=1)
    p = clf.predict_proba(xt)
    assert roc_auc_score(yt, p) > 0.97 and ((p >= 0.5) == yt).mean() > 0.9
    ref = LogisticRegression(max_iter=2000).fit(StandardScaler().fit(x).transform(x), y)
    np.testing.assert_allclose(p, ref.predict_proba(StandardScaler().fit(x).transform(xt))[:, 1], atol=1e-9)
    assert clf.keep(xt).tolist() == (p >= 0.5).tolist()
    # JSON round trip
    path = clf.save(tmp_path / 'meta.json')
    back = MetaClassifier.load(path)
    np.testing.assert_array_equal(back.predict_proba(xt), p)
    assert (back.segment_threshold, back.min_size, back.scorer) == (0.3, 20, 'entropy')
    with pytest.raises(ValueError, match='feature matrix'):
        clf.predict_proba(xt[:, :3])
    with pytest.raises(ConfigError, match='0 TP'):
        fit_logistic(x, np.zeros(len(y), bool), segment_threshold=0.3, min_size=1, scorer='entropy')


@pytest.mark.parametrize(
    ('change', 'match'),
    [
        (lambda d: d.pop('coef'), 'missing key.*coef'),
        (lambda d: d.update(extra=1), 'unknown key.*extra'),
        (lambda d: d.update(format='pickle'), "key 'format'"),
        (lambda d: d.update(version=99), "key 'version'"),
        (lambda d: d.update(feature_names=d['feature_names'][::-1]), "key 'feature_names'.*fit meta"),
        (lambda d: d['scale'].__setitem__(0, 0.0), "key 'scale'.*> 0"),
        (lambda d: d.update(mean=d['mean'][:-1]), "key 'mean'"),
        (lambda d: d['coef'].__setitem__(2, 'x'), "key 'coef'"),
        (lambda d: d.update(decision_threshold=1.5), "key 'decision_threshold'"),
        (lambda d: d.update(min_size=0), "key 'min_size'"),
        (lambda d: d.update(segment_threshold=None), "key 'segment_threshold'"),
        (lambda d: d.update(scorer=''), "key 'scorer'"),
    ],
)
def test_bad_json_is_refused_naming_the_key(tmp_path: Path, change, match: str) -> None:  # type: ignore[no-untyped-def]
    x, y = _separable(60)
    data = fit_logistic(x, y, segment_threshold=0.3, min_size=20, scorer='entropy').to_json()
    assert data['format'] == FORMAT
    change(data)
    path = tmp_path / 'meta.json'
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=match):
        MetaClassifier.load(path)


def test_unreadable_json(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match='not found'):
        MetaClassifier.load(tmp_path / 'nope.json')
    (tmp_path / 'bad.json').write_text('{"format": ')
    with pytest.raises(ConfigError, match='not valid JSON'):
        MetaClassifier.load(tmp_path / 'bad.json')
    (tmp_path / 'list.json').write_text('[]')
    with pytest.raises(ConfigError, match='JSON object'):
        MetaClassifier.load(tmp_path / 'list.json')


# --------------------------------------------------------------------------- fit meta end to end


def _copy_model(tiny_model: Path, tmp_path: Path) -> Path:
    import shutil

    dst = tmp_path / 'tiny'
    shutil.copytree(tiny_model, dst)
    return dst


def test_fit_meta_end_to_end(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from anomaly_seg_ros.cli import main
    from anomaly_seg_ros.config import load_model_config

    model = _copy_model(tiny_model, tmp_path)
    out = tmp_path / 'fit.json'
    # random weights: entropy is ~1 everywhere, the max logit varies (an unbounded scorer needs --thresholds)
    argv = ['fit', 'meta', '--model', str(model), '--synthetic', '8', '--seed', '2000', '--backend', 'torch']
    argv += ['--scorer', 'max_logit', '--thresholds=-0.242,-0.241,-0.240', '--min-size', '4', '--folds', '2']
    argv += ['--json', str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert 'table2' in text and 'cv_auroc' in text and 'obstacles' in text
    clf = MetaClassifier.load(model / 'meta.json')
    assert clf.min_size == 4 and clf.segment_threshold in (-0.242, -0.241, -0.24) and clf.scorer == 'max_logit'
    cfg = load_model_config(model)
    assert cfg.obstacles == {'meta': 'meta.json'} and 'meta' not in cfg.scorers
    raw = yaml.safe_load((model / 'model.yaml').read_text())
    assert raw['scorer'] == 'entropy'
    report = json.loads(out.read_text())
    rows = report['summary']['table2']
    assert set(rows) == {'t=-0.242', 't=-0.241', 't=-0.24'}
    for row in rows.values():  # a row without the classifier keeps every segment: at least the meta row's FP
        assert row['objects'] > 0 and row['FN'] <= row['objects']
        if row['meta_FP'] is not None:
            assert row['meta_FP'] <= row['FP'] and row['meta_FN'] >= row['FN']
    # a second fit needs --overwrite; an unbounded scorer needs --thresholds
    assert main(argv) == 2
    assert 'overwrite' in capsys.readouterr().err
    assert main([*argv[:12], '--overwrite']) == 2
    assert 'pass --thresholds' in capsys.readouterr().err


def test_fit_meta_refuses_frames_without_anomaly_ground_truth(tiny_model: Path, tmp_path: Path) -> None:
    import argparse

    import cv2

    from anomaly_seg_ros.config import load_model_config
    from anomaly_seg_ros.fit import meta
    from anomaly_seg_ros.fit.sources import open_frames

    model = _copy_model(tiny_model, tmp_path)
    images = tmp_path / 'images'
    images.mkdir()
    cv2.imwrite(str(images / 'a.png'), np.full((64, 128, 3), 90, np.uint8))
    p = argparse.ArgumentParser()
    from anomaly_seg_ros.fit.sources import add_source_arguments

    add_source_arguments(p)
    meta.add_arguments(p)
    args = p.parse_args(['--images', str(images), '--backend', 'torch'])
    frames = open_frames(args, load_model_config(model))
    with pytest.raises(DatasetError, match='no anomaly ground truth'):
        meta.fit(model, frames, args)


def test_bench_obstacles_maps_hold_exactly_k_segments(capsys: pytest.CaptureFixture[str]) -> None:
    from anomaly_seg_ros.cli import main
    from anomaly_seg_ros.cli.bench_obstacles import blob_maps

    for k in (1, 7, 150):
        score, aux = blob_maps(256, 128, k, seed=k)
        assert extract_segments(score, 0.5).count == k and set(aux) == set(AUX_MAPS.values())
    assert main(['bench-obstacles', '--sizes', '128x64', '--segments', '3,20', '--repeats', '2']) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[1].split()[:2] == ['128x64', '3'] and lines[2].split()[1] == '20'
    assert main(['bench-obstacles', '--sizes', '64x32', '--segments', '5000']) == 2


@pytest.mark.parametrize(
    ('entry', 'match'), [({'foo': 'x'}, 'obstacles.*unknown key.*foo'), ({'meta': ''}, 'obstacles.meta')]
)
def test_model_yaml_obstacles_key_is_checked(tiny_model: Path, tmp_path: Path, entry: dict, match: str) -> None:  # type: ignore[type-arg]
    from anomaly_seg_ros.config import load_model_config

    model = _copy_model(tiny_model, tmp_path)
    raw = yaml.safe_load((model / 'model.yaml').read_text())
    raw['obstacles'] = entry
    (model / 'model.yaml').write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=match):
        load_model_config(model)
