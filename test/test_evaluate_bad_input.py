"""`evaluate` on bad data: every frame that is not evaluated is listed with its reason, one bad frame never ends
the run, and a run that evaluates nothing prints strict JSON and exits 2 with the reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from anomaly_seg_ros.checkpoint import write_model_folder
from anomaly_seg_ros.cli import main as cli_main
from anomaly_seg_ros.config import InputSpec
from anomaly_seg_ros.data.synthetic import SyntheticWorld, WorldConfig
from anomaly_seg_ros.evaluate import EvaluateOptions, NothingToEvaluateError, headline, run_evaluate
from anomaly_seg_ros.nets import build_net
from anomaly_seg_ros.pipeline import Pipeline
from anomaly_seg_ros.stamps import frame_stamp, split_ns

IMAGE_TOPIC = '/camera/image_raw'
ANOMALY_TOPIC = '/ground_truth/anomaly'


def _no_nan(name: str) -> Any:
    raise ValueError(f'{name} in the JSON')


def strict_json(text: str) -> Any:
    """json.loads that refuses NaN / Infinity (Python's json accepts them by default)."""
    return json.loads(text, parse_constant=_no_nan)


@pytest.fixture(scope='module')
def samples() -> list:
    world = SyntheticWorld(4, seed=5, config=WorldConfig(height=64, width=128, anomaly_prob=1.0))
    return [world[i] for i in range(4)]


def _folder_dataset(root: Path, samples: list, corrupt: set[int]) -> Path:
    (root / 'images').mkdir(parents=True)
    (root / 'masks').mkdir()
    for i, s in enumerate(samples):
        cv2.imwrite(str(root / 'images' / f'f{i}.png'), cv2.cvtColor(s.image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / 'masks' / f'f{i}.png'), s.anomaly)
        if i in corrupt:
            (root / 'images' / f'f{i}.png').write_bytes(b'not a png')
    return root


def _raw_bag(path: Path, samples: list, broken: set[int]) -> Path:
    """An mcap bag written with rosbags directly; the image messages in `broken` hold too few bytes."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    from anomaly_seg_ros.bag.conventions import ros2_typestore

    ts = ros2_typestore()
    header_t, time_t = ts.types['std_msgs/msg/Header'], ts.types['builtin_interfaces/msg/Time']
    image_t = ts.types['sensor_msgs/msg/Image']
    writer = Writer(path, version=8, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    image_c = writer.add_connection(IMAGE_TOPIC, 'sensor_msgs/msg/Image', typestore=ts)
    gt_c = writer.add_connection(ANOMALY_TOPIC, 'sensor_msgs/msg/Image', typestore=ts)
    for i, s in enumerate(samples):
        stamp = frame_stamp(i)
        sec, nanosec = split_ns(stamp)
        h, w = s.anomaly.shape
        for conn, arr, encoding, channels in ((image_c, s.image, 'rgb8', 3), (gt_c, s.anomaly, 'mono8', 1)):
            data = np.ascontiguousarray(arr).reshape(-1)
            if conn is image_c and i in broken:
                data = data[: data.size // 2]
            msg = image_t(header_t(time_t(sec, nanosec), 'cam'), h, w, encoding, 0, w * channels, data)
            writer.write(conn, stamp, ts.serialize_cdr(msg, 'sensor_msgs/msg/Image'))
    writer.close()
    return path


@pytest.fixture(scope='module')
def nan_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real tiny model folder whose weights are all NaN: every score map it gives is NaN."""
    out = tmp_path_factory.mktemp('models') / 'nan'
    net = build_net('icnet_small', 19, width=8).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(float('nan'))
    write_model_folder(out, net, 'icnet_small', {'width': 8}, InputSpec(64, 128), 'entropy', 'NaN weights')
    return out


# ---------------------------------------------------------------- item 1: skipped frames are listed


def test_dataset_3_of_4_corrupt_lists_every_skip(
    samples: list, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _folder_dataset(tmp_path / 'ds', samples, corrupt={0, 1, 3})
    out = tmp_path / 'r'
    rc = cli_main(
        ['evaluate', '--dataset', 'folder', '--root', str(root), '--model', str(tiny_model), '--out', str(out)]
    )
    assert rc == 0
    head = strict_json(capsys.readouterr().out)
    assert head['skipped'] == 3 and head['failed'] == 0 and head['evaluated']['frames_evaluated'] == 1
    report = strict_json((out / 'report.json').read_text())
    assert [s['index'] for s in report['skipped']] == [0, 1, 3]
    for s in report['skipped']:
        assert s['name'] == f'f{s["index"]}'
        assert f'f{s["index"]}.png' in s['reason']
    assert report['latency']['frames_by_status'] == {'skipped': 3, 'ok': 1}


def test_synthetic_and_bag_runs_list_skips_too(samples: list, tiny_model: Path, tmp_path: Path) -> None:
    run = run_evaluate(
        EvaluateOptions(
            dataset='synthetic', count=2, size=(128, 64), overrides={'model': str(tiny_model)}, progress=False
        )
    )
    assert run.report['skipped'] == [] and run.report['failed'] == []
    bag = _raw_bag(tmp_path / 'bag', samples, broken={2})
    run = run_evaluate(EvaluateOptions(bag=bag, overrides={'model': str(tiny_model)}, progress=False))
    assert run.report['evaluated']['frames_evaluated'] == 3
    (entry,) = run.report['skipped']
    assert entry['topic'] == IMAGE_TOPIC and entry['index'] == 2 and entry['name'] == 'bag-000002' and entry['reason']
    assert headline(run.report)['skipped'] == 1


# ---------------------------------------------------------------- item 2: nothing evaluated -> exit 2, strict JSON


def test_every_file_corrupt_exits_2_with_first_reason(
    samples: list, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _folder_dataset(tmp_path / 'ds', samples, corrupt={0, 1, 2, 3})
    out = tmp_path / 'r'
    rc = cli_main(
        ['evaluate', '--dataset', 'folder', '--root', str(root), '--model', str(tiny_model), '--out', str(out)]
    )
    captured = capsys.readouterr()
    assert rc == 2 and 'Traceback' not in captured.err
    assert 'nothing to evaluate: 0 of 4 frames evaluated: 4 skipped (first: f0: ' in captured.err
    assert 'f0.png' in captured.err and str(out) in captured.err
    head = strict_json(captured.out)
    assert head['AP'] is None and head['FPR95'] is None and head['skipped'] == 4
    report = strict_json((out / 'report.json').read_text())
    assert report['pixel']['ap'] is None and len(report['skipped']) == 4
    assert (out / 'report.html').is_file()


def test_empty_bag_exits_2_naming_the_topic(
    tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bag = _raw_bag(tmp_path / 'empty', [], broken=set())
    out = tmp_path / 'r'
    rc = cli_main(['evaluate', '--bag', str(bag), '--model', str(tiny_model), '--out', str(out)])
    captured = capsys.readouterr()
    assert rc == 2 and 'Traceback' not in captured.err
    assert f'nothing to evaluate: the bag holds no frames on {IMAGE_TOPIC}' in captured.err
    head = strict_json(captured.out)
    assert head['AP'] is None and head['evaluated']['frames_evaluated'] == 0
    strict_json((out / 'report.json').read_text())


def test_bag_with_every_image_broken_names_the_message(samples: list, tmp_path: Path, tiny_model: Path) -> None:
    bag = _raw_bag(tmp_path / 'bag', samples[:2], broken={0, 1})
    with pytest.raises(
        NothingToEvaluateError, match=rf'0 of 2 frames evaluated: 2 skipped \(first: {IMAGE_TOPIC} message 0: '
    ):
        run_evaluate(EvaluateOptions(bag=bag, overrides={'model': str(tiny_model)}, progress=False))


def test_headline_is_strict_json_when_numbers_are_nan() -> None:
    report = {
        'evaluated': {'frames_evaluated': 0},
        'pixel': {'ap': float('nan'), 'fpr95': float('inf'), 'auroc': np.float64('nan'), 'n_pos': np.int64(0)},
        'latency': {'frames_by_status': {}},
    }
    head = headline(report)
    assert head['AP'] is None and head['FPR95'] is None and head['AUROC'] is None and head['anomaly_pixels'] == 0
    strict_json(json.dumps(head, allow_nan=False))


# ---------------------------------------------------------------- item 3: a bad frame fails alone


def _patch_pipeline(monkeypatch: pytest.MonkeyPatch, bad: dict[int, str]) -> None:
    """Frame i (call order) gives NaN scores ('nan') or raises ('raise'); the other frames run as usual."""
    real = Pipeline.__call__
    calls = {'n': 0}

    def call(self: Pipeline, rgb: np.ndarray) -> Any:
        i = calls['n']
        calls['n'] += 1
        result = real(self, rgb)
        if bad.get(i) == 'nan':
            result.score = np.full_like(result.score, np.nan)
        elif bad.get(i) == 'raise':
            raise RuntimeError('backend lost the device')
        return result

    monkeypatch.setattr(Pipeline, '__call__', call)


def test_nan_and_raising_frames_fail_alone(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opts = EvaluateOptions(
        dataset='synthetic', count=4, size=(128, 64), overrides={'model': str(tiny_model)}, progress=False
    )
    clean = run_evaluate(opts)
    _patch_pipeline(monkeypatch, {1: 'raise', 2: 'nan'})
    opts.out = tmp_path / 'r'
    run = run_evaluate(opts)
    statuses = [f.status for f in run.frames]
    assert statuses[0] == statuses[3] == 'ok'
    assert statuses[1] == 'failed: the Pipeline raised RuntimeError: backend lost the device'
    assert statuses[2].startswith('failed: score map has 8192 NaN, 0 inf')
    assert run.report['evaluated']['frames_evaluated'] == 2
    assert [f['index'] for f in run.report['failed']] == [1, 2]
    assert run.report['latency']['frames_by_status'] == {'ok': 2, 'failed': 2}
    # the failed frames are out of every metric: pixel counts are those of frames 0 and 3 of the clean run
    kept = [clean.frames[i] for i in (0, 3)]
    assert run.report['pixel']['n_pos'] == sum(f.n_anomaly_px for f in kept)
    assert run.report['segmentation']['frames'] == 2
    saved = strict_json((tmp_path / 'r' / 'report.json').read_text())
    assert [f['name'] for f in saved['failed']] == [clean.frames[1].name, clean.frames[2].name]
    assert 'failed: score map has' in (tmp_path / 'r' / 'report.html').read_text()


def test_nan_weights_model_every_frame_failed_exits_2(
    nan_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / 'r'
    args = ['evaluate', '--dataset', 'synthetic', '--count', '3', '--size', '128x64', '--model', str(nan_model)]
    rc = cli_main([*args, '--out', str(out)])
    captured = capsys.readouterr()
    assert rc == 2 and 'Traceback' not in captured.err
    assert 'nothing to evaluate: 0 of 3 frames evaluated: 3 failed (first: ' in captured.err
    assert '8192 of 8192 scores are NaN or inf' in captured.err
    head = strict_json(captured.out)
    assert head['failed'] == 3 and head['frames_by_status'] == {'failed': 3} and head['AP'] is None
    assert len(strict_json((out / 'report.json').read_text())['failed']) == 3


def test_a_misspelt_gt_topic_is_an_error_listing_the_topics(
    samples: list, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One named GT topic absent from the bag (a typo) used to drop the ground truth silently (AP = NaN, exit 0)."""
    from anomaly_seg_ros.bag import write_bag

    write_bag(samples[:2], tmp_path / 'bag', progress=False)
    args = ['evaluate', '--bag', str(tmp_path / 'bag'), '--model', str(tiny_model)]
    assert cli_main([*args, '--anomaly-topic', '/ground_truth/anomaly_']) == 2
    err = capsys.readouterr().err
    assert '--anomaly-topic /ground_truth/anomaly_ is not in the bag' in err and '/ground_truth/anomaly,' in err
    assert 'Traceback' not in err
    assert cli_main([*args, '--labels-topic', '/gt/labels']) == 2
    assert '--labels-topic /gt/labels is not in the bag' in capsys.readouterr().err
    # the defaults still apply when unnamed, and naming the real topic works
    assert cli_main([*args, '--anomaly-topic', '/ground_truth/anomaly']) == 0
