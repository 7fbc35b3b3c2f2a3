"""Readers for real road-anomaly datasets, each a lazy sequence of `Sample`.

Every reader lists and sorts its files when it is built, and reads an image (with OpenCV, BGR -> RGB,
always HxWx3 uint8) and its mask only when a sample is asked for. ``Sample.name`` is the image path
relative to the reader's image folder, without the extension, with ``/`` separators (for example
``frankfurt/frankfurt_000000_000294_leftImg8bit`` or ``validation_0000``).

Errors are `DatasetError` with the offending path in the text. Root and listing problems (missing
root or folder, no images) are raised when the reader is built; per-file problems (missing mask,
unreadable or corrupt file, unexpected label value, image/mask size mismatch) are raised by
``reader[i]`` so an evaluator can skip and report the one frame.

Masks are read unchanged (8- or 16-bit single-channel PNG). A 3- or 4-channel mask is accepted only
when its colour channels are equal (a grey image saved as colour); a colour or palette PNG whose
palette is not grey is an error, since OpenCV expands palettes to colours.

Layouts and encodings assumed (anomaly: 0 in-distribution, 1 anomaly, 255 ignore, as Fishyscapes):

Cityscapes (`CityscapesReader`; ``labels`` only, ``anomaly`` None)
    ``root/leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png`` with
    ``root/gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelTrainIds.png`` (values 0..18, 255;
    anything else is an error) or ``..._gtFine_labelIds.png`` mapped to trainIds with the official
    table: 7->0 road, 8->1 sidewalk, 11->2 building, 12->3 wall, 13->4 fence, 17->5 pole,
    19->6 traffic light, 20->7 traffic sign, 21->8 vegetation, 22->9 terrain, 23->10 sky,
    24->11 person, 25->12 rider, 26->13 car, 27->14 truck, 28->15 bus, 31->16 train,
    32->17 motorcycle, 33->18 bicycle; every other labelId 0..33 -> 255, and 255 (license plate, -1
    stored as uint8) -> 255. LabelIds 34..254 are an error. ``label_source='auto'`` uses the
    labelTrainIds file of a frame when it exists and its labelIds file otherwise.

Lost and Found (`LostAndFoundReader`; ``anomaly`` only)
    ``root/leftImg8bit/{split}/{seq}/{name}_leftImg8bit.png`` with
    ``root/gtCoarse/{split}/{seq}/{name}_gtCoarse_labelIds.png``. As Chan et al. evaluate it: labelId
    1 (free space / road) -> 0, labelIds 2..43 (all obstacle classes, including the table's
    "random non-hazards") -> 1, labelId 0 (unlabeled, background, ego vehicle, out of ROI) -> 255.
    LabelIds above 43 do not occur in the dataset and are an error.

Fishyscapes (`FishyscapesReader`; ``anomaly`` only), public validation sets exported to PNG
    ``base/images/*`` (or ``base/original/*``, as PEBAL and others export it) with ``base/labels/*.png``,
    where ``base`` is ``root`` itself or, when present, a variant sub-folder of ``root``
    (``LostAndFound`` / ``lost_and_found`` / ``fs_lost_and_found`` for ``'lostandfound'``,
    ``Static`` / ``static`` / ``fs_static`` for ``'static'``). Image and label are paired by stem: an
    exact stem match first, otherwise the stems with one known suffix stripped (``_leftImg8bit``,
    ``_labels_semantic``, ``_labels``, ``_label``, ``_mask``, ``_gt``), so that
    ``x_leftImg8bit.png`` pairs with ``x_labels.png``. Label values are already 0/1/255; any other
    value is an error.

Road Anomaly (`RoadAnomalyReader`, Lis et al.; ``anomaly`` only)
    ``root/frames/{stem}.jpg`` (also .jpeg/.png/.webp) with
    ``root/frames/{stem}.labels/labels_semantic.png``: 0 (not anomaly) -> 0, 2 (anomaly) -> 1,
    1 (unused in the release) -> 255; any other value is an error.

SegmentMeIfYouCan (`SmiycReader`; ``anomaly`` only)
    ``base/images/{stem}.jpg|png|webp`` with ``base/labels_masks/{stem}_labels_semantic.png``, where
    ``base`` is ``root`` or, when present, the track folder of ``root`` (``dataset_AnomalyTrack`` /
    ``AnomalyTrack`` / ``RoadAnomaly21`` for ``'RoadAnomaly21'``, ``dataset_ObstacleTrack`` /
    ``ObstacleTrack`` / ``RoadObstacle21`` for ``'RoadObstacle21'``). Values 0/1/255 pass through;
    any other value is an error. An image without a label file (the hidden test frames) gets
    ``anomaly=None`` unless ``require_labels=True``.

Plain folder (`FolderReader`)
    ``root/{images}/*`` with ``root/{masks}/*.png`` paired by stem as for Fishyscapes. Mask values in
    ``anomaly_values`` -> 1, in ``ignore_values`` -> 255, the rest -> 0; when ``in_dist_values`` is
    given only those -> 0 and any value in none of the three sets is an error. ``masks=None`` reads
    images only.

`open_dataset` builds a reader by format name (`DATASET_FORMATS`).
"""

from __future__ import annotations

import inspect
import operator
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anomaly_seg_ros.checks import is_int
from anomaly_seg_ros.classes import ANOMALY_ID, ANOMALY_IGNORE, ANOMALY_IN_DIST, IGNORE_ID
from anomaly_seg_ros.data.sample import Sample
from anomaly_seg_ros.errors import DatasetError
from anomaly_seg_ros.io.image_files import read_image, read_mask

__all__ = [
    'CITYSCAPES_LABEL_TO_TRAIN_ID',
    'DATASET_FORMATS',
    'CityscapesReader',
    'DatasetReader',
    'FishyscapesReader',
    'FolderReader',
    'LostAndFoundReader',
    'RoadAnomalyReader',
    'SmiycReader',
    'open_dataset',
]

IMAGE_EXTENSIONS: tuple[str, ...] = ('.png', '.jpg', '.jpeg', '.webp')
PAIR_SUFFIXES: tuple[str, ...] = ('_leftImg8bit', '_labels_semantic', '_labels', '_label', '_mask', '_gt')

# Official Cityscapes labelId -> trainId table (cityscapesScripts labels.py); unlisted ids -> 255.
CITYSCAPES_LABEL_TO_TRAIN_ID: dict[int, int] = {
    7: 0,
    8: 1,
    11: 2,
    12: 3,
    13: 4,
    17: 5,
    19: 6,
    20: 7,
    21: 8,
    22: 9,
    23: 10,
    24: 11,
    25: 12,
    26: 13,
    27: 14,
    28: 15,
    31: 16,
    32: 17,
    33: 18,
}
_CITYSCAPES_MAX_LABEL_ID = 33
_LAF_MAX_LABEL_ID = 43
_LUT_SIZE = 1 << 16  # masks are uint8 or uint16
_INVALID = -1


# ----------------------------------------------------------------------------------------------------
# file helpers


def _lut(mapping: dict[int, int]) -> np.ndarray:
    """A uint16-indexable lookup table; values not in ``mapping`` are ``_INVALID``."""
    lut = np.full(_LUT_SIZE, _INVALID, dtype=np.int16)
    for k, v in mapping.items():
        lut[k] = v
    return lut


def _check_root(root: str | Path, what: str) -> Path:
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DatasetError(f'{what} root {str(path)!r} does not exist or is not a directory')
    return path


def _check_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DatasetError(f'{what} folder {str(path)!r} does not exist or is not a directory')
    return path


def _list_files(folder: Path, pattern: str, extensions: Iterable[str], what: str) -> list[Path]:
    """Files under ``folder`` matching ``pattern`` whose suffix is one of ``extensions``, sorted."""
    exts = {e.lower() for e in extensions}
    try:  # glob skips a folder it cannot read in silence: an unreadable folder would read as "no files"
        with os.scandir(folder):
            pass
    except OSError as e:
        raise DatasetError(f'cannot list {what} folder {str(folder)!r}: {e.strerror or e}') from None
    files = sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in exts)
    if not files:
        raise DatasetError(
            f'no {what} found: nothing matches {pattern!r} with extension {"|".join(sorted(exts))} in {str(folder)!r}'
        )
    return files


def _check_size(image: np.ndarray, mask: np.ndarray, mask_path: Path, image_path: Path) -> None:
    if image.shape[:2] != mask.shape[:2]:
        raise DatasetError(
            f'size mismatch: mask {str(mask_path)!r} is {mask.shape[1]}x{mask.shape[0]} (WxH) but image '
            f'{str(image_path)!r} is {image.shape[1]}x{image.shape[0]}'
        )


def _format_values(values: np.ndarray, limit: int = 10) -> str:
    shown = ', '.join(str(int(v)) for v in values[:limit])
    return shown + (f', ... ({len(values)} values)' if len(values) > limit else '')


def _map(mask: np.ndarray, lut: np.ndarray, path: Path, what: str) -> np.ndarray:
    """Map ``mask`` through ``lut``; values mapped to ``_INVALID`` are an error naming them and the file."""
    out = lut[mask]
    bad = out == _INVALID
    if bad.any():
        values = np.unique(mask[bad])
        word = 'value' if len(values) == 1 else 'values'
        raise DatasetError(f'unexpected {what} {word} {_format_values(values)} in {str(path)!r}')
    return out.astype(np.uint8)


def _pair_key(stem: str) -> str:
    for suffix in PAIR_SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return stem


def _mask_index(masks: Sequence[Path], folder: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """Masks by exact stem and by stem with a known suffix stripped; an ambiguous key is an error."""
    by_stem: dict[str, Path] = {}
    by_key: dict[str, Path] = {}
    for m in masks:
        if m.stem in by_stem:
            raise DatasetError(
                f'two masks with stem {m.stem!r} in {str(folder)!r}: {by_stem[m.stem].name!r} and {m.name!r}'
            )
        by_stem[m.stem] = m
        key = _pair_key(m.stem)
        if key in by_key:
            raise DatasetError(
                f'masks {by_key[key].name!r} and {m.name!r} in {str(folder)!r} both pair with images of stem {key!r}'
            )
        by_key[key] = m
    return by_stem, by_key


def _find_mask(image: Path, by_stem: dict[str, Path], by_key: dict[str, Path]) -> Path | None:
    return by_stem.get(image.stem) or by_key.get(_pair_key(image.stem))


def _name(image: Path, image_dir: Path) -> str:
    return image.relative_to(image_dir).with_suffix('').as_posix()


# ----------------------------------------------------------------------------------------------------
# base


@dataclass(frozen=True)
class _Entry:
    image: Path
    name: str
    mask: Path | None  # None: no mask found (see ``missing``) or the dataset has none for this frame
    missing: str | None = None  # why the mask is missing; set => reading the entry raises


class DatasetReader(Sequence[Sample]):
    """A lazy, indexable sequence of `Sample` over files listed at construction."""

    def __init__(self, root: Path, image_dir: Path, entries: list[_Entry]) -> None:
        self.root = root
        self.image_dir = image_dir
        self._entries = entries

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, i: int) -> Sample:  # type: ignore[override]
        if not is_int(i):
            raise TypeError(f'{type(self).__name__} indices must be ints, got {type(i).__name__}')
        index = operator.index(i)
        n = len(self._entries)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f'{type(self).__name__} index {i} out of range for length {n}')
        entry = self._entries[index]
        if entry.missing is not None:
            raise DatasetError(entry.missing)
        return self._load(entry)

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]

    @property
    def names(self) -> list[str]:
        """Sample names in order (no file is read)."""
        return [e.name for e in self._entries]

    @property
    def image_paths(self) -> list[Path]:
        return [e.image for e in self._entries]

    def _load(self, entry: _Entry) -> Sample:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f'{type(self).__name__}(root={str(self.root)!r}, n={len(self)})'


def _anomaly_sample(entry: _Entry, lut: np.ndarray, what: str) -> Sample:
    image = read_image(entry.image)
    anomaly = None
    if entry.mask is not None:
        raw = read_mask(entry.mask)
        _check_size(image, raw, entry.mask, entry.image)
        anomaly = _map(raw, lut, entry.mask, what)
    return Sample(image=image, labels=None, anomaly=anomaly, name=entry.name)


_FISHY_LUT = _lut({0: ANOMALY_IN_DIST, 1: ANOMALY_ID, 255: ANOMALY_IGNORE})


def _pick_base(root: Path, candidates: Sequence[str]) -> Path:
    for c in candidates:
        if (root / c).is_dir():
            return root / c
    return root


# ----------------------------------------------------------------------------------------------------
# readers


class CityscapesReader(DatasetReader):
    """Cityscapes fine annotations: ``labels`` in trainIds, no ``anomaly`` (layout in the module doc).

    label_source: ``'trainIds'`` reads ``*_gtFine_labelTrainIds.png``; ``'labelIds'`` reads
    ``*_gtFine_labelIds.png`` and maps them with `CITYSCAPES_LABEL_TO_TRAIN_ID`; ``'auto'`` (default)
    uses each frame's labelTrainIds file when it exists, its labelIds file otherwise.
    """

    LABEL_SOURCES: tuple[str, ...] = ('auto', 'trainIds', 'labelIds')
    _TRAIN_LUT = _lut({**{i: i for i in range(19)}, IGNORE_ID: IGNORE_ID})
    _LABEL_LUT = _lut(
        {
            **{i: CITYSCAPES_LABEL_TO_TRAIN_ID.get(i, IGNORE_ID) for i in range(_CITYSCAPES_MAX_LABEL_ID + 1)},
            255: IGNORE_ID,  # license plate (-1) as stored in uint8
        }
    )

    def __init__(self, root: str | Path, split: str = 'val', label_source: str = 'auto') -> None:
        if label_source not in self.LABEL_SOURCES:
            raise DatasetError(f'label_source must be one of {self.LABEL_SOURCES}, got {label_source!r}')
        base = _check_root(root, 'Cityscapes')
        image_dir = _check_dir(base / 'leftImg8bit' / split, f'Cityscapes {split!r} image')
        self.gt_dir = _check_dir(base / 'gtFine' / split, f'Cityscapes {split!r} gtFine')
        self.split = split
        self.label_source = label_source
        images = _list_files(image_dir, '*/*_leftImg8bit.png', ('.png',), 'Cityscapes images')
        entries = [_Entry(p, _name(p, image_dir), None) for p in images]
        super().__init__(base, image_dir, entries)

    def label_path(self, image: Path) -> Path:
        """The label file of ``image`` for this reader's label_source (may not exist)."""
        stem = image.name[: -len('_leftImg8bit.png')]
        folder = self.gt_dir / image.parent.name
        train = folder / f'{stem}_gtFine_labelTrainIds.png'
        ids = folder / f'{stem}_gtFine_labelIds.png'
        if self.label_source == 'trainIds':
            return train
        if self.label_source == 'labelIds':
            return ids
        if train.is_file() or not ids.is_file():
            return train
        return ids

    def _load(self, entry: _Entry) -> Sample:
        path = self.label_path(entry.image)
        if not path.is_file():
            if self.label_source == 'auto':
                expected = f'{path.name!r} or {path.name.replace("labelTrainIds", "labelIds")!r}'
            else:
                expected = repr(path.name)
            raise DatasetError(f'no label for image {str(entry.image)!r}: expected {expected} in {str(path.parent)!r}')
        image = read_image(entry.image)
        raw = read_mask(path)
        _check_size(image, raw, path, entry.image)
        if path.name.endswith('_labelTrainIds.png'):
            labels = _map(raw, self._TRAIN_LUT, path, 'Cityscapes trainId')
        else:
            labels = _map(raw, self._LABEL_LUT, path, 'Cityscapes labelId')
        return Sample(image=image, labels=labels, anomaly=None, name=entry.name)


class LostAndFoundReader(DatasetReader):
    """Lost and Found with coarse obstacle labels: ``anomaly`` only (layout in the module doc).

    Mapping of ``*_gtCoarse_labelIds.png`` (as Chan et al. evaluate it): 1 free space -> 0
    in-distribution, 2..43 obstacles -> 1 anomaly, 0 unlabeled -> 255 ignore; values > 43 are an error.
    """

    _LUT = _lut({0: ANOMALY_IGNORE, 1: ANOMALY_IN_DIST, **{i: ANOMALY_ID for i in range(2, _LAF_MAX_LABEL_ID + 1)}})

    def __init__(self, root: str | Path, split: str = 'test') -> None:
        base = _check_root(root, 'Lost and Found')
        image_dir = _check_dir(base / 'leftImg8bit' / split, f'Lost and Found {split!r} image')
        gt_dir = _check_dir(base / 'gtCoarse' / split, f'Lost and Found {split!r} gtCoarse')
        self.split = split
        images = _list_files(image_dir, '*/*_leftImg8bit.png', ('.png',), 'Lost and Found images')
        entries = []
        for p in images:
            mask = gt_dir / p.parent.name / (p.name[: -len('_leftImg8bit.png')] + '_gtCoarse_labelIds.png')
            missing = None if mask.is_file() else f'no mask for image {str(p)!r}: expected {str(mask)!r}'
            entries.append(_Entry(p, _name(p, image_dir), mask, missing))
        super().__init__(base, image_dir, entries)

    def _load(self, entry: _Entry) -> Sample:
        return _anomaly_sample(entry, self._LUT, 'Lost and Found labelId')


class FishyscapesReader(DatasetReader):
    """Fishyscapes public validation (FS Lost & Found or FS Static) exported as PNG folders.

    Assumed layout (see the module doc): ``base/images/`` or ``base/original/`` holding the images and
    ``base/labels/*.png`` holding labels already in 0 in-dist / 1 anomaly / 255 void, ``base`` being
    ``root`` or its variant sub-folder; pairing by stem, with ``_leftImg8bit`` / ``_labels`` style
    suffixes stripped when the exact stems differ. Other label values are an error.
    """

    VARIANTS: dict[str, tuple[str, ...]] = {
        'lostandfound': ('LostAndFound', 'lost_and_found', 'fs_lost_and_found', 'lostandfound'),
        'static': ('Static', 'static', 'fs_static'),
    }

    def __init__(self, root: str | Path, variant: str = 'lostandfound') -> None:
        if variant not in self.VARIANTS:
            raise DatasetError(f'Fishyscapes variant must be one of {tuple(self.VARIANTS)}, got {variant!r}')
        base = _pick_base(_check_root(root, 'Fishyscapes'), self.VARIANTS[variant])
        image_dir = next((base / d for d in ('images', 'original') if (base / d).is_dir()), None)
        if image_dir is None:
            raise DatasetError(f'Fishyscapes image folder not found: neither images/ nor original/ in {str(base)!r}')
        label_dir = _check_dir(base / 'labels', 'Fishyscapes label')
        self.variant = variant
        images = _list_files(image_dir, '*', IMAGE_EXTENSIONS, 'Fishyscapes images')
        masks = _list_files(label_dir, '*', ('.png',), 'Fishyscapes labels')
        entries = _paired_entries(images, image_dir, masks, label_dir, required=True)
        super().__init__(base, image_dir, entries)

    def _load(self, entry: _Entry) -> Sample:
        return _anomaly_sample(entry, _FISHY_LUT, 'Fishyscapes label')


def _paired_entries(
    images: Sequence[Path], image_dir: Path, masks: Sequence[Path], mask_dir: Path, required: bool
) -> list[_Entry]:
    by_stem, by_key = _mask_index(masks, mask_dir)
    entries = []
    for p in images:
        mask = _find_mask(p, by_stem, by_key)
        missing = None
        if mask is None and required:
            missing = (
                f'no mask for image {str(p)!r}: no file in {str(mask_dir)!r} with stem {_pair_key(p.stem)!r}, '
                f'optionally followed by one of {", ".join(PAIR_SUFFIXES)}'
            )
        entries.append(_Entry(p, _name(p, image_dir), mask, missing))
    return entries


class RoadAnomalyReader(DatasetReader):
    """Road Anomaly (Lis et al. 2019): ``anomaly`` only.

    ``root/frames/{stem}.jpg`` with ``root/frames/{stem}.labels/labels_semantic.png``; label 0 (not
    anomaly) -> 0, 2 (anomaly) -> 1, 1 (unused) -> 255 ignore; any other value is an error.
    """

    _LUT = _lut({0: ANOMALY_IN_DIST, 1: ANOMALY_IGNORE, 2: ANOMALY_ID})

    def __init__(self, root: str | Path) -> None:
        base = _check_root(root, 'Road Anomaly')
        image_dir = _check_dir(base / 'frames', 'Road Anomaly frames')
        images = _list_files(image_dir, '*', IMAGE_EXTENSIONS, 'Road Anomaly frames')
        entries = []
        for p in images:
            mask = image_dir / f'{p.stem}.labels' / 'labels_semantic.png'
            missing = None if mask.is_file() else f'no mask for image {str(p)!r}: expected {str(mask)!r}'
            entries.append(_Entry(p, _name(p, image_dir), mask, missing))
        super().__init__(base, image_dir, entries)

    def _load(self, entry: _Entry) -> Sample:
        return _anomaly_sample(entry, self._LUT, 'Road Anomaly label')


class SmiycReader(DatasetReader):
    """SegmentMeIfYouCan RoadAnomaly21 / RoadObstacle21: ``anomaly`` only (layout in the module doc).

    ``base/images/{stem}.*`` with ``base/labels_masks/{stem}_labels_semantic.png`` (0 / 1 / 255). An
    image without a label file gets ``anomaly=None`` (hidden test frames) unless ``require_labels``.
    """

    TRACKS: dict[str, tuple[str, ...]] = {
        'RoadAnomaly21': ('dataset_AnomalyTrack', 'AnomalyTrack', 'RoadAnomaly21'),
        'RoadObstacle21': ('dataset_ObstacleTrack', 'ObstacleTrack', 'RoadObstacle21'),
    }

    def __init__(self, root: str | Path, track: str = 'RoadAnomaly21', require_labels: bool = False) -> None:
        if track not in self.TRACKS:
            raise DatasetError(f'SMIYC track must be one of {tuple(self.TRACKS)}, got {track!r}')
        base = _pick_base(_check_root(root, 'SMIYC'), self.TRACKS[track])
        image_dir = _check_dir(base / 'images', f'SMIYC {track} image')
        label_dir = base / 'labels_masks'
        if require_labels:
            _check_dir(label_dir, f'SMIYC {track} label')
        self.track = track
        images = _list_files(image_dir, '*', IMAGE_EXTENSIONS, f'SMIYC {track} images')
        entries = []
        mask: Path | None
        for p in images:
            mask = label_dir / f'{p.stem}_labels_semantic.png'
            missing = None
            if not mask.is_file():
                if require_labels:
                    missing = f'no mask for image {str(p)!r}: expected {str(mask)!r}'
                mask = None
            entries.append(_Entry(p, _name(p, image_dir), mask, missing))
        super().__init__(base, image_dir, entries)

    def _load(self, entry: _Entry) -> Sample:
        return _anomaly_sample(entry, _FISHY_LUT, 'SMIYC label')


class FolderReader(DatasetReader):
    """A plain folder of images and masks paired by stem: ``anomaly`` only.

    Mask values in ``anomaly_values`` -> 1, in ``ignore_values`` -> 255; with ``in_dist_values=None``
    every other value -> 0, otherwise only ``in_dist_values`` -> 0 and any other value is an error.
    ``masks=None`` yields images without ``anomaly``.
    """

    def __init__(
        self,
        root: str | Path,
        images: str = 'images',
        masks: str | None = 'masks',
        anomaly_values: Iterable[int] = (1,),
        ignore_values: Iterable[int] = (255,),
        in_dist_values: Iterable[int] | None = None,
    ) -> None:
        sets = {'anomaly_values': anomaly_values, 'ignore_values': ignore_values}
        if in_dist_values is not None:
            sets['in_dist_values'] = in_dist_values
        checked = {k: _value_set(k, v) for k, v in sets.items()}
        keys = list(checked)
        for a in range(len(keys)):
            for b in range(a + 1, len(keys)):
                common = checked[keys[a]] & checked[keys[b]]
                if common:
                    raise DatasetError(f'{keys[a]} and {keys[b]} share values {sorted(common)}')
        mapping = {v: ANOMALY_ID for v in checked['anomaly_values']}
        mapping.update({v: ANOMALY_IGNORE for v in checked['ignore_values']})
        if 'in_dist_values' in checked:
            mapping.update({v: ANOMALY_IN_DIST for v in checked['in_dist_values']})
            self._lut = _lut(mapping)
        else:
            lut = np.full(_LUT_SIZE, ANOMALY_IN_DIST, dtype=np.int16)
            for k, v in mapping.items():
                lut[k] = v
            self._lut = lut
        self.anomaly_values = tuple(sorted(checked['anomaly_values']))
        self.ignore_values = tuple(sorted(checked['ignore_values']))
        self.in_dist_values = tuple(sorted(checked['in_dist_values'])) if 'in_dist_values' in checked else None

        base = _check_root(root, 'folder dataset')
        image_dir = _check_dir(base / images, 'image')
        image_files = _list_files(image_dir, '*', IMAGE_EXTENSIONS, 'images')
        if masks is None:
            entries = [_Entry(p, _name(p, image_dir), None) for p in image_files]
        else:
            mask_dir = _check_dir(base / masks, 'mask')
            mask_files = _list_files(mask_dir, '*', IMAGE_EXTENSIONS, 'masks')
            entries = _paired_entries(image_files, image_dir, mask_files, mask_dir, required=True)
        super().__init__(base, image_dir, entries)

    def _load(self, entry: _Entry) -> Sample:
        return _anomaly_sample(entry, self._lut, 'mask')


def _value_set(what: str, values: Iterable[int]) -> set[int]:
    try:
        items = list(values)
    except TypeError:
        raise DatasetError(f'{what} must be a collection of ints, got {values!r}') from None
    for v in items:
        if not is_int(v) or not 0 <= v < _LUT_SIZE:
            raise DatasetError(f'{what} must hold ints in 0..{_LUT_SIZE - 1}, got {v!r}')
    return {int(v) for v in items}


# ----------------------------------------------------------------------------------------------------
# factory

DATASET_FORMATS: dict[str, type[DatasetReader]] = {
    'cityscapes': CityscapesReader,
    'lostandfound': LostAndFoundReader,
    'fishyscapes': FishyscapesReader,
    'roadanomaly': RoadAnomalyReader,
    'smiyc': SmiycReader,
    'folder': FolderReader,
}


def open_dataset(format: str, root: str | Path, **kw: Any) -> DatasetReader:
    """Build the reader named ``format`` (one of `DATASET_FORMATS`) over ``root`` with reader options ``kw``."""
    key = format.strip().lower() if isinstance(format, str) else format
    cls = DATASET_FORMATS.get(key)  # type: ignore[arg-type]
    if cls is None:
        raise DatasetError(f'unknown dataset format {format!r}; valid formats: {", ".join(DATASET_FORMATS)}')
    params = [p for p in inspect.signature(cls.__init__).parameters if p not in ('self', 'root')]
    unknown = sorted(set(kw) - set(params))
    if unknown:
        raise DatasetError(
            f'unknown option(s) {", ".join(unknown)} for dataset format {key!r}; valid options: {", ".join(params)}'
        )
    # every registered subclass takes ``root: str | Path`` first (only the base constructor wants a Path)
    make: Callable[..., DatasetReader] = cls
    return make(root, **kw)
