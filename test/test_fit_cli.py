"""`anomaly-seg fit`: end to end on an image folder, a bag and the synthetic world; every refusal and its text."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

from anomaly_seg_ros.cli import main
from anomaly_seg_ros.config import load_model_config
from anomaly_seg_ros.data.synthetic import SyntheticWorld, WorldConfig
from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.fit import FITTERS
from anomaly_seg_ros.fit.base import FitResult
from anomaly_seg_ros.fit.model_yaml import update_model_yaml


@pytest.fixture()
def model(tiny_model: Path, tmp_path: Path) -> Path:
    out = tmp_path / 'model'
    shutil.copytree(tiny_model, out)
    return out


@pytest.fixture(scope='module')
def samples() -> list:
    # a camera at twice the model input (128x64): the Pipeline's resize is part of the fit
    return list(SyntheticWorld(3, seed=7, config=WorldConfig(height=128, width=256, anomaly_prob=1.0)))


def _run(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    rc = main(['fit', *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def _check_fitted(model: Path) -> dict[str, Any]:
    from anomaly_seg_ros.pipeline import Pipeline

    data = yaml.safe_load((model / 'model.yaml').read_text())
    assert data['scorers']['sml']['artefacts'] == {'stats': 'sml_stats.pt'}
    assert set(data['scorers']['sml']['params']) == {
        'boundary_iterations',
        'boundary_width',
        'smoothing_kernel',
        'smoothing_dilation',
    }
    assert data['scorer'] == 'entropy' and data['name'] == 'tiny'  # every other key kept
    p = Pipeline.from_model(model, scorer='sml', backend='torch')
    out = p(np.zeros((100, 200, 3), np.uint8))
    assert out.score.shape == (100, 200) and np.isfinite(out.score).all()
    return data


def test_fit_from_an_image_folder(
    model: Path, samples: list, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / 'frames'
    folder.mkdir()
    for i, s in enumerate(samples):
        cv2.imwrite(str(folder / f'{i:03d}.png'), cv2.cvtColor(s.image, cv2.COLOR_RGB2BGR))
    (folder / 'notes.txt').write_text('not an image')
    report = tmp_path / 'fit.json'
    rc, out, err = _run(capsys, 'sml', '--model', model, '--images', folder, '--json', report, '--set-default')
    assert rc == 0, err
    assert f'3 frames from 3 images in {folder}' in out and 'sml_stats.pt' in out
    data = yaml.safe_load((model / 'model.yaml').read_text())
    assert data['scorer'] == 'sml'  # --set-default
    got = json.loads(report.read_text())
    assert got['frames'] == 3 and got['summary']['pixels'] == 3 * 64 * 128  # logits at the model's 128x64
    assert got['summary']['pixels_excluded_anomaly'] == 0  # image files carry no anomaly mask
    # fitting again needs --overwrite
    rc, _, err = _run(capsys, 'sml', '--model', model, '--images', folder)
    assert rc == 2 and 'already has scorers.sml; pass --overwrite' in err
    rc, _, err = _run(capsys, 'sml', '--model', model, '--images', folder, '--overwrite', '--limit', '1')
    assert rc == 0, err
    data = yaml.safe_load((model / 'model.yaml').read_text())
    data['scorer'] = 'entropy'
    (model / 'model.yaml').write_text(yaml.safe_dump(data, sort_keys=False))
    _check_fitted(model)


def test_fit_from_a_bag_leaves_anomalies_out(
    model: Path, samples: list, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip('rosbags')
    from anomaly_seg_ros.bag import write_bag

    bag = tmp_path / 'drive'
    write_bag(samples, bag, progress=False)
    report = tmp_path / 'fit.json'
    rc, out, err = _run(capsys, 'sml', '--model', model, '--bag', bag, '--json', report)
    assert rc == 0, err
    assert 'topic /camera/image_raw' in out
    _check_fitted(model)
    summary = json.loads(report.read_text())['summary']
    assert summary['frames'] == 3 and summary['pixels_excluded_anomaly'] > 0  # /ground_truth/anomaly was read
    assert summary['pixels'] + summary['pixels_excluded_anomaly'] == 3 * 64 * 128


def _hand_bag(path: Path, topics: dict[str, str], image: np.ndarray) -> Path:
    """One message per topic; encoding 'mono8' writes the image's first channel."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    stamp = ts.types['builtin_interfaces/msg/Time'](sec=1, nanosec=0)
    header = ts.types['std_msgs/msg/Header'](stamp=stamp, frame_id='cam')
    with Writer(path, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        for topic, encoding in topics.items():
            arr = np.ascontiguousarray(image[:, :, 0] if encoding == 'mono8' else image)
            msg = ts.types['sensor_msgs/msg/Image'](
                header=header,
                height=arr.shape[0],
                width=arr.shape[1],
                encoding=encoding,
                is_bigendian=0,
                step=arr.shape[1] * (1 if arr.ndim == 2 else 3),
                data=arr.reshape(-1),
            )
            conn = writer.add_connection(topic, 'sensor_msgs/msg/Image', typestore=ts)
            writer.write(conn, 1_000_000_000, ts.serialize_cdr(msg, 'sensor_msgs/msg/Image'))
    return path


def test_bag_refusals(model: Path, samples: list, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip('rosbags')
    image = samples[0].image
    mono = _hand_bag(tmp_path / 'mono', {'/cam/mono': 'mono8'}, image)
    rc, _, err = _run(capsys, 'sml', '--model', model, '--bag', mono)
    assert rc == 2
    assert "image topic /cam/mono has encoding 'mono8' (message 0), which is not colour" in err
    two = _hand_bag(tmp_path / 'two', {'/cam/front': 'rgb8', '/cam/rear': 'rgb8'}, image)
    rc, _, err = _run(capsys, 'sml', '--model', model, '--bag', two)
    assert rc == 2 and '2 image topics (/cam/front, /cam/rear); pass --image-topic TOPIC' in err
    rc, _, err = _run(capsys, 'sml', '--model', model, '--bag', two, '--image-topic', '/cam/side')
    assert rc == 2 and "--image-topic '/cam/side' is not in the bag" in err
    rc, out, err = _run(capsys, 'sml', '--model', model, '--bag', two, '--image-topic', '/cam/rear')
    assert rc == 0, err
    assert not (model / 'model.yaml').read_text().count('/cam/')  # topics are not recorded in model.yaml


def test_source_refusals(model: Path, samples: list, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:  # no source at all: argparse's usage error
        main(['fit', 'sml', '--model', str(model)])
    assert e.value.code == 2
    assert 'one of the arguments --bag --images --dataset --synthetic is required' in capsys.readouterr().err
    rc, _, err = _run(capsys, 'sml', '--model', model, '--dataset', 'nope', '--root', tmp_path)
    assert rc == 2 and "unknown dataset format 'nope'; valid formats: cityscapes" in err
    rc, _, err = _run(capsys, 'sml', '--model', model, '--dataset', 'cityscapes')
    assert rc == 2 and '--dataset cityscapes needs --root DIR' in err
    rc, _, err = _run(capsys, 'sml', '--model', model, '--images', tmp_path / 'missing')
    assert rc == 2 and 'not a folder' in err
    grey = tmp_path / 'grey'
    grey.mkdir()
    cv2.imwrite(str(grey / 'a.png'), samples[0].image[:, :, 0])
    rc, _, err = _run(capsys, 'sml', '--model', model, '--images', grey)
    assert rc == 2 and f"{grey / 'a.png'}' is grey (one channel)" in err
    deep = tmp_path / 'deep'
    deep.mkdir()
    cv2.imwrite(str(deep / 'a.png'), samples[0].image.astype(np.uint16) * 257)
    rc, _, err = _run(capsys, 'sml', '--model', model, '--images', deep)
    assert rc == 2 and 'uint16 pixels (16-bit)' in err
    tall = tmp_path / 'tall'
    tall.mkdir()
    cv2.imwrite(str(tall / 'a.png'), np.zeros((200, 100, 3), np.uint8))
    rc, _, err = _run(capsys, 'sml', '--model', model, '--images', tall)
    assert rc == 2 and 'frame 100x200 (aspect 0.50) differs from the model input 128x64 (aspect 2.00)' in err
    small = tmp_path / 'small'
    small.mkdir()
    cv2.imwrite(str(small / 'a.png'), np.zeros((16, 32, 3), np.uint8))
    rc, _, err = _run(capsys, 'sml', '--model', model, '--images', small)
    assert rc == 2 and 'frame 32x16 is under 32 pixels a side' in err
    assert 'scorers' not in yaml.safe_load((model / 'model.yaml').read_text())  # nothing was recorded


def test_tap_collision_names_both(model: Path) -> None:
    update_model_yaml(model, FitResult('a', {}, {}, taps={'features': 'head.0.0'}))
    update_model_yaml(model, FitResult('b', {}, {}, taps={'features': 'head.0.0', 'low': 'cff_mid.low'}))
    with pytest.raises(ConfigError, match=r"tap 'features' is already declared as 'head.0.0'.*wants it at 'head.0.1'"):
        update_model_yaml(model, FitResult('c', {}, {}, taps={'features': 'head.0.1'}))
    cfg = load_model_config(model)
    assert cfg.taps == {'features': 'head.0.0', 'low': 'cff_mid.low'} and set(cfg.scorers) == {'a', 'b'}


def test_missing_fitter_is_not_available(
    model: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(FITTERS, 'sml', 'anomaly_seg_ros.fit._no_such_fitter')
    rc, _, err = _run(capsys, 'sml', '--model', model, '--synthetic', '2')
    assert rc == 2 and 'fit sml: not available in this installation' in err


def test_fit_from_synthetic_frames(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run(capsys, 'sml', '--model', model, '--synthetic', '2', '--seed', '3', '--boundary-width', '2')
    assert rc == 0, err
    assert '2 synthetic frames 128x64 (seed 3, no obstacles)' in out
    data = _check_fitted(model)
    assert data['scorers']['sml']['params']['boundary_width'] == 2  # set by hand; the rest scaled
    assert data['scorers']['sml']['params']['smoothing_dilation'] == 1


def test_fit_from_a_dataset_layout(
    model: Path, samples: list, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / 'fs'
    (root / 'images').mkdir(parents=True)
    (root / 'labels').mkdir()
    for i, s in enumerate(samples):
        cv2.imwrite(str(root / 'images' / f'f{i}.png'), cv2.cvtColor(s.image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / 'labels' / f'f{i}.png'), s.anomaly)
    report = tmp_path / 'fit.json'
    rc, out, err = _run(capsys, 'sml', '--model', model, '--dataset', 'fishyscapes', '--root', root, '--json', report)
    assert rc == 0, err
    summary = json.loads(report.read_text())['summary']
    assert summary['frames'] == 3 and summary['pixels_excluded_anomaly'] > 0  # the Fishyscapes masks were used
    _check_fitted(model)
