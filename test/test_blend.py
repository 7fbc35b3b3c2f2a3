"""Tests of Fishyscapes-style object blending (anomaly_seg_ros.data.blend)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.data.blend import (
    BlendConfig,
    BlendConfigError,
    _place,
    blend_object,
    blend_sample,
    load_objects,
)
from anomaly_seg_ros.data.blend_folder import blend_folder
from anomaly_seg_ros.data.sample import Sample
from anomaly_seg_ros.errors import ConfigError, DatasetError

H, W = 128, 256
QUIET = BlendConfig(glow_prob=0.0, in_distribution_prob=0.0)  # no glow: pixels off the objects stay exact


def _background(seed: int, h: int = H, w: int = W) -> np.ndarray:
    """Smooth grey-ish texture (RGB uint8)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(70, 150, size=(h // 8, w // 8, 3)).astype(np.uint8)
    return cv2.GaussianBlur(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), (0, 0), 2)


def _circle(rgb: tuple[int, int, int], r: int = 30) -> np.ndarray:
    obj = np.zeros((2 * r + 1, 2 * r + 1, 4), np.uint8)
    cv2.circle(obj, (r, r), r, (*rgb, 255), -1)
    return obj


def _square(rgb: tuple[int, int, int], side: int = 50) -> np.ndarray:
    obj = np.zeros((side + 10, side + 10, 4), np.uint8)
    obj[5:-5, 5:-5] = (*rgb, 255)
    return obj


ANOMALIES = [_circle((230, 20, 20)), _square((20, 230, 40))]
IN_DIST = [_circle((30, 40, 230), 25)]


def _write_rgba(path: Path, rgba: np.ndarray) -> None:
    assert cv2.imwrite(str(path), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))


@pytest.fixture()
def dirs(tmp_path: Path) -> dict[str, Path]:
    images, objects, in_dist = tmp_path / 'images', tmp_path / 'objects', tmp_path / 'in_dist'
    for d in (images, objects, in_dist):
        d.mkdir()
    for i in range(3):
        cv2.imwrite(str(images / f'frame{i}.png'), cv2.cvtColor(_background(i), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(images / 'frame3.jpg'), cv2.cvtColor(_background(3), cv2.COLOR_RGB2BGR))
    (images / 'notes.txt').write_text('not an image')
    _write_rgba(objects / 'circle.png', ANOMALIES[0])
    _write_rgba(objects / 'square.png', ANOMALIES[1])
    _write_rgba(in_dist / 'blue.png', IN_DIST[0])
    return {'images': images, 'objects': objects, 'in_dist': in_dist, 'root': tmp_path}


def _diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2)


# ---------------------------------------------------------------------------------------------------
# labels vs pixels


def test_anomaly_pixels_changed_and_other_pixels_untouched() -> None:
    for seed in range(6):
        bg = _background(seed)
        out = blend_sample(Sample(bg, name='f'), ANOMALIES, IN_DIST, QUIET, np.random.default_rng(seed))
        assert out.name == 'f_blend'
        assert out.image.shape == bg.shape and out.image.dtype == np.uint8
        assert out.anomaly is not None and out.anomaly.dtype == np.uint8 and out.anomaly.shape == (H, W)
        d = _diff(out.image, bg)
        on = out.anomaly == 1
        assert on.sum() > 30
        assert d[on].mean() > 40
        assert np.mean(d[on] > 15) > 0.95
        # No glow, no in-distribution objects: every pixel labelled 0 is byte-identical to the background.
        assert d[out.anomaly == 0].max() == 0
        assert set(np.unique(out.anomaly)) <= {0, 1, 255}


def test_far_pixels_only_slightly_changed_with_glow() -> None:
    cfg = BlendConfig(glow_prob=1.0, in_distribution_prob=0.0)
    for seed in range(4):
        bg = _background(seed)
        out = blend_sample(Sample(bg), ANOMALIES, [], cfg, np.random.default_rng(seed))
        near = (out.anomaly != 0).astype(np.uint8)
        dist = cv2.distanceTransform(1 - near, cv2.DIST_L2, 3)
        d = _diff(out.image, bg)
        assert d[dist > 25].max() <= 2
        assert d[(dist > 0) & (dist < 4)].max() > 0  # the glow brightens around the object


def test_soft_border_band_is_ignored() -> None:
    bands = 0
    for seed in range(5):
        out = blend_sample(Sample(_background(seed)), ANOMALIES, [], QUIET, np.random.default_rng(seed))
        one = (out.anomaly == 1).astype(np.uint8)
        zero = out.anomaly == 0
        grown = cv2.dilate(one, np.ones((3, 3), np.uint8)).astype(bool)
        assert not np.any(grown & zero), 'anomaly pixels must not touch in-distribution pixels directly'
        bands += int(np.count_nonzero(out.anomaly == 255))
    assert bands > 0


def test_blend_object_alpha_and_band_rule() -> None:
    bg = _background(0)
    out, alpha = blend_object(bg, ANOMALIES[0], 128.0, 110.0, 40.0, QUIET, np.random.default_rng(0))
    assert alpha.dtype == np.float32 and alpha.shape == (H, W)
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0
    assert alpha[90, 128] > 0.99  # centre of the circle (bottom 110, height 40)
    soft = (alpha > 0) & (alpha <= 0.5)
    assert soft.sum() > 20
    assert _diff(out, bg)[alpha == 0].max() == 0
    ys, xs = np.nonzero(alpha > 0.5)
    assert 68 <= ys.min() and ys.max() <= 111 and 106 <= xs.min() and xs.max() <= 150


def test_in_distribution_objects_change_pixels_but_label_zero() -> None:
    cfg = BlendConfig(in_distribution_prob=1.0, glow_prob=0.0)
    for seed in range(3):
        bg = _background(seed)
        labels = np.full((H, W), 7, np.uint8)
        out = blend_sample(Sample(bg, labels=labels), ANOMALIES, IN_DIST, cfg, np.random.default_rng(seed))
        assert not np.any(out.anomaly == 1)
        changed = _diff(out.image, bg) > 30
        assert changed.sum() > 30
        assert np.all(out.anomaly[changed] != 1)
        assert np.mean(out.anomaly[changed] == 0) > 0.5  # the object's core is labelled in-distribution
        assert np.any(out.anomaly == 255)  # its soft border is ignored like any other
        assert out.labels is not None and np.all(out.labels[changed] == 255)


def test_labels_and_existing_ignore() -> None:
    bg = _background(1)
    labels = np.zeros((H, W), np.uint8)
    anomaly = np.zeros((H, W), np.uint8)
    anomaly[:, :20] = 255  # e.g. ego vehicle / void
    out = blend_sample(Sample(bg, labels=labels, anomaly=anomaly), ANOMALIES, [], QUIET, np.random.default_rng(4))
    assert out.labels is not None
    free = np.ones((H, W), bool)
    free[:, :20] = False
    # Outside the pre-existing ignore area, labels are 255 exactly under the objects (core and rim).
    assert np.array_equal(out.labels[free] == 255, out.anomaly[free] != 0)
    assert np.any(out.anomaly == 1)
    untouched = _diff(out.image, bg) == 0
    assert np.all(out.anomaly[untouched & ~free] == 255)  # existing ignore kept where no object covers it
    assert np.all(anomaly[:, :20] == 255) and np.all(labels == 0)  # inputs not modified


def test_objects_override_existing_ignore() -> None:
    void = np.full((H, W), 255, np.uint8)
    cfg = BlendConfig(in_distribution_prob=0.5, glow_prob=0.0)
    out = blend_sample(Sample(_background(2), anomaly=void), ANOMALIES, IN_DIST, cfg, np.random.default_rng(1))
    values = set(np.unique(out.anomaly))
    assert 255 in values and values & {0, 1}  # object cores get their label, the rest stays ignored


# ---------------------------------------------------------------------------------------------------
# placement


def test_objects_lie_below_horizon() -> None:
    cfg = BlendConfig(horizon=0.5, objects_per_image=(2, 2), glow_prob=0.0, in_distribution_prob=0.0)
    y_h = math.ceil(cfg.horizon * H)
    for seed in range(10):
        out = blend_sample(Sample(_background(seed)), ANOMALIES, [], cfg, np.random.default_rng(seed))
        ys, _ = np.nonzero(out.anomaly == 1)
        assert ys.size and ys.min() >= y_h - 1
        ys, _ = np.nonzero(out.anomaly != 0)
        assert ys.min() >= y_h - 8  # only the soft, ignored rim may reach a few px above


def test_lower_objects_are_larger() -> None:
    rng = np.random.default_rng(0)
    cfg = BlendConfig(horizon=0.4, scale_range=(0.05, 0.3))
    places = [_place((60, 60, 4), 512, 1024, cfg, rng) for _ in range(300)]
    xs, ys, hs = (np.array(v) for v in zip(*places, strict=True))
    assert np.corrcoef(ys, hs)[0, 1] > 0.9
    assert np.all(ys - hs >= math.ceil(0.4 * 512)) and np.all(ys <= 512)
    assert np.all(hs >= 0.05 * 512 - 1) and np.all(hs <= 0.3 * 512 + 1)
    assert np.all(xs - hs / 2 >= 0) and np.all(xs + hs / 2 <= 1024)


# ---------------------------------------------------------------------------------------------------
# appearance


def _core_mean(out: np.ndarray, alpha: np.ndarray) -> float:
    return float(out[alpha > 0.99].mean())


def test_brightness_moves_towards_background() -> None:
    cfg = BlendConfig(color_noise=0.0, glow_prob=0.0, motion_blur=False, depth_blur=False)
    obj = _square((150, 150, 150))
    dark = np.full((H, W, 3), 25, np.uint8)
    bright = np.full((H, W, 3), 235, np.uint8)
    out_d, a_d = blend_object(dark, obj, 128.0, 120.0, 50.0, cfg, np.random.default_rng(0))
    out_b, a_b = blend_object(bright, obj, 128.0, 120.0, 50.0, cfg, np.random.default_rng(0))
    assert _core_mean(out_d, a_d) < 150 - 30
    assert _core_mean(out_b, a_b) > 150 + 20


def test_colour_shifts_towards_scene_cast() -> None:
    cfg = BlendConfig(color_noise=0.0, glow_prob=0.0, motion_blur=False, depth_blur=False)
    obj = _square((150, 150, 150))
    bluish = np.zeros((H, W, 3), np.uint8)
    bluish[:] = (90, 110, 170)
    out, alpha = blend_object(bluish, obj, 128.0, 120.0, 50.0, cfg, np.random.default_rng(0))
    r, g, b = out[alpha > 0.99].mean(axis=0)
    assert b > r + 10


# ---------------------------------------------------------------------------------------------------
# determinism


def test_same_seed_same_bytes_and_different_seeds_differ() -> None:
    bg = _background(0)
    a = blend_sample(Sample(bg), ANOMALIES, IN_DIST, BlendConfig(), np.random.default_rng(3))
    b = blend_sample(Sample(bg), ANOMALIES, IN_DIST, BlendConfig(), np.random.default_rng(3))
    c = blend_sample(Sample(bg), ANOMALIES, IN_DIST, BlendConfig(), np.random.default_rng(4))
    assert a.image.tobytes() == b.image.tobytes() and a.anomaly.tobytes() == b.anomaly.tobytes()
    assert a.image.tobytes() != c.image.tobytes()


def test_blend_folder_outputs(dirs: dict[str, Path]) -> None:
    out = dirs['root'] / 'out'
    cfg = BlendConfig(seed=5)
    n = blend_folder(dirs['images'], dirs['objects'], out, cfg, in_dist_dir=dirs['in_dist'], progress=False)
    assert n == 4
    stems = sorted(p.stem for p in (out / 'images').glob('*.png'))
    assert stems == ['frame0', 'frame1', 'frame2', 'frame3']
    assert sorted(p.stem for p in (out / 'labels').glob('*.png')) == stems
    for stem in stems:
        img = cv2.imread(str(out / 'images' / f'{stem}.png'), cv2.IMREAD_UNCHANGED)
        lab = cv2.imread(str(out / 'labels' / f'{stem}.png'), cv2.IMREAD_UNCHANGED)
        assert img.shape == (H, W, 3) and lab.shape == (H, W) and lab.dtype == np.uint8
        assert set(np.unique(lab)) <= {0, 1, 255}
    report = json.loads((out / 'blend.json').read_text())
    assert report['seed'] == 5 and report['config']['seed'] == 5
    assert report['counts']['images'] == 4
    assert report['objects'] == ['circle.png', 'square.png'] and report['in_dist_objects'] == ['blue.png']
    assert [e['source'] for e in report['images']] == ['frame0.png', 'frame1.png', 'frame2.png', 'frame3.jpg']
    pasted = sum(len(e['objects']) for e in report['images'])
    assert pasted == report['counts']['anomaly_objects'] + report['counts']['in_dist_objects']
    assert all(o['object'] in ('circle.png', 'square.png', 'blue.png') for e in report['images'] for o in e['objects'])


def test_blend_folder_deterministic_and_limit(dirs: dict[str, Path]) -> None:
    root = dirs['root']
    cfg = BlendConfig(seed=2)
    blend_folder(dirs['images'], dirs['objects'], root / 'a', cfg, progress=False)
    blend_folder(dirs['images'], dirs['objects'], root / 'b', cfg, progress=False)
    assert blend_folder(dirs['images'], dirs['objects'], root / 'c', BlendConfig(seed=3), limit=2, progress=False) == 2
    for sub in ('images', 'labels'):
        for p in (root / 'a' / sub).iterdir():
            assert p.read_bytes() == (root / 'b' / sub / p.name).read_bytes()
    assert (root / 'a' / 'blend.json').read_bytes() == (root / 'b' / 'blend.json').read_bytes()
    assert len(list((root / 'c' / 'images').iterdir())) == 2
    assert (root / 'a' / 'images' / 'frame0.png').read_bytes() != (root / 'c' / 'images' / 'frame0.png').read_bytes()


# ---------------------------------------------------------------------------------------------------
# loading and errors


def test_load_objects_rgba_order_and_crop(dirs: dict[str, Path]) -> None:
    objs = load_objects(dirs['objects'])
    assert len(objs) == 2
    circle, square = objs
    assert circle.dtype == np.uint8 and circle.shape == (61, 61, 4)
    assert tuple(circle[30, 30]) == (230, 20, 20, 255)
    assert square.shape == (50, 50, 4)  # transparent margin cropped away


def test_object_without_alpha_names_file(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / 'flat.png'), np.full((20, 20, 3), 128, np.uint8))
    with pytest.raises(DatasetError, match='flat.png'):
        load_objects(tmp_path)


def test_empty_objects_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match='no RGBA'):
        load_objects(tmp_path)
    with pytest.raises(DatasetError, match='does not exist'):
        load_objects(tmp_path / 'missing')


def test_unreadable_image_names_file(dirs: dict[str, Path]) -> None:
    (dirs['images'] / 'frame1.png').write_bytes(b'not a png')
    with pytest.raises(DatasetError, match='frame1.png'):
        blend_folder(dirs['images'], dirs['objects'], dirs['root'] / 'out', progress=False)


@pytest.mark.parametrize(
    ('field', 'value'),
    [
        ('scale_range', (0.3, 0.1)),
        ('scale_range', (0.0, 0.1)),
        ('objects_per_image', (3, 1)),
        ('objects_per_image', (0, 0)),
        ('in_distribution_prob', 1.5),
        ('glow_prob', -0.1),
        ('horizon', 1.0),
        ('color_noise', -0.01),
        ('smooth_alpha', -1.0),
        ('seed', -1),
        ('motion_blur', 'yes'),
    ],
)
def test_bad_config_names_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f'BlendConfig.{field}'):
        BlendConfig(**{field: value})  # type: ignore[arg-type]
    assert issubclass(BlendConfigError, ValueError)


def test_config_accepts_lists() -> None:
    cfg = BlendConfig(objects_per_image=[1, 3], scale_range=[0.1, 0.2])  # type: ignore[arg-type]
    assert cfg.objects_per_image == (1, 3) and cfg.scale_range == (0.1, 0.2)


def test_full_size_frames_blend() -> None:
    """A 1024x512 frame gets objects pasted with a mask of its size (speed: `anomaly-seg bench` prints it)."""
    bg = _background(0, 512, 1024)
    rng = np.random.default_rng(0)
    for _ in range(3):
        out = blend_sample(Sample(bg), ANOMALIES, IN_DIST, BlendConfig(), rng)
        assert out.image.shape == bg.shape and out.anomaly is not None and out.anomaly.shape == bg.shape[:2]
        assert not np.array_equal(out.image, bg) and (out.anomaly != 255).any()


def test_cli_blend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from anomaly_seg_ros.cli import main as cli_main

    images, objects = tmp_path / 'imgs', tmp_path / 'objs'
    images.mkdir()
    objects.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        cv2.imwrite(str(images / f'f{i}.png'), rng.integers(60, 120, (128, 256, 3), dtype=np.uint8))
    obj = np.zeros((40, 40, 4), np.uint8)
    cv2.circle(obj, (20, 20), 15, (255, 0, 255, 255), -1)
    cv2.imwrite(str(objects / 'o.png'), obj)
    rc = cli_main(
        [
            'blend',
            '--images',
            str(images),
            '--objects',
            str(objects),
            '--out',
            str(tmp_path / 'out'),
            '--objects-per-image',
            '1,1',
            '--in-dist-prob',
            '0',
            '--seed',
            '3',
        ]
    )
    assert rc == 0 and 'wrote 2 blended images' in capsys.readouterr().out
    labels = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted((tmp_path / 'out' / 'labels').glob('*.png'))]
    assert len(labels) == 2 and all((lab == 1).any() for lab in labels)
    rc = cli_main(
        [
            'blend',
            '--images',
            str(images),
            '--objects',
            str(objects),
            '--out',
            str(tmp_path / 'o2'),
            '--scale-range',
            '0.5,0.1',
        ]
    )
    assert rc == 2 and 'scale_range' in capsys.readouterr().err
