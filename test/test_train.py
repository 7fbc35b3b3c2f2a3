"""The training entry point end to end on tiny data: model folder written, loadable, resumable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from anomaly_seg_ros.cli import main as cli_main
from anomaly_seg_ros.config import load_model_config
from anomaly_seg_ros.data.synthetic import SyntheticWorld, WorldConfig
from anomaly_seg_ros.errors import CheckpointError, ConfigError
from anomaly_seg_ros.pipeline import Pipeline
from anomaly_seg_ros.train.seg import SegTrainConfig, train_segmentation

SMALL = dict(width=8, input_height=64, input_width=128, crop_height=48, crop_width=96, batch=2)


def _world(n: int, seed: int) -> list:
    world = SyntheticWorld(n, seed=seed, config=WorldConfig(height=64, width=128, anomaly_prob=0.0))
    return [world[i] for i in range(n)]


def test_train_writes_loadable_model_and_resumes(tmp_path: Path) -> None:
    cfg = SegTrainConfig(out=tmp_path / 'm', iters=4, eval_every=2, **SMALL)
    summary = train_segmentation(cfg, _world(6, 0), _world(2, 1), progress=False)
    assert [h['iteration'] for h in summary['history']] == [2, 4]
    assert 0.0 <= summary['history'][-1]['val_miou'] <= 1.0
    model = load_model_config(tmp_path / 'm')
    assert (model.input.height, model.input.width) == (64, 128)
    r = Pipeline.from_model(tmp_path / 'm')(np.zeros((64, 128, 3), np.uint8))
    assert r.labels.shape == (64, 128)
    # resume continues from the checkpoint's iteration instead of starting over
    cfg2 = SegTrainConfig(out=tmp_path / 'm', iters=6, eval_every=2, **SMALL)
    summary2 = train_segmentation(cfg2, _world(6, 0), _world(2, 1), resume=True, progress=False)
    assert [h['iteration'] for h in summary2['history']] == [2, 4, 6]
    log = json.loads((tmp_path / 'm' / 'train_log.json').read_text())
    assert log['history'][-1]['iteration'] == 6


def test_train_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match='crop must fit'):
        train_segmentation(SegTrainConfig(out=tmp_path, **{**SMALL, 'crop_width': 500}), _world(1, 0), [])
    with pytest.raises(ConfigError, match='training split is empty'):
        train_segmentation(SegTrainConfig(out=tmp_path, **SMALL), [], [])
    with pytest.raises(CheckpointError, match='--resume given but no checkpoint'):
        train_segmentation(SegTrainConfig(out=tmp_path / 'none', **SMALL), _world(1, 0), [], resume=True)


def test_cli_train_on_cityscapes_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cityscapes_tree: Any
) -> None:
    world = SyntheticWorld(3, seed=7, config=WorldConfig(height=64, width=128, anomaly_prob=0.0))
    cityscapes_tree(tmp_path / 'cs', 'train', list(world))
    cityscapes_tree(tmp_path / 'cs', 'val', [world[0], world[1]])
    rc = cli_main(
        [
            'train',
            'seg',
            '--dataset',
            'cityscapes',
            '--root',
            str(tmp_path / 'cs'),
            '--out',
            str(tmp_path / 'model'),
            '--iters',
            '2',
            '--eval-every',
            '2',
            '--batch',
            '2',
            '--width',
            '8',
            '--input-size',
            '128x64',
            '--crop',
            '96x48',
            '--val-frames',
            '0',
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out['iteration'] == 2 and 0.0 <= out['val_miou'] <= 1.0
    assert 'Cityscapes train (3 frames)' in load_model_config(tmp_path / 'model').description
    rc = cli_main(['train', 'seg', '--dataset', 'cityscapes', '--out', str(tmp_path / 'x')])
    assert rc == 2 and 'needs --root' in capsys.readouterr().err


def test_validation_miou_is_the_evaluators(tmp_path: Path) -> None:
    """Validation frames larger than the input size: the mIoU in train_log.json equals what `evaluate` reports
    for the written model on the same frames (the Pipeline's resize and normalisation, labels at the frame's size)."""
    from anomaly_seg_ros.eval.accumulate import EvalSettings
    from anomaly_seg_ros.eval.offline import evaluate_frames, samples_as_frames

    val_world = SyntheticWorld(3, seed=5, config=WorldConfig(height=128, width=256, anomaly_prob=0.0))
    val = [val_world[i] for i in range(3)]
    cfg = SegTrainConfig(out=tmp_path / 'm', iters=2, eval_every=2, **SMALL)
    summary = train_segmentation(cfg, _world(4, 0), val, progress=False)
    pipe = Pipeline.from_model(tmp_path / 'm')
    acc, _ = evaluate_frames(pipe, samples_as_frames(val), EvalSettings(pipe.score_range), progress=False)
    report = acc.finish()[0]
    assert report['segmentation']['n_pixels'] + report['segmentation']['n_ignored'] == 3 * 128 * 256
    assert summary['history'][-1]['val_miou'] == report['segmentation']['miou']
