"""Tests of the synthetic road-scene world (anomaly_seg_ros.data.synthetic)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.classes import CITYSCAPES_CLASSES, IGNORE_ID, NUM_CLASSES, TRAIN_ID
from anomaly_seg_ros.data.sample import Sample
from anomaly_seg_ros.data.synthetic import (
    ANOMALY_FAMILIES,
    WEATHERS,
    SyntheticWorld,
    WorldConfig,
    WorldConfigError,
    generate,
)
from anomaly_seg_ros.data.synthetic.obstacle_shapes import OBSTACLE_SHAPES, obstacle_shape
from anomaly_seg_ros.data.synthetic.obstacle_textures import FAMILY_PATTERNS, PATTERNS
from anomaly_seg_ros.data.synthetic.obstacles import FAMILY_SHAPES
from anomaly_seg_ros.data.synthetic.render import FrameRenderer as _Renderer
from anomaly_seg_ros.errors import ConfigError

SMALL = WorldConfig(height=128, width=256)
MEDIUM = WorldConfig(height=256, width=512)
REQUIRED = ('road', 'sidewalk', 'building', 'vegetation', 'sky', 'pole', 'traffic sign', 'car', 'person')

# Hue bands (OpenCV hue = degrees / 2) of the two obstacle families.
TEST_HUES = (300.0, 180.0, 25.0)
PROXY_HUES = (270.0, 335.0, 57.0, 100.0)


def _render_with_horizon(seed: int, config: WorldConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    renderer = _Renderer(np.random.default_rng(seed), config)
    image, labels, anomaly = renderer.render()
    return image, labels, anomaly, renderer.cam.y_h


# ---------------------------------------------------------------------------------------------------
# determinism and API


def test_same_seed_gives_identical_bytes() -> None:
    a, b = generate(7, SMALL), generate(7, SMALL)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.labels.tobytes() == b.labels.tobytes()
    assert a.anomaly.tobytes() == b.anomaly.tobytes()
    assert a.name == b.name == 'synthetic-7'


def test_different_seeds_differ() -> None:
    a, b = generate(7, SMALL), generate(8, SMALL)
    assert a.image.tobytes() != b.image.tobytes()
    assert a.labels.tobytes() != b.labels.tobytes()


def test_generate_uses_no_global_rng_state() -> None:
    np.random.seed(1)
    a = generate(3, SMALL)
    np.random.seed(2)
    np.random.random(100)
    b = generate(3, SMALL)
    assert a.image.tobytes() == b.image.tobytes()


def test_render_matches_generate() -> None:
    image, labels, anomaly, _ = _render_with_horizon(11, SMALL)
    sample = generate(11, SMALL)
    assert np.array_equal(image, sample.image)
    assert np.array_equal(labels, sample.labels)
    assert np.array_equal(anomaly, sample.anomaly)


@pytest.mark.parametrize('size', [(32, 32), (33, 47), (128, 256), (512, 1024)])
def test_dtypes_shapes_values(size: tuple[int, int]) -> None:
    h, w = size
    config = WorldConfig(height=h, width=w, anomaly_prob=0.7, ignore_band=1)
    for seed in range(3):
        s = generate(seed, config)
        assert isinstance(s, Sample)
        assert s.image.shape == (h, w, 3) and s.image.dtype == np.uint8
        assert s.labels.shape == (h, w) and s.labels.dtype == np.uint8
        assert s.anomaly.shape == (h, w) and s.anomaly.dtype == np.uint8
        assert set(np.unique(s.labels).tolist()) <= set(range(NUM_CLASSES)) | {IGNORE_ID}
        assert set(np.unique(s.anomaly).tolist()) <= {0, 1, 255}


def test_world_is_a_sequence() -> None:
    world = SyntheticWorld(5, seed=3, config=SMALL)
    assert len(world) == 5
    frame = world[2]
    direct = generate(3 * SyntheticWorld.SEED_STRIDE + 2, SMALL)
    assert frame.name == 'synthetic-s3-000002'
    assert np.array_equal(frame.image, direct.image)
    assert np.array_equal(frame.labels, direct.labels)
    assert np.array_equal(world[-1].image, world[4].image)
    assert [s.name for s in world] == [f'synthetic-s3-{i:06d}' for i in range(5)]
    with pytest.raises(IndexError):
        world[5]
    with pytest.raises(IndexError):
        world[-6]
    with pytest.raises(TypeError):
        world['1']  # type: ignore[index]
    assert len(SyntheticWorld(0)) == 0
    assert SyntheticWorld(2, seed=4, config=SMALL)[0].image.tobytes() != world[0].image.tobytes()


@pytest.mark.parametrize(
    ('kwargs', 'field'),
    [
        ({'height': 31}, 'height'),
        ({'width': 16}, 'width'),
        ({'height': 64.0}, 'height'),
        ({'anomaly_prob': -0.1}, 'anomaly_prob'),
        ({'anomaly_prob': 1.5}, 'anomaly_prob'),
        ({'anomaly_prob': float('nan')}, 'anomaly_prob'),
        ({'anomaly_family': 'other'}, 'anomaly_family'),
        ({'max_anomalies': -1}, 'max_anomalies'),
        ({'max_anomalies': 0}, 'max_anomalies'),
        ({'ignore_band': -2}, 'ignore_band'),
        ({'weather': 'snow'}, 'weather'),
        ({'weather': None}, 'weather'),
        ({'void_objects': 1}, 'void_objects'),
    ],
)
def test_config_validation(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field) as info:
        WorldConfig(**kwargs)
    assert isinstance(info.value, ConfigError)
    assert isinstance(info.value, WorldConfigError)


def test_config_edge_values_are_accepted() -> None:
    WorldConfig(height=32, width=32, anomaly_prob=0.0, max_anomalies=0)
    WorldConfig(anomaly_prob=1)
    for family in ANOMALY_FAMILIES:
        WorldConfig(anomaly_family=family)
    for weather in ('random', *WEATHERS):
        WorldConfig(weather=weather)
    WorldConfig(void_objects=False)


def test_bad_seeds_rejected() -> None:
    with pytest.raises(ValueError, match='seed'):
        generate(-1, SMALL)
    with pytest.raises(ValueError, match='seed'):
        SyntheticWorld(3, seed=-5)
    with pytest.raises(ValueError, match='n'):
        SyntheticWorld(-1)


# ---------------------------------------------------------------------------------------------------
# scene content


def test_labels_align_with_pixels() -> None:
    """Image gradients are strongest on label boundaries: the best offset between the two is zero."""
    config = replace_cfg(MEDIUM, anomaly_prob=0.5)
    for seed in range(4):
        s = generate(seed, config)
        grey = cv2.cvtColor(s.image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        for axis in (0, 1):
            grad = np.abs(np.diff(grey, axis=axis))
            edge = np.diff(s.labels.astype(np.int16), axis=axis) != 0
            offsets = range(-5, 6)
            score = [grad[np.roll(edge, k, axis=axis)].mean() for k in offsets]
            assert int(np.argmax(score)) == 5, (seed, axis, score)
            assert score[5] > 2.0 * np.mean(score[:3] + score[-3:]), (seed, axis, score)


def test_layout_sky_on_top_road_at_bottom_centre() -> None:
    config = replace_cfg(MEDIUM, anomaly_prob=0.0)
    bottom_road = []
    for seed in range(10):
        s = generate(seed, config)
        rows = np.arange(s.labels.shape[0])[:, None]
        sky = s.labels == TRAIN_ID['sky']
        road = s.labels == TRAIN_ID['road']
        if sky.any():
            assert (rows * sky).sum() / sky.sum() < (rows * road).sum() / road.sum()
        h, w = s.labels.shape
        bottom = s.labels[int(0.9 * h) :, w // 3 : 2 * w // 3]
        known = bottom != IGNORE_ID  # the ego bonnet (void) covers the bottom of some frames
        if known.mean() > 0.2:
            bottom_road.append((bottom[known] == TRAIN_ID['road']).mean())
    assert len(bottom_road) >= 6
    assert np.mean(bottom_road) > 0.6


def test_class_colours_are_plausible() -> None:
    config = replace_cfg(MEDIUM, anomaly_prob=0.0, weather='clear')  # (a night sky is darker than the road)
    brighter_sky, greener_veg, n_sky, n_veg = 0, 0, 0, 0
    for seed in range(12):
        s = generate(seed, config)
        img = s.image.astype(np.float32)

        def mean(name: str, s=s, img=img) -> np.ndarray | None:  # type: ignore[no-untyped-def]
            m = s.labels == TRAIN_ID[name]
            return img[m].mean(axis=0) if m.sum() > 50 else None

        road, sky, veg = mean('road'), mean('sky'), mean('vegetation')
        if sky is not None:
            n_sky += 1
            brighter_sky += int(sky.mean() > road.mean())
        if veg is not None:
            n_veg += 1
            greener_veg += int(veg[1] - 0.5 * (veg[0] + veg[2]) > road[1] - 0.5 * (road[0] + road[2]))
    assert n_sky >= 6 and n_veg >= 6
    assert brighter_sky >= 0.9 * n_sky
    assert greener_veg >= 0.9 * n_veg


def test_required_classes_appear() -> None:
    seen: set[int] = set()
    for seed in range(20):
        seen |= set(np.unique(generate(seed, MEDIUM).labels).tolist())
    missing = [name for name in REQUIRED if TRAIN_ID[name] not in seen]
    assert not missing


# ---------------------------------------------------------------------------------------------------
# anomalies


def test_no_anomalies_when_prob_zero() -> None:
    config = replace_cfg(SMALL, anomaly_prob=0.0, max_anomalies=0)
    for seed in range(10):
        s = generate(seed, config)
        assert not (s.anomaly == 1).any()
        # the only ignore pixels are void objects: 255 in both maps
        assert np.array_equal(s.labels == IGNORE_ID, s.anomaly == 255)
    plain = replace_cfg(config, void_objects=False)
    for seed in range(10):
        s = generate(seed, plain)
        assert not s.anomaly.any()
        assert not (s.labels == IGNORE_ID).any()


def test_every_frame_has_anomalies_when_prob_one() -> None:
    for size in ((32, 32), (64, 128), (256, 512)):
        config = WorldConfig(height=size[0], width=size[1], anomaly_prob=1.0)
        for seed in range(8):
            assert (generate(seed, config).anomaly == 1).any(), (size, seed)


@pytest.mark.parametrize('family', ANOMALY_FAMILIES)
def test_anomalies_stand_on_the_road(family: str) -> None:
    config = replace_cfg(MEDIUM, anomaly_prob=1.0, anomaly_family=family)
    road = TRAIN_ID['road']
    for seed in range(12):
        _image, labels, anomaly, y_h = _render_with_horizon(seed, config)
        obstacle = anomaly == 1
        # seg labels are ignore on obstacle pixels; the other ignore pixels are void (anomaly 255)
        assert (labels[obstacle] == IGNORE_ID).all()
        assert (anomaly[(labels == IGNORE_ID) & ~obstacle] == 255).all()
        assert (labels[anomaly == 255] == IGNORE_ID).all()  # (no ignore band here)
        ys, _xs = np.nonzero(obstacle)
        assert ys.min() > y_h, seed
        n, components = cv2.connectedComponents(obstacle.astype(np.uint8), connectivity=8)
        for k in range(1, n):
            comp = (components == k).astype(np.uint8)
            ring = cv2.dilate(comp, np.ones((5, 5), np.uint8)).astype(bool) & ~comp.astype(bool)
            touches_bottom = comp[-1].any()
            assert touches_bottom or (labels[ring] == road).any(), (seed, k)


def test_anomaly_count_respects_max() -> None:
    config = replace_cfg(MEDIUM, anomaly_prob=1.0, max_anomalies=1)
    for seed in range(8):
        anomaly = generate(seed, config).anomaly
        n, _ = cv2.connectedComponents((anomaly == 1).astype(np.uint8), connectivity=8)
        assert n - 1 <= 2  # one obstacle (a thin one may split into two 8-connected pieces)


def _hue_fractions(family: str) -> tuple[float, float]:
    # colours are compared under neutral light (a dusk tint moves hues by design)
    config = replace_cfg(MEDIUM, anomaly_prob=1.0, anomaly_family=family, weather='clear')
    hues = []
    for seed in range(12):
        s = generate(seed, config)
        hsv = cv2.cvtColor(s.image, cv2.COLOR_RGB2HSV_FULL).astype(np.float32)
        saturated = (s.anomaly == 1) & (hsv[..., 1] > 150) & (hsv[..., 2] > 60)
        hues.append(hsv[..., 0][saturated] * 360.0 / 256.0)
    h = np.concatenate(hues)
    assert h.size > 200

    def near(centres: tuple[float, ...]) -> float:
        dist = np.min([np.abs((h - c + 180.0) % 360.0 - 180.0) for c in centres], axis=0)
        return float((dist < 18.0).mean())

    return near(TEST_HUES), near(PROXY_HUES)


def test_families_have_disjoint_colours() -> None:
    test_in_test, test_in_proxy = _hue_fractions('test')
    proxy_in_test, proxy_in_proxy = _hue_fractions('proxy')
    assert test_in_test > 0.8 and test_in_proxy < 0.15
    assert proxy_in_proxy > 0.8 and proxy_in_test < 0.15


def test_obstacles_do_not_reshuffle_the_scene() -> None:
    """Same seed with and without obstacles, or with either family: mostly the same frame."""
    # (vegetation is left out: street trees are objects that an obstacle may displace)
    stuff = [TRAIN_ID[n] for n in ('road', 'sidewalk', 'building', 'wall', 'fence', 'terrain', 'sky')]
    shared = []
    for seed in range(6):
        clean = generate(seed, replace_cfg(MEDIUM, anomaly_prob=0.0))
        for family in ANOMALY_FAMILIES:
            s = generate(seed, replace_cfg(MEDIUM, anomaly_prob=1.0, anomaly_family=family))
            # background (stuff) pixels are the same; only objects an obstacle displaces may change
            both = np.isin(s.labels, stuff) & np.isin(clean.labels, stuff)
            assert both.mean() > 0.1
            shared.append(both.mean())
            assert (s.labels == clean.labels)[both].mean() > 0.995, (seed, family)
    assert np.mean(shared) > 0.3


def test_ignore_band_surrounds_obstacles() -> None:
    config = replace_cfg(MEDIUM, anomaly_prob=1.0, ignore_band=3)
    for seed in range(4):
        s = generate(seed, config)
        anomaly = s.anomaly
        band = (anomaly == 255) & (s.labels != IGNORE_ID)  # void objects are 255 in both maps
        assert band.any()
        near = cv2.dilate((anomaly == 1).astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        assert not (band & ~near).any()


def test_obstacle_sizes_range_from_tiny_to_large() -> None:
    config = replace_cfg(MEDIUM, anomaly_prob=1.0, max_anomalies=3)
    widths = []
    for seed in range(30):
        obstacle = generate(seed, config).anomaly == 1
        n, comps, stats, _ = cv2.connectedComponentsWithStats(obstacle.astype(np.uint8), connectivity=8)
        widths += stats[1:, cv2.CC_STAT_WIDTH].tolist()
    assert min(widths) <= 8  # a few pixels far away
    assert max(widths) >= MEDIUM.width / 8  # large near by (up to about a quarter of the width)


# ---------------------------------------------------------------------------------------------------
# all classes, weather, void objects


def test_all_classes_appear_regularly() -> None:
    config = replace_cfg(MEDIUM, anomaly_prob=0.0)
    frames = np.zeros(NUM_CLASSES, dtype=int)
    for seed in range(60):
        present = np.unique(generate(seed, config).labels)
        frames[present[present < NUM_CLASSES]] += 1
    rare = {CITYSCAPES_CLASSES[i]: int(frames[i]) for i in range(NUM_CLASSES) if frames[i] < 3}
    assert not rare, rare  # each class in at least 5% of frames


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)


def test_weathers_render_and_look_as_expected() -> None:
    config = replace_cfg(MEDIUM, anomaly_prob=1.0)
    for seed in range(3):
        frames = {w: generate(seed, replace_cfg(config, weather=w)) for w in WEATHERS}
        images = [f.image.tobytes() for f in frames.values()]
        assert len(set(images)) == len(WEATHERS)  # every condition changes the pixels
        clear = _grey(frames['clear'].image)
        assert _grey(frames['night'].image).mean() < 0.6 * clear.mean(), seed
        assert _grey(frames['dusk'].image).mean() < clear.mean(), seed
        half = clear.shape[0] // 2
        assert _grey(frames['fog'].image)[:half].std() < 0.8 * clear[:half].std(), seed


def test_weather_changes_pixels_only() -> None:
    """Same seed, any weather: identical labels and anomaly GT; 'random' renders the weather it drew."""
    config = replace_cfg(MEDIUM, anomaly_prob=1.0)
    drawn = set()
    for seed in range(8):
        renderer = _Renderer(np.random.default_rng(seed), config)  # weather='random'
        image, labels, anomaly = renderer.render()
        drawn.add(renderer.weather)
        fixed = generate(seed, replace_cfg(config, weather=renderer.weather))
        assert fixed.image.tobytes() == image.tobytes()
        for weather in ('clear', 'fog') if seed >= 2 else WEATHERS:
            s = generate(seed, replace_cfg(config, weather=weather))
            assert np.array_equal(s.labels, labels), (seed, weather)
            assert np.array_equal(s.anomaly, anomaly), (seed, weather)
    assert len(drawn) >= 3


@pytest.mark.parametrize('weather', ['night', 'rain', 'fog', 'dusk'])
def test_weather_is_deterministic(weather: str) -> None:
    config = replace_cfg(SMALL, anomaly_prob=1.0, weather=weather)
    a, b = generate(5, config), generate(5, config)
    assert a.image.tobytes() == b.image.tobytes()


def _void_components(labels: np.ndarray, anomaly: np.ndarray) -> tuple[int, np.ndarray]:
    void = (labels == IGNORE_ID) & (anomaly != 1)
    n, comps = cv2.connectedComponents(void.astype(np.uint8), connectivity=8)
    return n, comps


def test_void_objects_are_ignored_and_off_the_road() -> None:
    config = replace_cfg(MEDIUM, anomaly_prob=1.0)
    road = TRAIN_ID['road']
    with_void = with_bonnet = 0
    for seed in range(24):
        renderer = _Renderer(np.random.default_rng(seed), config)
        _image, labels, anomaly = renderer.render()
        void = (labels == IGNORE_ID) & (anomaly != 1)
        assert (anomaly[void] == 255).all()  # Fishyscapes: void is ignore
        # every void object stands on a sidewalk, clear of the road (world footprint)
        for obj in renderer.objects:
            if obj.void:
                X0, X1, _d0, _d1 = obj.footprint
                walks = [s.walk for s in renderer.sides if s.walk is not None]
                assert any(min(w) <= X0 and X1 <= max(w) for w in walks), (seed, obj.footprint)
                xl, xr = renderer.road
                assert X1 < xl or X0 > xr
        n, comps = _void_components(labels, anomaly)
        below_road, below = 0, 0
        for k in range(1, n):
            comp = comps == k
            if comp[-1].any():  # the ego bonnet: along the bottom edge
                with_bonnet += 1
                continue
            # the ground just below the object's lowest pixel in each column is never road
            cols = np.nonzero(comp.any(axis=0))[0]
            bottom = comp.shape[0] - 1 - np.argmax(comp[::-1, cols], axis=0)
            ok = bottom + 1 < comp.shape[0]
            below += int(ok.sum())
            below_road += int((labels[bottom[ok] + 1, cols[ok]] == road).sum())
        assert below_road <= 0.05 * max(below, 1), (seed, below_road, below)
        with_void += int(n > 1)
    assert with_void >= 12
    assert with_bonnet >= 2


def test_obstacle_shape_registry_matches_the_families() -> None:
    """Every shape a family names has a builder, every builder belongs to one family, and the families are disjoint."""
    test, proxy = set(FAMILY_SHAPES['test']), set(FAMILY_SHAPES['proxy'])
    assert not test & proxy
    assert test | proxy == set(OBSTACLE_SHAPES)
    assert obstacle_shape('crate') is OBSTACLE_SHAPES['crate']
    with pytest.raises(KeyError, match="unknown obstacle shape 'sofa'.*'crate'"):
        obstacle_shape('sofa')


def test_pattern_registry_matches_the_families() -> None:
    test, proxy = set(FAMILY_PATTERNS['test']), set(FAMILY_PATTERNS['proxy'])
    assert not test & proxy
    assert test | proxy == set(PATTERNS)


def replace_cfg(config: WorldConfig, **changes: object) -> WorldConfig:
    from dataclasses import replace

    return replace(config, **changes)
