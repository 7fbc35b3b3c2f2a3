"""Dataset -> bag -> evaluate (offline and live) -> report, end to end, on data and a model made here."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.bag import write_bag
from anomaly_seg_ros.cli import main as cli_main
from anomaly_seg_ros.data.synthetic import SyntheticWorld, WorldConfig
from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.evaluate import EvaluateOptions, run_evaluate
from anomaly_seg_ros.metrics import pixel_anomaly_metrics, segmentation_iou
from anomaly_seg_ros.pipeline import Pipeline

N = 6


@pytest.fixture(scope='module')
def samples() -> list:
    world = SyntheticWorld(N, seed=77, config=WorldConfig(height=128, width=256, anomaly_prob=1.0))
    return [world[i] for i in range(N)]


@pytest.fixture(scope='module')
def bag(samples: list, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp('bags') / 'synthetic_bag'
    write_bag(samples, out, rate_hz=10.0, progress=False)
    return out


def _reference(tiny_model: Path, samples: list) -> tuple[float, float, float]:
    """The same numbers computed independently: bare Pipeline + exact one-shot metrics."""
    pipe = Pipeline.from_model(tiny_model)
    results = [pipe(s.image) for s in samples]
    px = pixel_anomaly_metrics([r.score for r in results], [s.anomaly for s in samples], mode='exact')
    seg = segmentation_iou([r.labels for r in results], [s.labels for s in samples])
    return px.ap, px.fpr95, seg.miou


def test_offline_bag_report_matches_reference(bag: Path, samples: list, tiny_model: Path, tmp_path: Path) -> None:
    run = run_evaluate(EvaluateOptions(bag=bag, overrides={'model': str(tiny_model)}, out=tmp_path, progress=False))
    ev = run.report['evaluated']
    assert ev['source'] == 'bag' and ev['bag'] == str(bag) and ev['mode'] == 'offline'
    assert ev['image_topic'] == '/camera/image_raw' and ev['anomaly_topic'] == '/ground_truth/anomaly'
    assert ev['frames_evaluated'] == N and ev['scorer'] == 'entropy' and 'ignore_rule' in ev
    ap, fpr95, miou = _reference(tiny_model, samples)
    px = run.report['pixel']
    assert abs(px['ap'] - ap) <= px['ap_error_bound'] + 1e-9
    assert 0 <= px['fpr95'] - fpr95 <= px['fpr95_error_bound'] + 1e-9
    assert run.report['segmentation']['miou'] == pytest.approx(miou, abs=1e-12)
    saved = json.loads((tmp_path / 'report.json').read_text())
    assert saved['evaluated']['bag'] == str(bag) and saved['pixel']['n_pos'] == px['n_pos']
    html = (tmp_path / 'report.html').read_text()
    assert str(bag.name) in html and 'data:image/png;base64,' in html
    assert run.report['latency']['frames_by_status'] == {'ok': N}


def test_live_bag_matches_offline(bag: Path, tiny_model: Path, tmp_path: Path) -> None:
    """Every frame through the live node equals the offline Pipeline's result for it.

    Reliable QoS on the node's input and a replay at a quarter of the recorded rate (one frame every 400 ms, the
    tiny model needs a few ms) leave the newest-frame mailbox nothing to supersede, so no frame may be dropped.
    """
    pytest.importorskip('rclpy', reason='rclpy not installed')
    saved = {k: os.environ.get(k) for k in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE')}
    try:
        from anomaly_seg_ros.ros.live_eval import run_live

        live = run_live(
            EvaluateOptions(
                bag=bag,
                mode='live',
                overrides={'model': str(tiny_model), 'input_qos': 'reliable'},
                rate_scale=0.25,
                out=tmp_path,
                progress=False,
            )
        )
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    ev = live.report['evaluated']
    assert ev['mode'] == 'live' and ev['node_alive_at_end'] is True
    status = live.report['latency']['frames_by_status']
    assert sum(status.values()) == N and ev['dropped_frames'] == status.get('dropped', 0)
    assert live.report['latency']['end_to_end']['p50_ms'] > 0
    assert status == {'ok': N}, f'a frame was not evaluated live: {status}'
    offline = run_evaluate(EvaluateOptions(bag=bag, overrides={'model': str(tiny_model)}, progress=False))
    # the node runs the same Pipeline on the same pixels: identical scores frame by frame, identical metrics
    assert [f.stamp_ns for f in live.frames] == [f.stamp_ns for f in offline.frames]
    for lf, of in zip(live.frames, offline.frames, strict=True):
        assert (lf.n_anomaly_px, lf.n_in_dist_px) == (of.n_anomaly_px, of.n_in_dist_px), lf.name
        assert lf.ap == pytest.approx(of.ap, abs=1e-9), lf.name
        assert lf.mean_score_anomaly == pytest.approx(of.mean_score_anomaly, abs=1e-6), lf.name
    assert live.report['pixel']['ap'] == pytest.approx(offline.report['pixel']['ap'], abs=1e-9)


def test_dataset_folder_with_corrupt_file_is_skipped_and_reported(
    tiny_model: Path, tmp_path: Path, samples: list
) -> None:
    root = tmp_path / 'ds'
    (root / 'images').mkdir(parents=True)
    (root / 'masks').mkdir()
    for i, s in enumerate(samples[:3]):
        cv2.imwrite(str(root / 'images' / f'f{i}.png'), cv2.cvtColor(s.image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / 'masks' / f'f{i}.png'), s.anomaly)
    (root / 'images' / 'f1.png').write_bytes(b'not a png')
    run = run_evaluate(
        EvaluateOptions(dataset='folder', root=root, overrides={'model': str(tiny_model)}, progress=False)
    )
    statuses = [f.status for f in run.frames]
    assert statuses[0] == 'ok' and statuses[2] == 'ok' and statuses[1].startswith('skipped:')
    assert 'f1.png' in statuses[1]
    assert run.report['evaluated']['frames_evaluated'] == 2


def test_missing_topics_named(bag: Path, tiny_model: Path) -> None:
    with pytest.raises(ConfigError, match=r'neither /gt/a nor /gt/b is in the bag; topics: .*/camera/image_raw'):
        run_evaluate(
            EvaluateOptions(
                bag=bag,
                anomaly_topic='/gt/a',
                labels_topic='/gt/b',
                overrides={'model': str(tiny_model)},
                progress=False,
            )
        )
    with pytest.raises(ConfigError, match='exactly one of --bag or --dataset'):
        run_evaluate(EvaluateOptions(overrides={'model': str(tiny_model)}))


def test_cli_bag_from_dataset_info_and_evaluate(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / 'b'
    assert (
        cli_main(
            ['bag', 'from-dataset', '--format', 'synthetic', '--count', '3', '--size', '256x128', '--out', str(out)]
        )
        == 0
    )
    capsys.readouterr()
    assert cli_main(['bag', 'info', str(out)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info['topics']['/camera/image_raw']['count'] == 3
    assert cli_main(['evaluate', '--bag', str(out), '--model', str(tiny_model), '--out', str(tmp_path / 'r')]) == 0
    head = json.loads(capsys.readouterr().out)
    assert head['evaluated']['frames_evaluated'] == 3 and head['AP'] is not None
    assert (tmp_path / 'r' / 'report.html').is_file()


def test_unbounded_scorer_is_binned_over_calibrated_range(bag: Path, tiny_model: Path) -> None:
    run = run_evaluate(
        EvaluateOptions(bag=bag, overrides={'model': str(tiny_model), 'scorer': 'max_logit'}, progress=False)
    )
    assert 'binned' in run.report['evaluated']['binning'] and run.report['pixel']['ap'] is not None
    assert np.isfinite(run.report['pixel']['ap'])


def test_bench_metrics_methods_agree(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip('sklearn')
    from anomaly_seg_ros.eval.bench_metrics import run_metrics_bench

    rows = {r['method']: r for r in run_metrics_bench(2, (128, 64))}
    assert set(rows) == {'binned', 'exact', 'sklearn'}
    assert rows['exact']['ap'] == pytest.approx(rows['sklearn']['ap'], abs=1e-9)
    assert rows['binned']['ap'] == pytest.approx(rows['sklearn']['ap'], abs=1e-3)
    assert all(r['pixels'] == rows['sklearn']['pixels'] > 0 for r in rows.values())
    assert 'vs sklearn' in capsys.readouterr().out


def test_blend_own_drive_then_bag_then_evaluate(tiny_model: Path, tmp_path: Path, samples: list) -> None:
    """The README's 'your own drives' path: blend objects into plain frames, bag them, evaluate."""
    from anomaly_seg_ros.bag import bag_info
    from anomaly_seg_ros.data.blend import BlendConfig
    from anomaly_seg_ros.data.blend_folder import blend_folder

    drive, objs = tmp_path / 'drive', tmp_path / 'objects'
    drive.mkdir()
    objs.mkdir()
    for i, s in enumerate(samples[:3]):
        cv2.imwrite(str(drive / f'frame{i}.png'), cv2.cvtColor(s.image, cv2.COLOR_RGB2BGR))
    obj = np.zeros((30, 30, 4), np.uint8)
    cv2.rectangle(obj, (4, 4), (26, 26), (0, 200, 255, 255), -1)
    cv2.imwrite(str(objs / 'crate.png'), obj)
    assert blend_folder(drive, objs, tmp_path / 'blended', BlendConfig(in_distribution_prob=0.0), progress=False) == 3
    assert (
        cli_main(
            [
                'bag',
                'from-dataset',
                '--format',
                'fishyscapes',
                '--root',
                str(tmp_path / 'blended'),
                '--out',
                str(tmp_path / 'bag'),
            ]
        )
        == 0
    )
    assert bag_info(tmp_path / 'bag')['topics']['/ground_truth/anomaly']['count'] == 3
    run = run_evaluate(EvaluateOptions(bag=tmp_path / 'bag', overrides={'model': str(tiny_model)}, progress=False))
    assert run.report['pixel']['n_pos'] > 0 and run.report['evaluated']['frames_evaluated'] == 3


def test_cli_compares_scorers_on_the_same_frames(
    bag: Path, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--scorer a,b,c`: one row per scorer, each equal to its single run; a scorer the model cannot run (sml:
    no fitted statistics) is a row with the reason, and the others still run."""
    args = ['evaluate', '--bag', str(bag), '--model', str(tiny_model)]
    assert cli_main([*args, '--scorer', 'entropy,max_logit,sml', '--out', str(tmp_path / 'cmp')]) == 0
    out = capsys.readouterr().out
    table, listing = out.split('\n[', 1)
    rows = json.loads('[' + listing)
    assert [r['scorer'] for r in rows] == ['entropy', 'max_logit', 'sml']
    assert 'sml_stats' in rows[2]['error'] or 'artefact' in rows[2]['error']
    assert '| max_logit |' in table and 'not evaluated' in table
    assert (tmp_path / 'cmp' / f'{tiny_model.name}__entropy' / 'report.json').is_file()
    for row in rows[:2]:
        assert cli_main([*args, '--scorer', row['scorer']]) == 0
        single = json.loads(capsys.readouterr().out)
        assert row['AP'] == single['AP'] and row['FPR95'] == single['FPR95'] and row['mIoU'] == single['mIoU']
    assert rows[0]['AP'] != rows[1]['AP']


def test_cli_comparison_with_nothing_runnable_exits_2(bag: Path, tiny_model: Path) -> None:
    assert cli_main(['evaluate', '--bag', str(bag), '--model', str(tiny_model), '--scorer', 'sml,nonesuch']) == 2
