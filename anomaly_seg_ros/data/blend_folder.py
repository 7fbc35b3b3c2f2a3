"""`anomaly-seg blend` on folders: every image of a folder blended with objects from another, written as a
Fishyscapes-layout tree (``images/``, ``labels/``, ``blend.json``). The blending itself is :mod:`.blend`."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
from tqdm import tqdm

from anomaly_seg_ros.checks import is_int
from anomaly_seg_ros.classes import ANOMALY_ID, ANOMALY_IGNORE, ANOMALY_IN_DIST
from anomaly_seg_ros.data.blend import IMAGE_SUFFIXES, PAPER, BlendConfig, blend_sample_records, load_object_files
from anomaly_seg_ros.data.sample import Sample
from anomaly_seg_ros.errors import ConfigError, DatasetError
from anomaly_seg_ros.io.image_files import read_image

__all__ = ['blend_folder']


def _list_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DatasetError(f'images folder {folder} does not exist or is not a folder')
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DatasetError(f'images folder {folder} holds no {"/".join(IMAGE_SUFFIXES)} images')
    seen: dict[str, Path] = {}
    for p in files:
        if p.stem in seen:
            raise DatasetError(f'images {seen[p.stem]} and {p} share the stem {p.stem!r}; outputs would collide')
        seen[p.stem] = p
    return files


def _write_png(path: Path, array: np.ndarray) -> None:
    if not cv2.imwrite(str(path), array):
        raise DatasetError(f'cannot write {path}')


def blend_folder(
    images_dir: str | Path,
    objects_dir: str | Path,
    out_dir: str | Path,
    config: BlendConfig = BlendConfig(),  # noqa: B008 - a frozen dataclass, never mutated
    in_dist_dir: str | Path | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> int:
    """Blend objects into every png/jpg of ``images_dir`` (sorted by name; the first ``limit`` when given).

    Writes ``out_dir/images/<stem>.png`` (blended RGB), ``out_dir/labels/<stem>.png`` (Fishyscapes
    encoding 0 / 1 / 255) and ``out_dir/blend.json`` (config, seed, counts, source files and the objects
    pasted into each image). Image i uses ``np.random.default_rng([config.seed, i])``, so output is
    byte-identical for a seed and independent of ``limit``. Returns the number of images written.
    Raises ``DatasetError`` naming the file for unreadable images or objects, ``ConfigError`` for a bad
    ``limit``.
    """
    if not isinstance(config, BlendConfig):
        raise ConfigError(f'config must be a BlendConfig, got {type(config).__name__}')
    if limit is not None and (not is_int(limit) or limit < 1):
        raise ConfigError(f'limit must be an int >= 1 or None, got {limit!r}')
    images_root, out = Path(images_dir), Path(out_dir)
    files = _list_images(images_root)
    if limit is not None:
        files = files[:limit]
    object_names, objects = load_object_files(objects_dir)
    in_names, in_objects = load_object_files(in_dist_dir) if in_dist_dir is not None else ([], [])
    (out / 'images').mkdir(parents=True, exist_ok=True)
    (out / 'labels').mkdir(parents=True, exist_ok=True)

    entries: list[dict[str, Any]] = []
    counts = {'images': 0, 'anomaly_objects': 0, 'in_dist_objects': 0, 'anomaly_pixels': 0, 'ignore_pixels': 0}
    for i, path in enumerate(tqdm(files, desc='blend', disable=not progress)):
        image = read_image(path)
        rng = np.random.default_rng([config.seed, i])
        blended, records = blend_sample_records(Sample(image=image, name=path.stem), objects, in_objects, config, rng)
        _write_png(out / 'images' / f'{path.stem}.png', cv2.cvtColor(blended.image, cv2.COLOR_RGB2BGR))
        _write_png(out / 'labels' / f'{path.stem}.png', cast(np.ndarray, blended.anomaly))  # always set by blending
        for rec in records:
            names = in_names if rec['kind'] == 'in_dist' else object_names
            rec['object'] = names[rec.pop('index')]
            counts['anomaly_objects' if rec['kind'] == 'anomaly' else 'in_dist_objects'] += 1
        counts['images'] += 1
        counts['anomaly_pixels'] += int(np.count_nonzero(blended.anomaly == ANOMALY_ID))
        counts['ignore_pixels'] += int(np.count_nonzero(blended.anomaly == ANOMALY_IGNORE))
        entries.append(
            {'source': path.name, 'output': f'{path.stem}.png', 'size': list(image.shape[:2]), 'objects': records}
        )

    report = {
        'method': PAPER,
        'seed': config.seed,
        'config': asdict(config),
        'images_dir': str(images_root.resolve()),
        'objects_dir': str(Path(objects_dir).resolve()),
        'in_dist_dir': str(Path(in_dist_dir).resolve()) if in_dist_dir is not None else None,
        'objects': object_names,
        'in_dist_objects': in_names,
        'label_encoding': {'in_distribution': ANOMALY_IN_DIST, 'anomaly': ANOMALY_ID, 'ignore': ANOMALY_IGNORE},
        'counts': counts,
        'images': entries,
    }
    (out / 'blend.json').write_text(json.dumps(report, indent=2) + '\n')
    return counts['images']
