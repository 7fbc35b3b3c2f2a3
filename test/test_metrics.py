"""Tests for anomaly_seg_ros.metrics: scikit-learn cross-checks, hand cases, streaming, bounds, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score, roc_curve

from anomaly_seg_ros.metrics import (
    SMIYC_TAUS,
    ChanSegmentMetrics,
    PixelAnomalyMetrics,
    SegmentationIoU,
    SmiycComponentMetrics,
    chan_segment_metrics,
    pixel_anomaly_metrics,
    segmentation_iou,
    smiyc_component_metrics,
)

# ---------------------------------------------------------------------------------------------------
# Helpers.
# ---------------------------------------------------------------------------------------------------


def sk_reference(score: np.ndarray, gt: np.ndarray) -> tuple[float, float, float]:
    """AP, AUROC, FPR95 from scikit-learn on the non-ignored pixels (FPR95 on the full, undropped curve)."""
    valid = gt != 255
    y, s = gt[valid] == 1, score[valid]
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return average_precision_score(y, s), roc_auc_score(y, s), fpr[np.argmax(tpr >= 0.95)]


def random_frame(rng: np.random.Generator, shape=(40, 50), p_anom=0.2, p_ignore=0.1, dtype=np.float32):
    gt = (rng.random(shape) < p_anom).astype(np.uint8)
    gt[rng.random(shape) < p_ignore] = 255
    # Informative but overlapping scores: anomalies shifted up.
    score = (rng.normal(size=shape) + 1.2 * (gt == 1)).astype(dtype)
    return score, gt


def assert_close_to_sklearn(res, score, gt, tol=1e-9):
    ap, auroc, fpr95 = sk_reference(score, gt)
    assert res.ap == pytest.approx(ap, abs=tol)
    assert res.auroc == pytest.approx(auroc, abs=tol)
    assert res.fpr95 == pytest.approx(fpr95, abs=tol)


# ---------------------------------------------------------------------------------------------------
# Pixel level: exact mode against scikit-learn.
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize('seed', range(4))
@pytest.mark.parametrize('dtype', [np.float16, np.float32, np.float64])
def test_exact_matches_sklearn_random(seed, dtype):
    score, gt = random_frame(np.random.default_rng(seed), dtype=dtype)
    res = pixel_anomaly_metrics(score, gt)
    assert res.mode == 'exact' and res.note == ''
    assert_close_to_sklearn(res, score, gt)
    assert res.n_pos == np.count_nonzero(gt == 1)
    assert res.n_neg == np.count_nonzero(gt == 0)
    assert res.n_ignored == np.count_nonzero(gt == 255)
    assert res.ap_error_bound == res.auroc_error_bound == res.fpr95_error_bound == 0.0


@pytest.mark.parametrize('levels', [2, 3, 5, 17])
def test_exact_matches_sklearn_with_ties(levels):
    rng = np.random.default_rng(levels)
    score, gt = random_frame(rng, shape=(30, 30))
    score = (np.round(rng.random(score.shape) * (levels - 1)) / (levels - 1) + 0.3 * (gt == 1)).astype(np.float32)
    assert np.unique(score).size <= 2 * levels  # heavily tied
    assert_close_to_sklearn(pixel_anomaly_metrics(score, gt), score, gt)


def test_constant_scores_all_tied():
    rng = np.random.default_rng(1)
    _, gt = random_frame(rng)
    score = np.full(gt.shape, 0.25, np.float32)
    res = pixel_anomaly_metrics(score, gt)
    assert_close_to_sklearn(res, score, gt)
    # One tie group: precision = anomaly fraction everywhere, ROC is the diagonal, TPR jumps 0 -> 1.
    assert res.ap == pytest.approx(res.n_pos / (res.n_pos + res.n_neg))
    assert res.auroc == 0.5 and res.fpr95 == 1.0
    assert 'tied' in res.note
    binned = pixel_anomaly_metrics(score, gt, 'binned', score_range=(0, 1), bins=64)
    assert (binned.ap, binned.auroc, binned.fpr95) == pytest.approx((res.ap, res.auroc, res.fpr95))
    assert 'one bin' in binned.note


def test_no_positive_is_nan_with_reason():
    score = np.random.default_rng(0).random((8, 8)).astype(np.float32)
    gt = np.zeros((8, 8), np.uint8)
    gt[0] = 255
    for mode in ('exact', 'binned'):
        res = pixel_anomaly_metrics(score, gt, mode, score_range=(0, 1))
        assert math.isnan(res.ap) and math.isnan(res.auroc) and math.isnan(res.fpr95)
        assert math.isnan(res.ap_error_bound)
        assert 'no anomaly pixel' in res.note
        assert (res.n_pos, res.n_neg, res.n_ignored) == (0, 56, 8)


def test_all_positive_is_nan_with_reason():
    score = np.random.default_rng(0).random((8, 8)).astype(np.float32)
    gt = np.ones((8, 8), np.uint8)
    res = pixel_anomaly_metrics(score, gt)
    # scikit-learn's AP is a meaningless 1.0 here; we report NaN and say why.
    assert average_precision_score(gt.ravel() == 1, score.ravel()) == 1.0
    assert math.isnan(res.ap) and math.isnan(res.auroc) and math.isnan(res.fpr95)
    assert 'no in-distribution pixel' in res.note


def test_no_evaluated_pixel():
    res = pixel_anomaly_metrics(np.zeros((3, 3), np.float32), np.full((3, 3), 255, np.uint8))
    assert math.isnan(res.ap) and res.n_ignored == 9 and 'no evaluated pixel' in res.note
    res = PixelAnomalyMetrics(score_range=(0, 1)).compute()
    assert math.isnan(res.auroc) and 'no evaluated pixel' in res.note


def test_ignored_pixels_never_count():
    rng = np.random.default_rng(3)
    score, gt = random_frame(rng, p_ignore=0.3)
    res = pixel_anomaly_metrics(score, gt)
    scrambled = score.copy()
    scrambled[gt == 255] = rng.normal(size=np.count_nonzero(gt == 255)) * 100  # even far out of range
    for mode in ('exact', 'binned'):
        a = pixel_anomaly_metrics(score, gt, mode, score_range=(-5, 5))
        b = pixel_anomaly_metrics(scrambled, gt, mode, score_range=(-5, 5))
        assert (a.ap, a.auroc, a.fpr95, a.out_of_range) == (b.ap, b.auroc, b.fpr95, b.out_of_range)
    assert_close_to_sklearn(res, score, gt)


def test_fpr95_hand_case():
    # 20 anomalies (P), 4 in-distribution (N), from high score to low (index: label):
    #   0-9: P | 10: N | 11-18: P | 19: N | 20: P | 21: N | 22: P | 23: N
    # TPR first reaches 19/20 = 0.95 at index 20 (the 19th P); 2 N are above it -> FPR95 = 2/4.
    labels = [1] * 10 + [0] + [1] * 8 + [0, 1, 0, 1, 0]
    gt = np.array(labels, np.uint8)[None, :]
    score = np.linspace(1.0, 0.0, len(labels))[None, :]
    cases = {
        (): 0.5,
        (19, 20): 0.5,  # 19th P tied with the N above it: that N was in anyway
        (20, 21): 0.75,  # tied with the N below: one threshold admits both -> 3/4
        (20, 21, 22, 23): 1.0,
    }  # the crossing group holds every remaining N -> 4/4
    for tied, expected in cases.items():
        s = score.copy()
        if tied:
            s[0, list(tied)] = s[0, tied[0]]
        res = pixel_anomaly_metrics(s, gt)
        assert res.fpr95 == expected
        assert res.fpr95 == pytest.approx(sk_reference(s, gt)[2])


def test_ap_auroc_hand_case():
    # From high to low: P N P N. Precision at the two P: 1/1 and 2/3 -> AP = (1 + 2/3) / 2 = 5/6.
    # Pairs (P, N) ranked correctly: (P1,N1), (P1,N2), (P2,N2) = 3 of 4 -> AUROC 0.75; TPR 1 needs 1 N -> FPR95 1/2.
    score = np.array([[0.9, 0.7, 0.5, 0.3]], np.float32)
    gt = np.array([[1, 0, 1, 0]], np.uint8)
    res = pixel_anomaly_metrics(score, gt)
    assert (res.ap, res.auroc, res.fpr95) == pytest.approx((5 / 6, 0.75, 0.5))


# ---------------------------------------------------------------------------------------------------
# Pixel level: streaming and binned mode.
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize('mode', ['exact', 'binned'])
def test_streaming_equals_one_shot(mode):
    rng = np.random.default_rng(7)
    frames = [random_frame(rng, shape=shape) for shape in [(20, 30), (5, 7), (33, 10), (1, 1), (16, 16)]]
    acc = PixelAnomalyMetrics(mode, score_range=(-3, 3), bins=256)
    for s, g in frames:
        acc.update(s, g)
    pooled_s = np.concatenate([s.ravel() for s, _ in frames])[None, :]
    pooled_g = np.concatenate([g.ravel() for _, g in frames])[None, :]
    one = pixel_anomaly_metrics(pooled_s, pooled_g, mode, score_range=(-3, 3), bins=256)
    fn = pixel_anomaly_metrics([s for s, _ in frames], (g for _, g in frames), mode, score_range=(-3, 3), bins=256)
    streamed = acc.compute()
    for r in (one, fn):
        assert (r.ap, r.auroc, r.fpr95) == pytest.approx((streamed.ap, streamed.auroc, streamed.fpr95), abs=1e-12)
        assert (r.n_pos, r.n_neg, r.n_ignored, r.out_of_range) == (
            streamed.n_pos,
            streamed.n_neg,
            streamed.n_ignored,
            streamed.out_of_range,
        )
    if mode == 'exact':
        assert_close_to_sklearn(streamed, pooled_s, pooled_g)
    acc.reset()
    assert acc.compute().n_pos == 0 and acc.n_frames == 0


def test_binned_equals_exact_on_bin_indices():
    # Binning only merges ties: the binned result is the exact result of the bin indices.
    rng = np.random.default_rng(11)
    score, gt = random_frame(rng, shape=(60, 60))
    lo, hi, bins = -2.0, 3.0, 100
    binned = pixel_anomaly_metrics(score, gt, 'binned', score_range=(lo, hi), bins=bins)
    idx = np.clip(np.floor((score.astype(np.float64) - lo) * bins / (hi - lo)), 0, bins - 1)
    exact_on_idx = pixel_anomaly_metrics(idx, gt)
    assert (binned.ap, binned.auroc, binned.fpr95) == pytest.approx(
        (exact_on_idx.ap, exact_on_idx.auroc, exact_on_idx.fpr95), abs=1e-12
    )
    assert binned.out_of_range == np.count_nonzero(((score < lo) | (score > hi)) & (gt != 255))


@pytest.mark.parametrize('seed', range(6))
def test_binned_error_within_documented_bound(seed):
    rng = np.random.default_rng(100 + seed)
    shape = (200, 250)
    gt = (rng.random(shape) < rng.uniform(0.01, 0.3)).astype(np.uint8)
    gt[rng.random(shape) < 0.05] = 255
    kind = seed % 3
    if kind == 0:  # overlapping Gaussians in range
        score = rng.normal(0.4, 0.12, shape) + 0.2 * (gt == 1)
    elif kind == 1:  # skewed: most mass near 0, like a softmax score
        score = rng.beta(0.5, 4, shape) + rng.beta(2, 2, shape) * 0.5 * (gt == 1)
    else:  # a good part out of range and clipped, plus ties
        score = np.round(rng.normal(0.5, 0.4, shape) + 0.3 * (gt == 1), 3)
    score = score.astype(np.float32)
    exact = pixel_anomaly_metrics(score, gt)
    binned = pixel_anomaly_metrics(score, gt, 'binned', score_range=(0, 1), bins=1024)
    assert abs(binned.ap - exact.ap) <= binned.ap_error_bound + 1e-12
    assert abs(binned.auroc - exact.auroc) <= binned.auroc_error_bound + 1e-12
    assert -1e-12 <= binned.fpr95 - exact.fpr95 <= binned.fpr95_error_bound + 1e-12
    if kind == 0:  # mass spread over the range: the bound is practical, not just valid
        assert binned.ap_error_bound < 0.02 and binned.auroc_error_bound < 1e-3
    if kind == 2:
        assert binned.out_of_range > 0 and 'outside the declared range [0, 1]' in binned.note


def test_out_of_range_clipped_and_counted():
    score = np.array([[-0.5, 0.0, 0.5, 1.0, 1.5, 7.0]], np.float32)
    gt = np.array([[0, 0, 1, 0, 1, 255]], np.uint8)
    res = pixel_anomaly_metrics(score, gt, 'binned', score_range=(0, 1), bins=4)
    assert res.out_of_range == 2  # -0.5 and 1.5; 7.0 is ignored, 0.0 and 1.0 are in the closed range
    clipped = pixel_anomaly_metrics(np.clip(score, 0, 1), gt, 'binned', score_range=(0, 1), bins=4)
    assert (res.ap, res.auroc, res.fpr95) == (clipped.ap, clipped.auroc, clipped.fpr95)
    assert '2 evaluated score(s) outside' in res.note and clipped.out_of_range == 0
    exact = pixel_anomaly_metrics(score, gt, 'exact', score_range=(0, 1))
    assert exact.out_of_range == 2 and 'counted as they are' in exact.note
    inf = pixel_anomaly_metrics(
        np.array([[-np.inf, np.inf]], np.float32), np.array([[0, 1]], np.uint8), 'binned', score_range=(0, 1), bins=8
    )
    assert inf.out_of_range == 2 and inf.ap == 1.0


def test_binned_full_size_frames_are_bounded():
    """Full-size frames keep fixed memory; the speed (ms a frame) is printed by `anomaly-seg bench-metrics`."""
    rng = np.random.default_rng(5)
    gt = (rng.random((1024, 2048)) < 0.02).astype(np.uint8)
    gt[:64] = 255
    score = rng.random((1024, 2048), dtype=np.float32)
    acc = PixelAnomalyMetrics(score_range=(0, 1))
    for _ in range(3):
        acc.update(score, gt)
    res = acc.compute()
    assert acc._hist.shape == (2, 65536)  # fixed memory whatever the number of frames
    assert res.n_pos + res.n_neg + res.n_ignored == 3 * gt.size
    assert res.auroc == pytest.approx(0.5, abs=0.01)


def test_exact_mode_pair_guard():
    acc = PixelAnomalyMetrics('exact', max_exact_pairs=10)
    acc.update(np.zeros((2, 5), np.float32), np.zeros((2, 5), np.uint8))
    with pytest.raises(ValueError, match='max_exact_pairs=10'):
        acc.update(np.zeros((1, 1), np.float32), np.zeros((1, 1), np.uint8))


# ---------------------------------------------------------------------------------------------------
# Pixel level: input validation.
# ---------------------------------------------------------------------------------------------------


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r'score shape \(4, 5\) does not match gt shape \(4, 6\)'):
        pixel_anomaly_metrics(np.zeros((4, 5), np.float32), np.zeros((4, 6), np.uint8))
    with pytest.raises(ValueError, match=r'pred shape \(3, 3\) does not match gt shape \(3, 4\)'):
        smiyc_component_metrics(np.zeros((3, 3), bool), np.zeros((3, 4), np.uint8))
    with pytest.raises(ValueError, match=r'pred shape \(2, 2\) does not match gt shape \(2, 3\)'):
        segmentation_iou(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8))


def test_bad_dtypes():
    gt = np.zeros((2, 2), np.uint8)
    with pytest.raises(ValueError, match='score must be a floating-point array, got dtype int64'):
        pixel_anomaly_metrics(np.zeros((2, 2), np.int64), gt)
    with pytest.raises(ValueError, match='gt must be an integer label map .*got dtype float32'):
        pixel_anomaly_metrics(np.zeros((2, 2), np.float32), np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match='gt must be an integer label map .*got dtype bool'):
        chan_segment_metrics(np.zeros((2, 2), bool), np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match='pred must be a bool mask or a floating-point score, got dtype uint8'):
        smiyc_component_metrics(np.zeros((2, 2), np.uint8), gt)
    with pytest.raises(ValueError, match='pred must be an integer class-id map, got dtype float64'):
        segmentation_iou(np.zeros((2, 2)), gt)
    with pytest.raises(ValueError, match=r'score must be a 2-D HxW array, got shape \(1, 2, 2\)'):
        PixelAnomalyMetrics('exact').update(np.zeros((1, 2, 2), np.float32), gt)
    with pytest.raises(ValueError, match=r'NxHxW frames, got shape \(2, 2, 2, 2\)'):
        pixel_anomaly_metrics(np.zeros((2, 2, 2, 2), np.float32), np.zeros((2, 2, 2, 2), np.uint8))


def test_invalid_gt_values_are_named():
    score = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r'gt holds invalid value\(s\) 2, 7 \(2 pixels\)'):
        pixel_anomaly_metrics(score, np.array([[0, 1, 2], [255, 7, 0]], np.uint8))
    with pytest.raises(ValueError, match='gt holds invalid value -1'):
        pixel_anomaly_metrics(score, np.array([[0, 1, -1], [0, 0, 0]], np.int32))
    with pytest.raises(ValueError, match='gt holds invalid value 300'):
        chan_segment_metrics(score > 0, np.array([[0, 1, 300], [0, 0, 0]], np.int32))
    with pytest.raises(ValueError, match=r'gt holds invalid value\(s\) 19 '):
        segmentation_iou(np.zeros((1, 2), np.uint8), np.array([[0, 19]], np.uint8))
    # int gt with legal values is accepted (cast to uint8)
    assert pixel_anomaly_metrics(np.array([[0.1, 0.9]]), np.array([[0, 1]], np.int64)).ap == 1.0


def test_bad_scores_and_config():
    gt = np.zeros((2, 2), np.uint8)
    with pytest.raises(ValueError, match='score contains 1 NaN'):
        pixel_anomaly_metrics(np.array([[0.0, np.nan], [0.0, 0.0]], np.float32), gt)
    with pytest.raises(ValueError, match='score_range'):
        PixelAnomalyMetrics('binned')
    with pytest.raises(ValueError, match='finite score_range'):
        PixelAnomalyMetrics(score_range=(0.0, math.inf))
    with pytest.raises(ValueError, match='lo < hi'):
        PixelAnomalyMetrics(score_range=(1.0, 1.0))
    with pytest.raises(ValueError, match='bins must be a positive integer'):
        PixelAnomalyMetrics(score_range=(0, 1), bins=0)
    with pytest.raises(ValueError, match="mode must be 'binned' or 'exact'"):
        PixelAnomalyMetrics('fast', score_range=(0, 1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='differ in length'):
        pixel_anomaly_metrics([np.zeros((2, 2), np.float32)] * 2, [gt])


# ---------------------------------------------------------------------------------------------------
# mIoU.
# ---------------------------------------------------------------------------------------------------


def test_miou_pools_the_dataset_not_images():
    # Frame 1: gt 0 0 0 0, pred 0 0 0 0.   Frame 2: gt 0 1 1 1, pred 1 1 1 1.
    # Pooled: road (0): TP 4, FN 1 -> 4/5 = 0.8; sidewalk (1): TP 3, FP 1 -> 3/4 = 0.75; mIoU = 0.775.
    # Per-image average would be (1.0 + (0 + 0.75) / 2) / 2 = 0.6875.
    preds = [np.zeros((1, 4), np.uint8), np.ones((1, 4), np.uint8)]
    gts = [np.zeros((1, 4), np.uint8), np.array([[0, 1, 1, 1]], np.uint8)]
    acc = SegmentationIoU()
    for p, g in zip(preds, gts, strict=True):
        acc.update(p, g)
    res = acc.compute()
    assert res.per_class_iou[:2] == pytest.approx([0.8, 0.75])
    assert np.isnan(res.per_class_iou[2:]).all()  # absent from GT and prediction: excluded
    assert res.miou == pytest.approx(0.775)
    assert 'building' in res.note and res.class_names[0] == 'road'
    assert segmentation_iou(preds, gts).miou == res.miou
    assert res.confusion[0, 1] == 1 and res.confusion.shape == (19, 19)


def test_miou_ignore_other_and_false_positive_class():
    gt = np.array([[0, 0, 255, 255, 2]], np.uint8)
    pred = np.array([[0, 19, 5, 255, 3]], np.int32)  # 19 = extra OoD class, 255 under ignore
    res = segmentation_iou(pred, gt)
    # road: TP 1, FN 1 (predicted as "other") -> 1/2. building (2): FN 1 -> 0. wall (3): FP 1 -> 0.
    # class 5 was predicted only on an ignored pixel -> absent -> NaN.
    assert res.per_class_iou[0] == 0.5 and res.per_class_iou[2] == 0.0 and res.per_class_iou[3] == 0.0
    assert np.isnan(res.per_class_iou[5])
    assert res.miou == pytest.approx(0.5 / 3)
    assert (res.n_pixels, res.n_ignored, res.n_pred_other) == (3, 2, 1)


def test_miou_matches_sklearn_confusion_random():
    rng = np.random.default_rng(2)
    gts = rng.integers(0, 19, (3, 20, 20)).astype(np.uint8)
    gts[:, :3] = 255
    preds = np.where(rng.random(gts.shape) < 0.6, gts, rng.integers(0, 19, gts.shape)).astype(np.uint8)
    res = segmentation_iou(preds, gts)
    valid = gts != 255
    cm = confusion_matrix(gts[valid], preds[valid], labels=range(19))
    np.testing.assert_array_equal(res.confusion, cm)
    tp = np.diag(cm)
    np.testing.assert_allclose(res.per_class_iou, tp / (cm.sum(0) + cm.sum(1) - tp))


def test_miou_empty_and_config():
    res = SegmentationIoU().compute()
    assert math.isnan(res.miou) and 'undefined' in res.note
    with pytest.raises(ValueError, match='num_classes'):
        SegmentationIoU(num_classes=256)
    small = segmentation_iou(np.array([[0, 1]]), np.array([[0, 1]]), num_classes=2)
    assert small.miou == 1.0 and small.class_names == ('0', '1')


# ---------------------------------------------------------------------------------------------------
# SegmentMeIfYouCan component metrics.
# ---------------------------------------------------------------------------------------------------


def hand_layout() -> tuple[np.ndarray, np.ndarray]:
    """12x20 frame: perfect hit A, missed B, false positive, and one prediction over two blobs C1, C2."""
    gt = np.zeros((12, 20), np.uint8)
    pred = np.zeros((12, 20), bool)
    gt[1:4, 1:4] = 1  # A, 9 px
    pred[1:4, 1:4] = True  # predicted exactly
    gt[1:3, 8:10] = 1  # B, 4 px, missed
    pred[9:11, 1:3] = True  # FP, 4 px on in-distribution
    gt[6:8, 8:10] = 1  # C1, 4 px
    gt[6:8, 12:14] = 1  # C2, 4 px
    pred[6:8, 8:14] = True  # 12 px over C1, the 4 px gap and C2
    return pred, gt


def test_smiyc_hand_case():
    pred, gt = hand_layout()
    res = smiyc_component_metrics(pred, gt)
    # sIoU: A = 9/9 = 1; B = 0; C1 = 4 / |(C1 ∪ P) \ C2| = 4 / (12 - 4) = 0.5, C2 likewise 0.5
    # (without the A(k) adjustment it would be 4/12).
    assert sorted(res.siou) == pytest.approx([0.0, 0.5, 0.5, 1.0])
    # PPV: A's prediction 9/9 = 1, FP 0/4 = 0, the wide prediction 8/12 = 2/3.
    assert sorted(res.ppv) == pytest.approx([0.0, 2 / 3, 1.0])
    assert sorted(res.gt_sizes) == [4, 4, 4, 9] and sorted(res.pred_sizes) == [4, 9, 12]
    # The benchmark's comparisons: TP sIoU >= τ, FP PPV < τ (sIoU 0.5 at τ = 0.5 is a TP).
    # τ in 0.25..0.50: TP 3 (A, C1, C2), FN 1, FP 1 -> F1 = 6/8 = 0.75.
    # τ in 0.55..0.65: sIoU 0.5 < τ: TP 1, FN 3, FP 1 -> 2/6 = 1/3.
    # τ in 0.70, 0.75: PPV 2/3 < τ too: TP 1, FN 3, FP 2 -> 2/7.
    expected_f1 = [0.75] * 6 + [1 / 3] * 3 + [2 / 7] * 2
    assert res.taus == SMIYC_TAUS
    np.testing.assert_allclose(res.f1, expected_f1)
    np.testing.assert_array_equal(res.tp, [3] * 6 + [1] * 5)
    np.testing.assert_array_equal(res.fn, [1] * 6 + [3] * 5)
    np.testing.assert_array_equal(res.fp, [1] * 9 + [2] * 2)
    assert res.mean_f1 == pytest.approx((6 * 0.75 + 3 / 3 + 2 * 2 / 7) / 11)
    assert res.mean_siou == pytest.approx(2 / 4) and res.mean_ppv == pytest.approx(5 / 9)
    assert res.f1_at(0.5) == pytest.approx(0.75)


def test_smiyc_eight_connectivity_and_threshold_strictness():
    gt = np.zeros((4, 4), np.uint8)
    gt[0, 0] = gt[1, 1] = 1  # diagonal neighbours: one 8-connected component of 2 px
    score = np.zeros((4, 4), np.float32)
    score[0, 0] = 0.9
    score[1, 1] = 0.5  # exactly at the threshold: not predicted (score > threshold)
    res = smiyc_component_metrics(score, gt, threshold=0.5)
    assert res.n_gt_components == 1 and list(res.siou) == [0.5] and list(res.ppv) == [1.0]


def test_smiyc_ignore_handling():
    gt = np.zeros((6, 12), np.uint8)
    gt[:, 6] = 255  # an ignore strip
    gt[1:3, 1:3] = 1  # 4 px object
    pred = np.zeros((6, 12), bool)
    pred[1:3, 1:5] = True  # object + 4 px in-distribution
    pred[4, 4:9] = True  # crosses the ignore strip: split into (4,4)-(4,5) and (4,7)-(4,8)
    pred[0:2, 6] = True  # wholly on ignore: no component at all
    res = smiyc_component_metrics(pred, gt)
    assert sorted(res.ppv) == pytest.approx([0.0, 0.0, 0.5])  # 4/8 for the object's prediction
    assert sorted(res.pred_sizes) == [2, 2, 8]
    assert list(res.siou) == pytest.approx([0.5])  # 4 / 8


def test_smiyc_size_filters():
    gt = np.zeros((10, 10), np.uint8)
    gt[1:4, 1:4] = 1  # 9 px, kept
    gt[7, 7] = 1  # 1 px, below min_gt_size=2 -> becomes ignore
    pred = np.zeros((10, 10), bool)
    pred[1:4, 1:4] = True
    pred[7, 7:9] = True  # 2 px: 1 on the tiny GT (leaves the ROI), 1 on in-distribution
    pred[9, 0] = True  # 1 px: below min_pred_size=2 -> dropped
    res = smiyc_component_metrics(pred, gt, min_gt_size=2, min_pred_size=2)
    assert res.n_gt_components == 1 and list(res.siou) == [1.0]
    # the 2 px prediction keeps only its in-distribution pixel: PPV 0/1
    assert sorted(res.ppv) == [0.0, 1.0] and sorted(res.pred_sizes) == [1, 9]
    plain = smiyc_component_metrics(pred, gt)
    assert plain.n_gt_components == 2 and plain.n_pred_components == 3
    assert sorted(plain.ppv) == [0.0, 0.5, 1.0]


def reference_smiyc(pred: np.ndarray, gt: np.ndarray) -> tuple[list[float], list[float]]:
    """Set-by-set transcription of the definitions (scipy labelling), independent of the vectorised code."""
    from scipy import ndimage

    structure = np.ones((3, 3), int)
    pred = pred & (gt != 255)
    gt_lab, n_gt = ndimage.label(gt == 1, structure)
    pr_lab, n_pr = ndimage.label(pred, structure)
    sious, ppvs = [], []
    for k in range(1, n_gt + 1):
        comp = gt_lab == k
        touching = [j for j in range(1, n_pr + 1) if (comp & (pr_lab == j)).any()]
        khat = np.isin(pr_lab, touching) if touching else np.zeros_like(comp)
        others = (gt_lab > 0) & ~comp
        sious.append((comp & khat).sum() / ((comp | khat) & ~others).sum())
    for j in range(1, n_pr + 1):
        comp = pr_lab == j
        ppvs.append((comp & (gt_lab > 0)).sum() / comp.sum())
    return sious, ppvs


@pytest.mark.parametrize('seed', range(3))
def test_smiyc_matches_reference_and_streams(seed):
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(4):
        gt = (rng.random((24, 24)) < 0.15).astype(np.uint8)
        gt = np.where(np.kron(rng.random((6, 6)) < 0.3, np.ones((4, 4))) > 0, 1, gt).astype(np.uint8)
        gt[rng.random(gt.shape) < 0.05] = 255
        score = (rng.random(gt.shape) * 0.8 + 0.4 * (gt == 1)).astype(np.float32)
        frames.append((score, gt))
    acc = SmiycComponentMetrics(threshold=0.6)
    all_siou, all_ppv = [], []
    for score, gt in frames:
        acc.update(score, gt)
        s, p = reference_smiyc(score > 0.6, gt)
        all_siou += s
        all_ppv += p
    res = acc.compute()
    np.testing.assert_allclose(np.sort(res.siou), np.sort(all_siou))
    np.testing.assert_allclose(np.sort(res.ppv), np.sort(all_ppv))
    one = smiyc_component_metrics([s for s, _ in frames], [g for _, g in frames], 0.6)
    np.testing.assert_array_equal(one.f1, res.f1)
    assert one.mean_f1 == res.mean_f1 and res.n_frames == 4


def test_smiyc_empty_cases():
    gt = np.zeros((5, 5), np.uint8)
    res = smiyc_component_metrics(np.zeros((5, 5), bool), gt)
    assert math.isnan(res.mean_f1) and np.isnan(res.f1).all() and 'no ground-truth and no predicted' in res.note
    fp_only = smiyc_component_metrics(np.eye(5, dtype=bool), gt)
    assert fp_only.mean_f1 == 0.0 and math.isnan(fp_only.mean_siou) and fp_only.mean_ppv == 0.0
    gt[2, 2] = 1
    miss = smiyc_component_metrics(np.zeros((5, 5), bool), gt)
    assert miss.mean_f1 == 0.0 and math.isnan(miss.mean_ppv) and 'no predicted component' in miss.note
    with pytest.raises(ValueError, match='no threshold'):
        smiyc_component_metrics(np.zeros((5, 5), np.float32), gt)
    with pytest.raises(ValueError, match='min_gt_size'):
        SmiycComponentMetrics(min_gt_size=-1)


# ---------------------------------------------------------------------------------------------------
# Chan et al. segment-wise errors.
# ---------------------------------------------------------------------------------------------------


def test_chan_hand_case():
    pred, gt = hand_layout()
    res = chan_segment_metrics(pred, gt)
    # Predicted segments: A's (touches A) TP, the wide one (touches C1, C2) TP, the FP one FP.
    # GT components: A, C1, C2 detected; B touched by nothing -> FN 1. F1 = 2*2 / (2*2 + 1 + 1) = 2/3.
    assert (res.tp, res.fp, res.fn) == (2, 1, 1)
    assert (res.n_pred_segments, res.n_gt_segments, res.n_gt_detected) == (3, 4, 3)
    assert res.f1 == pytest.approx(2 / 3)
    # Road miss rate (eq. 8): in-distribution pixels 240 - 21 = 219, flagged: FP 4 + gap 4 = 8.
    assert (res.n_in_dist_pixels, res.n_in_dist_flagged) == (219, 8)
    assert res.road_miss_rate == pytest.approx(8 / 219)


def test_chan_single_pixel_overlap_threshold_and_ignore():
    gt = np.zeros((8, 8), np.uint8)
    gt[0:4, 0:4] = 1
    gt[:, 7] = 255
    score = np.zeros((8, 8), np.float32)
    score[3:6, 3:6] = 0.5  # 9 px segment sharing only pixel (3, 3) with the object: IoU > 0 -> TP
    score[0:3, 7] = 0.9  # on ignore only: removed, no FP
    res = chan_segment_metrics(score, gt, threshold=0.5)  # score >= t (eq. 5): 0.5 is predicted
    assert (res.tp, res.fp, res.fn) == (1, 0, 0) and res.n_in_dist_flagged == 8
    strict = chan_segment_metrics(score, gt, threshold=0.51)
    assert (strict.tp, strict.fp, strict.fn) == (0, 0, 1) and strict.f1 == 0.0


def test_chan_streams_and_empty():
    pred, gt = hand_layout()
    acc = ChanSegmentMetrics()
    acc.update(pred, gt)
    acc.update(np.zeros_like(pred), gt)  # second frame: all 4 objects missed
    res = acc.compute()
    assert (res.tp, res.fp, res.fn, res.n_frames) == (2, 1, 5, 2)
    assert res.road_miss_rate == pytest.approx(8 / 438)
    both = chan_segment_metrics(np.stack([pred, np.zeros_like(pred)]), np.stack([gt, gt]))
    assert (both.tp, both.fp, both.fn, both.f1) == (res.tp, res.fp, res.fn, res.f1)
    empty = chan_segment_metrics(np.zeros((3, 3), bool), np.full((3, 3), 255, np.uint8))
    assert math.isnan(empty.f1) and math.isnan(empty.road_miss_rate) and 'F1 undefined' in empty.note


def test_curves_match_sklearn_roc_and_pr() -> None:
    from sklearn.metrics import precision_recall_curve, roc_curve

    from anomaly_seg_ros.metrics import PixelAnomalyMetrics

    rng = np.random.default_rng(5)
    gt = (rng.random((40, 50)) < 0.2).astype(np.uint8)
    score = np.round(rng.random((40, 50)) + gt * 0.4, 2).astype(np.float64)
    m = PixelAnomalyMetrics('exact')
    m.update(score, gt)
    c = m.curves(max_points=10_000)
    fpr, tpr, thr = roc_curve(gt.ravel(), score.ravel(), drop_intermediate=False)
    np.testing.assert_allclose(c.fpr, fpr[1:])
    np.testing.assert_allclose(c.tpr, tpr[1:])
    np.testing.assert_allclose(c.thresholds, thr[1:])
    prec, rec, _ = precision_recall_curve(gt.ravel(), score.ravel())
    np.testing.assert_allclose(c.precision[::-1], prec[:-1][-len(c.precision) :])
    assert c.hist_anomaly.sum() == gt.sum() and c.hist_in_dist.sum() == (gt == 0).sum()
    small = m.curves(max_points=5)
    assert len(small.tpr) == 5 and small.tpr[-1] == 1.0 and small.fpr[-1] == 1.0
    binned = PixelAnomalyMetrics('binned', score_range=(0.0, 1.5), bins=256)
    binned.update(score, gt)
    cb = binned.curves()
    assert cb.tpr[-1] == 1.0 and np.all(np.diff(cb.tpr) >= 0) and np.all(np.diff(cb.thresholds) <= 0)
