"""Tests of the dataset readers (anomaly_seg_ros.data.readers) on tiny trees of each on-disk layout."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.data import readers
from anomaly_seg_ros.data.readers import (
    CITYSCAPES_LABEL_TO_TRAIN_ID,
    DATASET_FORMATS,
    CityscapesReader,
    FishyscapesReader,
    FolderReader,
    LostAndFoundReader,
    RoadAnomalyReader,
    SmiycReader,
    open_dataset,
)
from anomaly_seg_ros.data.sample import Sample
from anomaly_seg_ros.errors import DatasetError

H, W = 16, 32


def _rgb(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _write_image(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _write_mask(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), mask)


def _mask(*values: int, dtype: type = np.uint8) -> np.ndarray:
    """An HxW mask with ``values`` in equal vertical bands."""
    m: np.ndarray = np.zeros((H, W), dtype=dtype)
    for i, v in enumerate(values):
        m[:, i * W // len(values) : (i + 1) * W // len(values)] = v
    return m


def _bands(*values: int) -> np.ndarray:
    """An 8-bit HxW mask with ``values`` in equal vertical bands."""
    return _mask(*values)


def _m(*parts: str) -> str:
    """A regex matching all ``parts`` (literally), in this order."""
    return '.*'.join(re.escape(p) for p in parts)


def _check_sample(s: Sample, rgb: np.ndarray | None = None) -> None:
    assert s.image.shape == (H, W, 3) and s.image.dtype == np.uint8
    if rgb is not None:  # PNG is lossless, so RGB order survives exactly
        np.testing.assert_array_equal(s.image, rgb)
    for m in (s.labels, s.anomaly):
        if m is not None:
            assert m.shape == (H, W) and m.dtype == np.uint8


# ----------------------------------------------------------------------------------------------------
# Cityscapes


def _cityscapes(tmp: Path, kind: str, masks: dict[str, np.ndarray | None]) -> dict[str, np.ndarray]:
    """Frames ``{city}_{seq}_{frame}`` -> image; label files of ``kind`` ('labelIds' / 'labelTrainIds')."""
    images = {}
    for i, (stem, mask) in enumerate(masks.items()):
        city = stem.split('_')[0]
        rgb = _rgb(i)
        _write_image(tmp / 'leftImg8bit' / 'val' / city / f'{stem}_leftImg8bit.png', rgb)
        if mask is not None:
            _write_mask(tmp / 'gtFine' / 'val' / city / f'{stem}_gtFine_{kind}.png', mask)
        images[stem] = rgb
    return images


def test_cityscapes_label_ids_are_mapped(tmp_path: Path) -> None:
    images = _cityscapes(
        tmp_path,
        'labelIds',
        {
            'zurich_000000_000019': _bands(7, 26, 0, 255),
            'aachen_000001_000019': _bands(33, 8, 4),
        },
    )
    r = CityscapesReader(tmp_path)
    assert len(r) == 2
    assert r.names == ['aachen/aachen_000001_000019_leftImg8bit', 'zurich/zurich_000000_000019_leftImg8bit']
    a, z = r[0], r[1]
    _check_sample(a, images['aachen_000001_000019'])
    _check_sample(z, images['zurich_000000_000019'])
    assert a.anomaly is None and z.anomaly is None
    np.testing.assert_array_equal(z.labels, _bands(0, 13, 255, 255))
    np.testing.assert_array_equal(a.labels, _bands(18, 1, 255))
    assert r[-1].name == z.name
    assert [s.name for s in r] == r.names


def test_cityscapes_table_is_official() -> None:
    assert CITYSCAPES_LABEL_TO_TRAIN_ID[7] == 0 and CITYSCAPES_LABEL_TO_TRAIN_ID[33] == 18
    assert sorted(CITYSCAPES_LABEL_TO_TRAIN_ID.values()) == list(range(19))


def test_cityscapes_train_ids_pass_through_and_auto_prefers_them(tmp_path: Path) -> None:
    _cityscapes(tmp_path, 'labelTrainIds', {'bonn_000000_000001': _bands(0, 5, 18, 255)})
    # a labelIds file beside it must be ignored in 'auto' and 'trainIds' mode
    _write_mask(tmp_path / 'gtFine/val/bonn/bonn_000000_000001_gtFine_labelIds.png', _bands(7, 7, 7, 7))
    for source in ('auto', 'trainIds'):
        s = CityscapesReader(tmp_path, label_source=source)[0]
        _check_sample(s)
        np.testing.assert_array_equal(s.labels, _bands(0, 5, 18, 255))
    s = CityscapesReader(tmp_path, label_source='labelIds')[0]
    np.testing.assert_array_equal(s.labels, _bands(0, 0, 0, 0))


def test_cityscapes_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match='nowhere'):
        CityscapesReader(tmp_path / 'nowhere')
    with pytest.raises(DatasetError, match=_m('leftImg8bit', 'val')):
        CityscapesReader(tmp_path)
    with pytest.raises(DatasetError, match='label_source'):
        CityscapesReader(tmp_path, label_source='colors')
    (tmp_path / 'leftImg8bit/val/bonn').mkdir(parents=True)
    (tmp_path / 'gtFine/val').mkdir(parents=True)
    with pytest.raises(DatasetError, match=_m('*/*_leftImg8bit.png', 'leftImg8bit/val')):
        CityscapesReader(tmp_path)
    _cityscapes(
        tmp_path,
        'labelIds',
        {
            'bonn_000000_000001': _bands(7, 40),  # 40 is no Cityscapes labelId
            'bonn_000000_000002': None,  # no label at all
            'bonn_000000_000003': np.zeros((H + 1, W), np.uint8),
        },
    )
    r = CityscapesReader(tmp_path)
    with pytest.raises(DatasetError, match=_m('labelId value 40', 'bonn_000000_000001_gtFine_labelIds.png')):
        r[0]
    with pytest.raises(
        DatasetError,
        match=_m(
            'bonn_000000_000002_leftImg8bit.png',
            'bonn_000000_000002_gtFine_labelTrainIds.png',
            'bonn_000000_000002_gtFine_labelIds.png',
        ),
    ):
        r[1]
    with pytest.raises(DatasetError, match=_m('bonn_000000_000003_gtFine_labelIds.png', '32x17', '32x16')):
        r[2]
    _write_mask(tmp_path / 'gtFine/val/bonn/bonn_000000_000001_gtFine_labelTrainIds.png', _bands(3, 19))
    with pytest.raises(DatasetError, match=_m('trainId value 19', 'bonn_000000_000001_gtFine_labelTrainIds.png')):
        CityscapesReader(tmp_path, label_source='trainIds')[0]
    with pytest.raises(IndexError):
        r[3]


# ----------------------------------------------------------------------------------------------------
# Lost and Found


def _laf(tmp: Path, masks: dict[tuple[str, str], np.ndarray | None]) -> dict[str, np.ndarray]:
    images = {}
    for i, ((seq, name), mask) in enumerate(masks.items()):
        rgb = _rgb(10 + i)
        _write_image(tmp / 'leftImg8bit' / 'test' / seq / f'{name}_leftImg8bit.png', rgb)
        if mask is not None:
            _write_mask(tmp / 'gtCoarse' / 'test' / seq / f'{name}_gtCoarse_labelIds.png', mask)
        images[name] = rgb
    return images


def test_lost_and_found(tmp_path: Path) -> None:
    seq = '04_Maurener_Weg_8'
    images = _laf(
        tmp_path,
        {
            (seq, f'{seq}_000002_000060'): _bands(1, 5, 0, 43),
            (seq, f'{seq}_000000_000030'): _bands(1, 1),
        },
    )
    r = LostAndFoundReader(tmp_path)
    assert r.names == [f'{seq}/{seq}_000000_000030_leftImg8bit', f'{seq}/{seq}_000002_000060_leftImg8bit']
    s0, s1 = list(r)
    _check_sample(s0, images[f'{seq}_000000_000030'])
    _check_sample(s1, images[f'{seq}_000002_000060'])
    assert s0.labels is None and s1.labels is None
    np.testing.assert_array_equal(s0.anomaly, _bands(0, 0))
    np.testing.assert_array_equal(s1.anomaly, _bands(0, 1, 255, 1))


def test_lost_and_found_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match='nowhere'):
        LostAndFoundReader(tmp_path / 'nowhere')
    _laf(tmp_path, {('s', 's_000000_000001'): None})
    with pytest.raises(DatasetError, match=_m('gtCoarse', 'test')):
        LostAndFoundReader(tmp_path)
    _laf(
        tmp_path,
        {
            ('s', 's_000000_000002'): _mask(1, 300, dtype=np.uint16),
            ('s', 's_000000_000003'): _bands(1, 2, 44),
        },
    )
    r = LostAndFoundReader(tmp_path)
    with pytest.raises(
        DatasetError, match=_m('s_000000_000001_leftImg8bit.png', 's_000000_000001_gtCoarse_labelIds.png')
    ):
        r[0]
    with pytest.raises(DatasetError, match=_m('labelId value 300', 's_000000_000002_gtCoarse_labelIds.png')):
        r[1]
    with pytest.raises(DatasetError, match=_m('labelId value 44', 's_000000_000003_gtCoarse_labelIds.png')):
        r[2]


# ----------------------------------------------------------------------------------------------------
# Fishyscapes


@pytest.mark.parametrize(
    'variant, sub, image_folder',
    [
        ('lostandfound', '', 'images'),
        ('lostandfound', 'LostAndFound', 'original'),
        ('static', 'Static', 'images'),
    ],
)
def test_fishyscapes_layouts(tmp_path: Path, variant: str, sub: str, image_folder: str) -> None:
    base = tmp_path / sub if sub else tmp_path
    rgb_b = _rgb(21)
    _write_image(base / image_folder / 'b_leftImg8bit.png', rgb_b)
    _write_mask(base / 'labels' / 'b_labels.png', _bands(0, 1, 255))
    _write_image(base / image_folder / 'a.png', _rgb(20))
    _write_mask(base / 'labels' / 'a.png', _bands(1, 0))
    r = FishyscapesReader(tmp_path, variant=variant)
    assert r.names == ['a', 'b_leftImg8bit']
    a, b = r[0], r[1]
    _check_sample(a, _rgb(20))
    _check_sample(b, rgb_b)
    assert a.labels is None
    np.testing.assert_array_equal(a.anomaly, _bands(1, 0))
    np.testing.assert_array_equal(b.anomaly, _bands(0, 1, 255))


def test_fishyscapes_jpeg_image(tmp_path: Path) -> None:
    _write_image(tmp_path / 'images' / '0001.jpg', _rgb(3))
    _write_mask(tmp_path / 'labels' / '0001_mask.png', _bands(0, 1))
    s = FishyscapesReader(tmp_path)[0]
    _check_sample(s)
    np.testing.assert_array_equal(s.anomaly, _bands(0, 1))


def test_fishyscapes_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match='variant'):
        FishyscapesReader(tmp_path, variant='web')
    with pytest.raises(DatasetError, match=_m('images/', 'original/', str(tmp_path))):
        FishyscapesReader(tmp_path)
    (tmp_path / 'images').mkdir()
    with pytest.raises(DatasetError, match=re.escape(str(tmp_path / 'labels'))):
        FishyscapesReader(tmp_path)
    (tmp_path / 'labels').mkdir()
    with pytest.raises(DatasetError, match=_m("'*'", str(tmp_path / 'images'))):
        FishyscapesReader(tmp_path)
    _write_image(tmp_path / 'images' / 'a.png', _rgb(0))
    _write_mask(tmp_path / 'labels' / 'a_labels.png', _bands(0, 2, 7))
    _write_image(tmp_path / 'images' / 'b.png', _rgb(1))
    _write_mask(tmp_path / 'labels' / 'c_labels.png', _bands(0))
    r = FishyscapesReader(tmp_path)
    assert r.names == ['a', 'b']
    with pytest.raises(DatasetError, match=_m('values 2, 7', 'a_labels.png')):
        r[0]
    with pytest.raises(DatasetError, match=_m('b.png', 'labels', "'b'")):
        r[1]
    _write_mask(tmp_path / 'labels' / 'a_mask.png', _bands(0))
    with pytest.raises(DatasetError, match=_m('a_labels.png', 'a_mask.png')):
        FishyscapesReader(tmp_path)


# ----------------------------------------------------------------------------------------------------
# Road Anomaly


def test_road_anomaly(tmp_path: Path) -> None:
    frames = tmp_path / 'frames'
    _write_image(frames / 'zebra.png', _rgb(31))
    _write_mask(frames / 'zebra.labels' / 'labels_semantic.png', _bands(0, 2, 1))
    _write_image(frames / 'animals01_cows.jpg', _rgb(30))
    _write_mask(frames / 'animals01_cows.labels' / 'labels_semantic.png', _bands(2, 0))
    r = RoadAnomalyReader(tmp_path)
    assert r.names == ['animals01_cows', 'zebra']
    cows, zebra = r[0], r[1]
    _check_sample(cows)  # JPEG: shape only
    _check_sample(zebra, _rgb(31))
    np.testing.assert_array_equal(cows.anomaly, _bands(1, 0))
    np.testing.assert_array_equal(zebra.anomaly, _bands(0, 1, 255))


def test_road_anomaly_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=re.escape(str(tmp_path / 'frames'))):
        RoadAnomalyReader(tmp_path)
    frames = tmp_path / 'frames'
    _write_image(frames / 'a.jpg', _rgb(0))
    _write_mask(frames / 'a.labels' / 'labels_semantic.png', _bands(0, 3))
    _write_image(frames / 'b.jpg', _rgb(1))
    r = RoadAnomalyReader(tmp_path)
    with pytest.raises(DatasetError, match=_m('value 3', 'a.labels/labels_semantic.png')):
        r[0]
    with pytest.raises(DatasetError, match=_m('b.jpg', 'b.labels/labels_semantic.png')):
        r[1]


# ----------------------------------------------------------------------------------------------------
# SegmentMeIfYouCan


@pytest.mark.parametrize('track, sub', [('RoadAnomaly21', 'dataset_AnomalyTrack'), ('RoadObstacle21', '')])
def test_smiyc(tmp_path: Path, track: str, sub: str) -> None:
    base = tmp_path / sub if sub else tmp_path
    _write_image(base / 'images' / 'validation_0001.png', _rgb(41))
    _write_mask(base / 'labels_masks' / 'validation_0001_labels_semantic.png', _bands(0, 1, 255))
    _write_image(base / 'images' / 'validation_0000.webp', _rgb(40))
    _write_mask(base / 'labels_masks' / 'validation_0000_labels_semantic.png', _bands(1, 1))
    _write_image(base / 'images' / 'test_0000.jpg', _rgb(42))  # hidden test frame: no label
    r = SmiycReader(tmp_path, track=track)
    assert r.names == ['test_0000', 'validation_0000', 'validation_0001']
    t, v0, v1 = list(r)
    for s in (t, v0, v1):
        _check_sample(s)
    assert t.anomaly is None
    np.testing.assert_array_equal(v0.anomaly, _bands(1, 1))
    np.testing.assert_array_equal(v1.anomaly, _bands(0, 1, 255))
    np.testing.assert_array_equal(v1.image, _rgb(41))
    with pytest.raises(DatasetError, match=_m('test_0000.jpg', 'test_0000_labels_semantic.png')):
        SmiycReader(tmp_path, track=track, require_labels=True)[0]


def test_smiyc_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match='track'):
        SmiycReader(tmp_path, track='Fishyscapes')
    with pytest.raises(DatasetError, match=re.escape(str(tmp_path / 'images'))):
        SmiycReader(tmp_path)
    _write_image(tmp_path / 'images' / 'x.png', _rgb(0))
    _write_mask(tmp_path / 'labels_masks' / 'x_labels_semantic.png', _bands(0, 254))
    with pytest.raises(DatasetError, match=_m('value 254', 'x_labels_semantic.png')):
        SmiycReader(tmp_path)[0]


# ----------------------------------------------------------------------------------------------------
# plain folder


def test_folder_default_mapping(tmp_path: Path) -> None:
    _write_image(tmp_path / 'images' / 'f2.png', _rgb(51))
    _write_mask(tmp_path / 'masks' / 'f2.png', _bands(0, 1, 255, 7))
    _write_image(tmp_path / 'images' / 'f1.png', _rgb(50))
    _write_mask(tmp_path / 'masks' / 'f1.png', _bands(1, 0))
    r = FolderReader(tmp_path)
    assert r.names == ['f1', 'f2']
    f1, f2 = r[0], r[1]
    _check_sample(f1, _rgb(50))
    _check_sample(f2, _rgb(51))
    np.testing.assert_array_equal(f1.anomaly, _bands(1, 0))
    np.testing.assert_array_equal(f2.anomaly, _bands(0, 1, 255, 0))  # 7 -> in-dist by default


def test_folder_custom_values_and_names(tmp_path: Path) -> None:
    _write_image(tmp_path / 'rgb' / 'a.png', _rgb(0))
    _write_mask(tmp_path / 'gt' / 'a.png', _mask(2, 3, 9, 1000, dtype=np.uint16))
    r = FolderReader(
        tmp_path, images='rgb', masks='gt', anomaly_values=(2, 3), ignore_values=(1000,), in_dist_values=(9,)
    )
    np.testing.assert_array_equal(r[0].anomaly, _bands(1, 1, 0, 255))
    only_images = FolderReader(tmp_path, images='rgb', masks=None)
    assert only_images[0].anomaly is None and only_images[0].name == 'a'


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match='share values'):
        FolderReader(tmp_path, anomaly_values=(1,), ignore_values=(1, 255))
    with pytest.raises(DatasetError, match=re.escape(str(tmp_path / 'images'))):
        FolderReader(tmp_path)
    _write_image(tmp_path / 'images' / 'a.png', _rgb(0))
    _write_mask(tmp_path / 'masks' / 'a.png', _bands(0, 1, 5))
    _write_image(tmp_path / 'images' / 'b.png', _rgb(1))
    (tmp_path / 'images' / 'c.png').write_bytes(b'not a png at all')
    _write_mask(tmp_path / 'masks' / 'c.png', _bands(0))
    _write_image(tmp_path / 'images' / 'd.png', _rgb(2))
    _write_mask(tmp_path / 'masks' / 'd.png', np.zeros((H, W + 1), np.uint8))
    _write_image(tmp_path / 'images' / 'e.png', _rgb(3))
    _write_mask(tmp_path / 'masks' / 'e.png', np.dstack([_bands(0), _bands(1), _bands(0)]))
    r = FolderReader(tmp_path, in_dist_values=(0,))
    assert r.names == ['a', 'b', 'c', 'd', 'e']
    with pytest.raises(DatasetError, match=_m('value 5', str(tmp_path / 'masks' / 'a.png'))):
        r[0]
    with pytest.raises(DatasetError, match=_m('b.png', str(tmp_path / 'masks'), "'b'")):
        r[1]
    with pytest.raises(DatasetError, match=_m(str(tmp_path / 'images' / 'c.png'), 'corrupt')):
        r[2]
    with pytest.raises(DatasetError, match=_m('d.png', '33x16', '32x16')):
        r[3]
    with pytest.raises(DatasetError, match=_m('e.png', 'colour channels')):
        r[4]
    assert FolderReader(tmp_path)[0].anomaly is not None  # without in_dist_values, 5 -> 0


def test_folder_unreadable_images_folder_is_an_oserror_not_no_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_image(tmp_path / 'images' / 'a.png', _rgb(0))
    image_dir = tmp_path / 'images'
    if os.geteuid() == 0:  # root reads a chmod 000 folder anyway: simulate the denial instead
        real_scandir = os.scandir

        def denied(path: Any = '.') -> Any:
            if Path(path) == image_dir:
                raise PermissionError(13, 'Permission denied', str(path))
            return real_scandir(path)

        monkeypatch.setattr(readers.os, 'scandir', denied)
        with pytest.raises(DatasetError, match=_m('cannot list', str(image_dir), 'Permission denied')):
            FolderReader(tmp_path, masks=None)
        return
    image_dir.chmod(0)
    try:
        with pytest.raises(DatasetError, match=_m('cannot list', str(image_dir), 'Permission denied')):
            FolderReader(tmp_path, masks=None)
    finally:
        image_dir.chmod(0o755)


# ----------------------------------------------------------------------------------------------------
# factory


def test_open_dataset(tmp_path: Path) -> None:
    _write_image(tmp_path / 'images' / 'a.png', _rgb(0))
    _write_mask(tmp_path / 'masks' / 'a.png', _bands(0, 1))
    r = open_dataset('folder', tmp_path, anomaly_values=(1,))
    assert isinstance(r, FolderReader) and len(r) == 1
    assert isinstance(open_dataset(' Folder ', tmp_path), FolderReader)
    with pytest.raises(DatasetError, match=_m("'kitti'", *DATASET_FORMATS)):
        open_dataset('kitti', tmp_path)
    with pytest.raises(DatasetError, match=_m('split', 'folder', 'images')):
        open_dataset('folder', tmp_path, split='val')
    with pytest.raises(DatasetError, match='nowhere'):
        open_dataset('roadanomaly', tmp_path / 'nowhere')
    assert set(DATASET_FORMATS) == {'cityscapes', 'lostandfound', 'fishyscapes', 'roadanomaly', 'smiyc', 'folder'}
