"""Tests for anomaly_seg_ros.eval.report: the self-contained HTML page and the strict JSON report."""

from __future__ import annotations

import importlib.resources
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip('matplotlib')

from anomaly_seg_ros.eval.report import (  # noqa: E402
    MAX_FRAME_ROWS,
    MAX_IMAGE_WIDTH,
    FrameRecord,
    WorstFrame,
    render_html_report,
    write_html_report,
    write_json_report,
)
from anomaly_seg_ros.eval.report.html import TEMPLATE  # noqa: E402
from anomaly_seg_ros.metrics.pixel import Curves, PixelAnomalyMetrics  # noqa: E402

EVIL = '<script>alert(1)</script>'


# ---------------------------------------------------------------------------------------------------
# Fixtures.
# ---------------------------------------------------------------------------------------------------


def make_curves(seed: int = 0) -> tuple[Curves, dict]:
    """Curves and pixel metrics from PixelAnomalyMetrics on overlapping Gaussian scores."""
    rng = np.random.default_rng(seed)
    acc = PixelAnomalyMetrics('binned', score_range=(0.0, 1.0), bins=1024)
    for _ in range(3):
        gt = (rng.random((40, 60)) < 0.1).astype(np.uint8)
        gt[:4] = 255
        score = np.clip(rng.normal(0.3, 0.12, gt.shape) + 0.35 * (gt == 1), 0, 1).astype(np.float32)
        acc.update(score, gt)
    res = acc.compute()
    pixel = {
        'ap': res.ap,
        'auroc': res.auroc,
        'fpr95': res.fpr95,
        'n_pos': res.n_pos,
        'n_neg': res.n_neg,
        'ap_error_bound': res.ap_error_bound,
        'auroc_error_bound': res.auroc_error_bound,
        'fpr95_error_bound': res.fpr95_error_bound,
        'mode': res.mode,
        'note': res.note,
    }
    return acc.curves(), pixel


def make_report(pixel: dict) -> dict:
    return {
        'evaluated': {
            'source': 'bags/road_run_17.mcap',
            'topics': {'image': '/camera/image_raw', 'gt': '/anomaly_gt'},
            'frames': 30,
            'ignore_rule': 'gt == 255 ignored',
            'score_range': (0.0, 1.0),
            'model': 'models/icnet_small_v3',
            'scorer': 'entropy',
            'mode': 'binned',
        },
        'pixel': pixel,
        'segmentation': {
            'miou': np.float32(0.6125),
            'per_class_iou': {'road': 0.97, 'sidewalk': float('nan')},
            'note': 'classes absent from ground truth and prediction: sidewalk',
        },
        'components': {
            'smiyc': {'mean_f1': 0.4321, 'taus': [0.25, 0.5, 0.75], 'f1': np.array([0.5, 0.4, 0.3])},
            'chan': {'tp': 7, 'fp': 3, 'fn': 2, 'f1': 0.7368},
        },
        'latency': {
            'preprocess': {'p50': 2.1, 'p95': 3.0, 'p99': 3.5, 'max': 4.0},
            'infer': {'p50': 20.0, 'p95': 25.0, 'p99': 27.0, 'max': 31.0},
            'throughput_hz': 14.2,
            'dropped': 3,
        },
        'skipped': [{'topic': '/camera/image_raw', 'index': 5, 'reason': 'no matching gt <in 50 ms>'}],
    }


def make_frames(n: int = 30) -> list[FrameRecord]:
    rng = np.random.default_rng(1)
    frames = []
    for i in range(n):
        status = 'ok'
        if i in (4, 11, 12):
            status = 'dropped'
        elif i == 5:
            status = 'skipped: no matching gt'
        elif i == 20:
            status = 'late'
        name = EVIL if i == 7 else f'frame_{i:04d}.png'
        evaluated = status in ('ok', 'late')
        frames.append(
            FrameRecord(
                index=i,
                name=name,
                stamp_ns=1_700_000_000_000_000_000 + i * 50_000_000,
                status=status,
                n_anomaly_px=int(rng.integers(0, 500)) if evaluated else 0,
                n_in_dist_px=7000 if evaluated else 0,
                ap=float(rng.random()) if evaluated and i % 3 else None,
                mean_score_anomaly=0.6 if evaluated else None,
                mean_score_in_dist=0.25 if evaluated else None,
                latency_ms=float(30 + 5 * rng.standard_normal()) if evaluated else None,
                stage_ms={'preprocess': 2.0, 'infer': 20.0} if evaluated else {},
            )
        )
    return frames


def make_worst(n: int = 2, h: int = 64, w: int = 128) -> list[WorstFrame]:
    rng = np.random.default_rng(2)
    out = []
    for k in range(n):
        yy, xx = np.mgrid[0:h, 0:w]
        image = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), np.full_like(xx, 90)], -1)
        image = image.astype(np.uint8)
        gt = np.zeros((h, w), np.uint8)
        gt[h // 4 : h // 2, w // 3 : w // 2] = 1
        gt[: h // 8] = 255
        score = (0.2 + 0.6 * (gt == 1) + 0.1 * rng.random((h, w))).astype(np.float32)
        name = EVIL if k == 0 else f'worst_{k}.png'
        out.append(WorstFrame(name, f'lowest frame AP 0.{k + 1}2', image, gt, score, (0.0, 1.0)))
    return out


DATA_URI = re.compile(r'<img src="data:image/(png|jpeg);base64,([A-Za-z0-9+/=]+)"')


# ---------------------------------------------------------------------------------------------------
# HTML.
# ---------------------------------------------------------------------------------------------------


def test_html_full(tmp_path: Path) -> None:
    curves, pixel = make_curves()
    report = make_report(pixel)
    frames = make_frames()
    out = tmp_path / 'sub' / 'report.html'
    write_html_report(report, curves, frames, make_worst(), out, title='run <17>')
    text = out.read_text(encoding='utf-8')

    assert text.startswith('<!DOCTYPE html>')
    assert 'run &lt;17&gt;' in text and 'run <17>' not in text
    # what was evaluated: first section, every value present
    first = text.index('What was evaluated')
    assert first < text.index('class="cards"') < text.index('Precision-recall')
    for value in (
        'bags/road_run_17.mcap',
        '/camera/image_raw',
        '/anomaly_gt',
        'gt == 255 ignored',
        'models/icnet_small_v3',
        'entropy',
        'topics.image',
        'score_range',
        '[0, 1]',
    ):
        assert value in text, value
    # headline numbers, 4 significant digits
    for key in ('ap', 'auroc', 'fpr95'):
        assert f'{pixel[key]:.4g}' in text, key
    assert '0.6125' in text and 'mIoU' in text
    cards = text[text.index('class="cards"') : text.index('<h2>Figures')]
    assert '>30<' in cards and '>3<' in cards  # 30 frames, 3 dropped
    # other sections as tables: dotted keys, record matrices, lists of dicts, None + note
    assert 'per_class_iou.road' in text and 'smiyc.mean_f1' in text and '0.4321' in text
    assert 'throughput_hz' in text and '<th>p99</th>' in text
    assert 'no matching gt &lt;in 50 ms&gt;' in text
    assert '(classes absent from ground truth and prediction: sidewalk)' in text

    # figures: PR, ROC, histogram, latency as PNG; worst frames: 2 x (jpeg, png, jpeg)
    for caption in ('Precision-recall curve', 'ROC curve', 'In-distribution vs anomaly scores', 'Latency over time'):
        block = text[text.index(f'<figcaption>{caption}</figcaption>') :]
        assert block.split('</figure>', 1)[0].count('<img src="data:image/png;base64,') == 1, caption
    uris = DATA_URI.findall(text)
    assert [m for m, _ in uris].count('png') == 4 + 2
    assert [m for m, _ in uris].count('jpeg') == 2 * 2
    assert 'class="missing"' not in text

    # offline: no external resources at all, no script
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', text)
    assert 'http://' not in text and 'https://' not in text
    assert '<script' not in text and '<link' not in text and '@import' not in text
    # escaped user strings
    assert EVIL not in text
    assert '&lt;script&gt;alert(1)&lt;/script&gt;' in text
    # every frame row present, statuses styled
    assert text.count('<tr class="st-') == 30
    assert text.count('class="st-dropped"') == 3 and 'skipped: no matching gt' in text


def test_worst_images_downscaled_and_decodable(tmp_path: Path) -> None:
    cv2 = pytest.importorskip('cv2')
    out = tmp_path / 'r.html'
    write_html_report({'evaluated': {'source': 'x'}}, None, [], make_worst(1, h=300, w=1600), out)
    text = out.read_text()
    import base64

    imgs = [
        cv2.imdecode(np.frombuffer(base64.b64decode(b), np.uint8), cv2.IMREAD_COLOR) for m, b in DATA_URI.findall(text)
    ]
    assert len(imgs) == 3
    for img in imgs:
        assert img.shape[1] == MAX_IMAGE_WIDTH and img.shape[0] == 120
    # the contour is green on the annotated image; the mask is black / white / grey
    annotated, mask = imgs[0], imgs[1]
    b, g, r = (annotated[..., c].astype(int) for c in range(3))
    assert ((g > 200) & (r < 80) & (b < 80)).sum() > 50
    assert set(np.unique(mask)) <= {0, 128, 255}


def test_html_without_curves_or_frames(tmp_path: Path) -> None:
    report = {
        'evaluated': {'source': 'empty.mcap', 'frames': 0},
        'pixel': {
            'ap': float('nan'),
            'auroc': None,
            'fpr95': None,
            'n_pos': 0,
            'n_neg': 0,
            'note': 'no anomaly pixel (gt == 1): AP, AUROC and FPR95 undefined',
        },
    }
    out = tmp_path / 'r.html'
    write_html_report(report, None, [], [], out)
    text = out.read_text()
    assert 'empty.mcap' in text
    assert '<img' not in text
    assert 'No precision-recall curve: no curve data was passed' in text
    assert 'No latency plot: the run has no frame records.' in text
    assert 'No frame records: the run evaluated zero frames.' in text
    assert 'No worst frames were selected' in text
    # None / NaN shown as a dash with the note next to it
    assert '\u2014</span> <span class="note">(no anomaly pixel (gt == 1): AP, AUROC and FPR95 undefined)' in text

    # empty curve arrays (what PixelAnomalyMetrics.curves() returns without anomaly pixels)
    empty = np.zeros(0)
    write_html_report(report, Curves(*(empty,) * 7), [], [], out)
    text = out.read_text()
    assert 'No ROC curve: no anomaly pixel (gt == 1)' in text
    assert 'No score histogram: no anomaly pixel' in text


def test_html_all_frames_skipped_and_missing_evaluated(tmp_path: Path) -> None:
    frames = [FrameRecord(i, f'f{i}', i, 'skipped: decode error') for i in range(5)]
    out = tmp_path / 'r.html'
    write_html_report({'pixel': {}}, None, frames, [], out)
    text = out.read_text()
    assert 'The report has no &#x27;evaluated&#x27; block' in text
    assert 'No latency plot: all 5 frames were skipped.' in text
    assert text.count('class="st-skipped"') == 5
    assert 'card bad' in text  # 0 frames ok is flagged


def test_html_failed_frames_have_their_own_kind(tmp_path: Path) -> None:
    frames = [FrameRecord(0, 'f0', 0, 'skipped: decode error')]
    frames += [FrameRecord(i, f'f{i}', i, 'failed: score map has 8 NaN, 0 inf of 8 values') for i in (1, 2)]
    out = tmp_path / 'r.html'
    write_html_report({'pixel': {}, 'failed': [{'index': 1, 'name': 'f1', 'reason': 'NaN'}]}, None, frames, [], out)
    text = out.read_text()
    assert text.count('class="st-failed"') == 2 and text.count('class="st-skipped"') == 1
    assert '0 ok, 1 skipped, 2 failed' in text
    assert 'No latency plot: all 3 frames were skipped or failed.' in text


def test_html_bad_worst_frame_does_not_lose_report(tmp_path: Path) -> None:
    bad = WorstFrame(
        'bad',
        'shape mismatch',
        np.zeros((8, 8, 3), np.uint8),
        np.zeros((4, 4), np.uint8),
        np.zeros((8, 8), np.float32),
        (0.0, 1.0),
    )
    out = tmp_path / 'r.html'
    write_html_report({'evaluated': {'source': 'x'}}, None, [], [bad, *make_worst(1)], out)
    text = out.read_text()
    assert 'Not drawn: ValueError' in text
    assert len(DATA_URI.findall(text)) == 3  # the good one is still drawn


def test_html_many_frames_capped_and_small(tmp_path: Path) -> None:
    curves, pixel = make_curves()
    rng = np.random.default_rng(3)
    n = MAX_FRAME_ROWS + 500
    frames = [
        FrameRecord(
            i,
            f'seq/frame_{i:06d}.png',
            i,
            'dropped' if i % 97 == 0 else 'ok',
            100,
            9000,
            float(rng.random()),
            0.7,
            0.2,
            float(25 + rng.random() * 10),
            {'preprocess': 2.0, 'infer': 21.0, 'postprocess': 1.5},
        )
        for i in range(n)
    ]
    worst = make_worst(8, h=256, w=1024)
    out = tmp_path / 'r.html'
    write_html_report(make_report(pixel), curves, frames, worst, out)
    text = out.read_text()
    assert f'Showing the first {MAX_FRAME_ROWS} of {n} frames' in text
    assert text.count('<tr class="st-') == MAX_FRAME_ROWS
    assert out.stat().st_size < 5_000_000


def test_html_escapes_model_frame_and_key_names(tmp_path: Path) -> None:
    report = {
        'evaluated': {'model': f'models/{EVIL}', 'source': 'a "quoted" & \'single\' path'},
        'pixel': {'ap': None, 'note': f'note {EVIL}'},
        EVIL: {'k': 1},
        'other': {EVIL: 'v', 'list': [EVIL, 2]},
        'skipped': [{'reason': EVIL}],
    }
    frames = [FrameRecord(0, EVIL, 0, f'skipped: {EVIL}', stage_ms={EVIL: 1.0}, latency_ms=3.0)]
    bad = WorstFrame(EVIL, EVIL, np.zeros((4, 4, 3), np.uint8), np.zeros((2, 2), np.uint8), np.zeros((4, 4)), (0, 1))
    text = render_html_report(report, None, frames, [bad], title=EVIL)
    assert '<script' not in text
    assert text.count('&lt;script&gt;alert(1)&lt;/script&gt;') >= 10
    assert 'models/&lt;script&gt;' in text
    assert 'a &quot;quoted&quot; &amp; &#x27;single&#x27; path' in text
    assert f'title="{EVIL}' not in text and 'title="&lt;script&gt;alert(1)&lt;/script&gt; 1 ms"' in text


def test_html_template_ships_in_package_and_ignores_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    templates = importlib.resources.files('anomaly_seg_ros.eval.report') / 'templates'
    assert (templates / TEMPLATE).is_file() and (templates / 'report.css.j2').is_file()
    monkeypatch.chdir(tmp_path)
    write_html_report({'evaluated': {'source': 'x'}}, None, [], [], Path('r.html'))
    text = (tmp_path / 'r.html').read_text()
    assert text.startswith('<!DOCTYPE html>') and text.rstrip().endswith('</html>')
    assert 'table.kv th' in text  # the stylesheet is inlined


def test_accumulate_does_not_import_report_code() -> None:
    code = (
        'import sys, anomaly_seg_ros.eval.accumulate; '
        'heavy = ("anomaly_seg_ros.eval.report", "jinja2", "matplotlib"); '
        'bad = sorted(m for m in sys.modules if m.startswith(heavy)); '
        'print(bad); sys.exit(1 if bad else 0)'
    )
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stdout + done.stderr


# ---------------------------------------------------------------------------------------------------
# JSON.
# ---------------------------------------------------------------------------------------------------


def test_json_report(tmp_path: Path) -> None:
    report = {
        'evaluated': {'source': 'a.mcap', 'score_range': (0.0, float('inf')), 'path': tmp_path / 'x'},
        'pixel': {
            'ap': float('nan'),
            'auroc': np.float64(0.75),
            'fpr95': np.float32(np.nan),
            'n_pos': np.int64(12),
            'flag': np.bool_(True),
            'note': 'ü',
        },
        'segmentation': {'per_class_iou': np.array([0.5, np.nan, 0.25]), 'confusion': np.eye(2, dtype=np.int32)},
        'latency': {'infer': {'p50': np.float32(20.5)}, 'dropped': -np.inf},
        'skipped': [{'topic': '/t', 'index': np.uint16(3), 'reason': 'late'}],
        np.int64(7): 'numpy key',
    }
    out = tmp_path / 'out' / 'report.json'
    write_json_report(report, out)
    text = out.read_text(encoding='utf-8')
    assert 'NaN' not in text and 'Infinity' not in text
    assert text.startswith('{\n  "evaluated"')  # indent 2, insertion order kept
    assert list(json.loads(text)) == ['evaluated', 'pixel', 'segmentation', 'latency', 'skipped', '7']
    assert json.loads(text) == {
        'evaluated': {'source': 'a.mcap', 'score_range': [0.0, None], 'path': str(tmp_path / 'x')},
        'pixel': {'ap': None, 'auroc': 0.75, 'fpr95': None, 'n_pos': 12, 'flag': True, 'note': 'ü'},
        'segmentation': {'per_class_iou': [0.5, None, 0.25], 'confusion': [[1, 0], [0, 1]]},
        'latency': {'infer': {'p50': 20.5}, 'dropped': None},
        'skipped': [{'topic': '/t', 'index': 3, 'reason': 'late'}],
        '7': 'numpy key',
    }
    assert isinstance(json.loads(text)['pixel']['n_pos'], int)
    assert not math.isnan(json.loads(text)['latency']['infer']['p50'])


def test_json_report_rejects_unknown_types(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r'report\.pixel\.ap: object'):
        write_json_report({'pixel': {'ap': object()}}, tmp_path / 'r.json')
    assert not (tmp_path / 'r.json').exists()
    assert not list(tmp_path.iterdir())  # no temporary file left behind
