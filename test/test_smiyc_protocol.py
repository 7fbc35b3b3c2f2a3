"""The SegmentMeIfYouCan component protocol as the benchmark's public code defines it (issue 12 item 5).

Ties with τ (TP: sIoU >= τ, FP: PPV < τ), the track size filters, the pixel-F1-optimal threshold of the
same run against a brute-force search, the one-pass threshold sweep against single metrics, and what
`evaluate` writes about track and threshold policy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from anomaly_seg_ros.cli import evaluate as cli_evaluate
from anomaly_seg_ros.cli import main as cli_main
from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.eval.accumulate import (
    DEFAULT_COMPONENT_THRESHOLDS,
    SMIYC_TRACK_CHOICES,
    EvalAccumulator,
    EvalSettings,
    candidate_thresholds,
    track_sizes,
)
from anomaly_seg_ros.evaluate import EvaluateOptions, headline, run_evaluate
from anomaly_seg_ros.metrics import SMIYC_TAUS, SmiycComponentMetrics, smiyc_component_metrics
from anomaly_seg_ros.metrics.components import SMIYC_TRACKS, SmiycThresholdSweep

# ---------------------------------------------------------------------------------------------------
# Comparisons at exact ties with τ.
# ---------------------------------------------------------------------------------------------------


def test_siou_equal_to_tau_is_tp_and_ppv_equal_to_tau_is_not_fp() -> None:
    gt = np.zeros((6, 10), np.uint8)
    gt[1:3, 1:3] = 1  # 4 px
    pred = np.zeros((6, 10), bool)
    pred[1:3, 1:5] = True  # the object + 4 in-distribution px: sIoU 4/8 = 0.5, PPV 4/8 = 0.5
    res = smiyc_component_metrics(pred, gt)
    assert list(res.siou) == [0.5] and list(res.ppv) == [0.5]
    taus = np.asarray(SMIYC_TAUS)
    np.testing.assert_array_equal(res.tp, (taus <= 0.5).astype(int))  # 0.5 >= τ up to and with τ = 0.5
    np.testing.assert_array_equal(res.fn, (taus > 0.5).astype(int))
    np.testing.assert_array_equal(res.fp, (taus > 0.5).astype(int))  # 0.5 < τ only past τ = 0.5
    assert res.f1_at(0.5) == 1.0 and res.f1_at(0.55) == 0.0


def test_tie_at_one_third_and_two_thirds() -> None:
    """sIoU 1/3 is not >= 0.35 but PPV 2/3 is < 0.7: the float τ grid must not blur either tie."""
    gt = np.zeros((4, 12), np.uint8)
    gt[0, 0:2] = 1  # 2 px
    pred = np.zeros((4, 12), bool)
    pred[0, 0:6] = True  # sIoU 2/6, PPV 2/6
    gt[2, 6:8] = 1
    pred[2, 5:8] = True  # sIoU 2/3, PPV 2/3
    res = smiyc_component_metrics(pred, gt)
    np.testing.assert_allclose(sorted(res.siou), [1 / 3, 2 / 3])
    for tau, tp, fp in [(0.25, 2, 0), (0.35, 1, 1), (0.65, 1, 1), (0.7, 0, 2)]:
        i = SMIYC_TAUS.index(tau)
        assert (res.tp[i], res.fp[i]) == (tp, fp), tau


# ---------------------------------------------------------------------------------------------------
# Track size filters.
# ---------------------------------------------------------------------------------------------------


def _size_frame(pred_keep: int, gt_keep: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of single-row components at the edges of a track's filters (rows apart: never 8-connected)."""
    width = pred_keep + 40
    gt = np.zeros((10, width), np.uint8)
    pred = np.zeros((10, width), bool)
    gt[0, :gt_keep] = 1  # exactly the minimum: kept
    gt[2, : gt_keep - 1] = 1  # one short: void
    pred[4, :pred_keep] = True  # exactly the minimum: kept
    pred[6, : pred_keep - 1] = True  # one short: dropped
    # Kept by size (filtered before the small GT is voided), then loses its pixels on the voided GT.
    pred[2, : pred_keep + 20] = True
    return pred, gt


@pytest.mark.parametrize('track', ['anomaly', 'obstacle'])
def test_track_size_filters(track: str) -> None:
    min_pred, min_gt = track_sizes(track)
    assert (min_pred, min_gt) == SMIYC_TRACKS[track] == {'anomaly': (500, 100), 'obstacle': (50, 10)}[track]
    pred, gt = _size_frame(min_pred, min_gt)
    res = smiyc_component_metrics(pred, gt, min_gt_size=min_gt, min_pred_size=min_pred)
    assert res.n_gt_components == 1 and list(res.gt_sizes) == [min_gt]
    assert sorted(res.pred_sizes) == sorted([min_pred, min_pred + 20 - (min_gt - 1)])
    assert list(res.siou) == [0.0] and list(res.ppv) == [0.0, 0.0]
    plain = smiyc_component_metrics(pred, gt)
    assert plain.n_gt_components == 2 and plain.n_pred_components == 3  # row 2 pred merges with nothing else


def test_track_sizes_refuse_mixing_and_unknown() -> None:
    assert track_sizes('none', 7, 3) == (7, 3)
    with pytest.raises(ValueError, match='explicit sizes need track none'):
        track_sizes('anomaly', 5, 0)
    with pytest.raises(ValueError, match='track must be one of anomaly, obstacle, none'):
        track_sizes('road', 0, 0)
    # the CLI spells the choices out (to keep --help light): they must agree
    assert cli_evaluate.SMIYC_TRACK_CHOICES == SMIYC_TRACK_CHOICES
    assert cli_evaluate.DEFAULT_COMPONENT_THRESHOLDS == DEFAULT_COMPONENT_THRESHOLDS


# ---------------------------------------------------------------------------------------------------
# Pixel-F1-optimal threshold, one pass.
# ---------------------------------------------------------------------------------------------------


def _frames(seed: int, n: int = 4, levels: int = 12) -> list[tuple[np.ndarray, np.ndarray]]:
    """Blobby GT with ignore; scores on ``levels`` exact binary fractions (k + 0.5) / 16, anomalies higher."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        gt = (np.kron(rng.random((8, 8)) < 0.2, np.ones((4, 4), np.uint8))).astype(np.uint8)
        gt[rng.random(gt.shape) < 0.03] = 255
        k = rng.integers(0, levels - 4, gt.shape) + 4 * (gt == 1)
        out.append((((k + 0.5) / 16).astype(np.float32), gt))
    return out


def _brute_force_f1(frames: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """Every distinct score as threshold (score >= t), pooled pixel F1 over gt != 255; ties: highest t."""
    scores = np.concatenate([s[g != 255] for s, g in frames])
    labels = np.concatenate([g[g != 255] == 1 for _, g in frames])
    best = (-1.0, 0.0)
    for t in np.unique(scores):
        flagged = scores >= t
        tp = np.count_nonzero(flagged & labels)
        fp = np.count_nonzero(flagged & ~labels)
        fn = np.count_nonzero(~flagged & labels)
        f1 = 2 * tp / (2 * tp + fp + fn)
        if f1 >= best[0]:
            best = (f1, float(t))
    return best[1], best[0]


def _accumulate(frames: list[tuple[np.ndarray, np.ndarray]], **settings: object) -> dict:
    acc = EvalAccumulator(EvalSettings(score_range=(0.0, 1.0), worst_k=0, **settings))  # type: ignore[arg-type]
    for i, (score, gt) in enumerate(frames):
        image = np.zeros((*score.shape, 3), np.uint8)
        acc.add(i, f'f{i}', i, image, score, None, gt, None, None)
    result, *_ = acc.finish()
    return result['components']


@pytest.mark.parametrize('mode', ['exact', 'binned'])
@pytest.mark.parametrize('seed', range(3))
def test_threshold_is_the_brute_force_pixel_f1_optimum(seed: int, mode: str) -> None:
    frames = _frames(seed)
    t_best, f1_best = _brute_force_f1(frames)
    comp = _accumulate(frames, mode=mode, bins=32, track='none', min_pred_size=2, min_gt_size=3)
    assert comp['threshold_policy'] == 'pixel-F1-optimal' and comp['threshold_rule'] == 'score >= threshold'
    assert comp['threshold'] == t_best and comp['threshold_is_optimal'] is True
    assert comp['pixel_f1_optimal'] == pytest.approx(f1_best) == comp['pixel_f1_at_threshold']
    # the SMIYC numbers are those of the prediction score >= t_best, one-shot on bool masks
    want = smiyc_component_metrics(
        [s >= t_best for s, _ in frames], [g for _, g in frames], min_gt_size=3, min_pred_size=2
    )
    assert comp['smiyc']['mean_f1'] == want.mean_f1
    assert comp['smiyc']['n_gt_components'] == want.n_gt_components
    assert comp['smiyc']['n_pred_components'] == want.n_pred_components
    assert 'fixed_threshold' not in comp


def test_later_frames_past_the_warm_up_and_fixed_threshold() -> None:
    """More frames than the warm-up: the candidates come from the first two, the pick from all six."""
    frames = _frames(11, n=6)
    t_best, _ = _brute_force_f1(frames)
    comp = _accumulate(frames, mode='exact', calibration_frames=2, threshold=0.4, track='none')
    cands = comp['threshold_candidates']
    assert 0 < len(cands) <= DEFAULT_COMPONENT_THRESHOLDS and comp['threshold'] in cands
    assert comp['threshold_is_optimal'] == (t_best in cands)
    sweep_t = comp['threshold']
    want = smiyc_component_metrics([s >= sweep_t for s, _ in frames], [g for _, g in frames])
    assert comp['smiyc']['mean_f1'] == want.mean_f1
    fixed = smiyc_component_metrics([s for s, _ in frames], [g for _, g in frames], threshold=0.4)
    assert comp['fixed_threshold']['threshold'] == 0.4
    assert comp['fixed_threshold']['threshold_rule'] == 'score > threshold'
    assert comp['fixed_threshold']['smiyc']['mean_f1'] == fixed.mean_f1
    assert comp['track'] == 'none' and comp['min_pred_size'] == 0 and comp['min_gt_size'] == 0


def test_no_anomaly_pixel_leaves_the_threshold_undefined() -> None:
    frames = [(s, np.where(g == 1, 0, g).astype(np.uint8)) for s, g in _frames(3, n=2)]
    comp = _accumulate(frames, mode='exact')
    assert comp['threshold'] is None and comp['smiyc']['mean_f1'] is None
    assert 'pixel-F1-optimal threshold is undefined' in comp['smiyc']['note']
    assert comp['track'] == 'anomaly' and (comp['min_pred_size'], comp['min_gt_size']) == (500, 100)


def test_candidates_cover_many_levels_within_k() -> None:
    rng = np.random.default_rng(0)
    n = 1000
    pos = rng.integers(0, 3, n) * (np.arange(n) > 800)
    neg = rng.integers(0, 50, n)
    levels = np.arange(n) / n
    cands = candidate_thresholds(pos, neg, levels, 16)
    assert 2 < len(cands) <= 16 and cands == sorted(cands) and set(cands) <= set(levels.tolist())
    # the warm-up optimum is always a candidate
    keep = (pos + neg) > 0
    lv, tps, fps = levels[keep][::-1], np.cumsum(pos[keep][::-1]), np.cumsum(neg[keep][::-1])
    assert float(lv[np.argmax(2 * tps / (tps + fps + tps[-1]))]) in cands


# ---------------------------------------------------------------------------------------------------
# The sweep against single metrics: streaming == functional, and merge.
# ---------------------------------------------------------------------------------------------------


def test_sweep_equals_single_metrics_and_merges() -> None:
    frames = _frames(5, n=5)
    ts = [0.28125, 0.40625, 0.59375]
    sweep = SmiycThresholdSweep(ts, min_gt_size=3, min_pred_size=2)
    head, tail = (
        SmiycThresholdSweep(ts, min_gt_size=3, min_pred_size=2),
        SmiycThresholdSweep(ts, min_gt_size=3, min_pred_size=2),
    )
    for i, (s, g) in enumerate(frames):
        sweep.update(s, g)
        (head if i < 2 else tail).update(s, g)
    head.merge(tail)
    for t, one, merged in zip(ts, sweep.compute(), head.compute(), strict=True):
        single = SmiycComponentMetrics(t, inclusive=True, min_gt_size=3, min_pred_size=2)
        for s, g in frames:
            single.update(s, g)
        want = single.compute()
        functional = smiyc_component_metrics(
            [s >= t for s, _ in frames], [g for _, g in frames], min_gt_size=3, min_pred_size=2
        )
        for res in (one, merged, functional):
            np.testing.assert_array_equal(res.siou, want.siou)
            np.testing.assert_array_equal(res.ppv, want.ppv)
            np.testing.assert_array_equal(res.f1, want.f1)
    with pytest.raises(ValueError, match='thresholds'):
        sweep.merge(SmiycThresholdSweep([0.5]))


def test_inclusive_rule_keeps_the_tied_level_and_round_trips() -> None:
    score = np.array([[0.5, 0.5, 0.0]], np.float32)
    gt = np.array([[1, 1, 0]], np.uint8)
    strict = smiyc_component_metrics(score, gt, threshold=0.5)
    inclusive = SmiycComponentMetrics(0.5, inclusive=True)
    inclusive.update(score, gt)
    assert strict.n_pred_components == 0 and inclusive.compute().n_pred_components == 1
    copy = SmiycComponentMetrics(0.5, inclusive=True)
    copy.load_state_dict(json.loads(json.dumps(inclusive.state_dict(), default=lambda a: a.tolist())))
    np.testing.assert_array_equal(copy.compute().siou, inclusive.compute().siou)
    with pytest.raises(ValueError, match='inclusive'):
        SmiycComponentMetrics(0.5).load_state_dict(inclusive.state_dict())


# ---------------------------------------------------------------------------------------------------
# evaluate: report.json / report.html / headline and the CLI.
# ---------------------------------------------------------------------------------------------------


def test_evaluate_report_records_track_and_threshold_policy(tiny_model: Path, tmp_path: Path) -> None:
    opts = EvaluateOptions(
        dataset='synthetic',
        count=3,
        size=(128, 64),
        overrides={'model': str(tiny_model)},
        track='obstacle',
        threshold=0.5,
        out=tmp_path,
        progress=False,
    )
    run = run_evaluate(opts)
    saved = json.loads((tmp_path / 'report.json').read_text())
    comp = saved['components']
    assert comp['track'] == 'obstacle' and (comp['min_pred_size'], comp['min_gt_size']) == (50, 10)
    assert comp['threshold_policy'] == 'pixel-F1-optimal' and comp['threshold'] in comp['threshold_candidates']
    assert comp['fixed_threshold']['threshold'] == 0.5
    assert 'track obstacle' in saved['evaluated']['smiyc_protocol']
    head = headline(run.report)
    assert head['smiyc_mean_F1'] == run.report['components']['smiyc']['mean_f1']
    assert head['smiyc_threshold'] == comp['threshold'] and head['smiyc_track'] == 'obstacle'
    html = (tmp_path / 'report.html').read_text()
    assert 'SMIYC mean F1' in html and 'pixel-F1-optimal' in html and 'track obstacle' in html


def test_evaluate_refuses_sizes_with_a_preset(tiny_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match='--min-pred-size/--min-gt-size need --track none'):
        run_evaluate(EvaluateOptions(dataset='synthetic', count=1, min_pred_size=5, progress=False))
    argv = ['evaluate', '--dataset', 'synthetic', '--count', '1', '--model', str(tiny_model), '--min-gt-size', '3']
    assert cli_main(argv) == 2
    assert '--track anomaly sets the SMIYC size filters' in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli_main(['evaluate', '--dataset', 'synthetic', '--track', 'road'])
    assert e.value.code == 2
    assert "--track: invalid choice: 'road'" in capsys.readouterr().err
