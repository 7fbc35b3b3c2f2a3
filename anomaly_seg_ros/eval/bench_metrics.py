"""`anomaly-seg bench-metrics`: throughput, time per frame and peak memory of the metrics.

Pixel metrics: binned vs exact vs scikit-learn's average_precision_score, on the same scores. Component
metrics (SMIYC sIoU / PPV / F1, Chan et al. segment errors): time per frame on score maps with a few
anomaly blobs, thresholded inside the metric. These are the speed figures the test-suite does not assert
(wall-clock limits in tests fail on busy machines); ~25 ms a 2048x1024 frame for binned is typical.

Each method runs in its own subprocess so its peak resident memory (ru_maxrss) is its own; the frames are
generated identically (seeded) in every process and generation time is excluded from the timing. The
streaming modes see one frame at a time; scikit-learn needs every pixel of the run in one array, which is
exactly what the streaming design avoids.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np

__all__ = ['COMPONENT_METHODS', 'METHODS', 'run_component_bench', 'run_metrics_bench']

METHODS = ('binned', 'exact', 'sklearn')
COMPONENT_METHODS = ('smiyc', 'chan')
COMPONENT_THRESHOLD = 0.5


def _frame(i: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """A frame-like score map: a few anomaly blobs, an ignore band, scores higher on anomalies."""
    rng = np.random.default_rng(i)
    gt = np.zeros((height, width), np.uint8)
    for _ in range(3):
        y, x = rng.integers(0, height - height // 8), rng.integers(0, width - width // 8)
        gt[y : y + height // 16, x : x + width // 16] = 1
    gt[: height // 10] = 255
    score = rng.random((height, width), dtype=np.float32) * 0.7 + gt.astype(np.float32) * 0.25
    return np.clip(score, 0, 1), gt


def _component_frame(i: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The anomaly blobs of :func:`_frame` as a smooth score map: each blob predicted slightly shifted, two
    false-positive boxes, low noise elsewhere; a handful of components per frame, as real maps give."""
    rng = np.random.default_rng(10_000 + i)
    _, gt = _frame(i, width, height)
    score = rng.random((height, width), dtype=np.float32) * 0.3
    dy, dx = max(1, height // 100), max(1, width // 100)
    score[dy:, dx:] += 0.6 * (gt[:-dy, :-dx] == 1)
    for _ in range(2):
        y, x = rng.integers(0, height - height // 20), rng.integers(0, width - width // 20)
        score[y : y + height // 20, x : x + width // 20] += 0.6
    return score, gt


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _component_worker(method: str, frames: int, width: int, height: int) -> dict[str, Any]:
    from ..metrics import ChanSegmentMetrics, SmiycComponentMetrics, SmiycResult

    base = _maxrss_mb()
    metric = (
        SmiycComponentMetrics(COMPONENT_THRESHOLD) if method == 'smiyc' else ChanSegmentMetrics(COMPONENT_THRESHOLD)
    )
    busy = 0.0
    for i in range(frames):
        score, gt = _component_frame(i, width, height)
        t = time.perf_counter()
        metric.update(score, gt)
        busy += time.perf_counter() - t
    t = time.perf_counter()
    result = metric.compute()
    busy += time.perf_counter() - t
    f1 = result.mean_f1 if isinstance(result, SmiycResult) else result.f1
    return {
        'method': method,
        'f1': f1,
        'seconds': busy,
        'frames': frames,
        'ms_per_frame': 1e3 * busy / frames,
        'peak_rss_mb': _maxrss_mb(),
        'baseline_rss_mb': base,
    }


def _worker(method: str, frames: int, width: int, height: int) -> dict[str, Any]:
    from ..metrics import PixelAnomalyMetrics

    if method in COMPONENT_METHODS:
        return _component_worker(method, frames, width, height)
    base = _maxrss_mb()
    busy = 0.0
    pixels = 0
    if method in ('binned', 'exact'):
        m = PixelAnomalyMetrics(method, score_range=(0.0, 1.0), max_exact_pairs=None)  # type: ignore[arg-type]
        for i in range(frames):
            score, gt = _frame(i, width, height)
            t = time.perf_counter()
            m.update(score, gt)
            busy += time.perf_counter() - t
            pixels += int((gt != 255).sum())
        t = time.perf_counter()
        ap = m.compute().ap
        busy += time.perf_counter() - t
    else:
        from sklearn.metrics import average_precision_score

        scores, labels = [], []
        for i in range(frames):
            score, gt = _frame(i, width, height)
            t = time.perf_counter()
            keep = gt != 255
            scores.append(score[keep])
            labels.append(gt[keep] == 1)
            busy += time.perf_counter() - t
            pixels += int(keep.sum())
        t = time.perf_counter()
        ap = float(average_precision_score(np.concatenate(labels), np.concatenate(scores)))
        busy += time.perf_counter() - t
    return {
        'method': method,
        'ap': ap,
        'seconds': busy,
        'pixels': pixels,
        'pixels_per_s': pixels / busy,
        'ms_per_frame': 1e3 * busy / frames,
        'peak_rss_mb': _maxrss_mb(),
        'baseline_rss_mb': base,
    }


def _run_workers(methods: tuple[str, ...], frames: int, width: int, height: int) -> list[dict[str, Any]]:
    rows = []
    for method in methods:
        cmd = [
            sys.executable,
            '-m',
            'anomaly_seg_ros.eval.bench_metrics',
            '--worker',
            method,
            '--frames',
            str(frames),
            '--size',
            f'{width}x{height}',
        ]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            tail = (r.stderr.strip().splitlines() or ['?'])[-1]
            print(f'  {method:<8} failed: {tail}')
            continue
        rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
    return rows


def run_component_bench(
    frames: int, size: tuple[int, int], methods: tuple[str, ...] = COMPONENT_METHODS
) -> list[dict[str, Any]]:
    """Time per frame of the component metrics (one subprocess each); prints a table, returns its rows."""
    width, height = size
    print(
        f'component metrics on {frames} frames of {width}x{height} (score > / >= {COMPONENT_THRESHOLD}), '
        'one subprocess per metric:'
    )
    rows = _run_workers(methods, frames, width, height)
    print(f'  {"metric":<8} {"F1":>10} {"ms/frame":>9} {"peak RSS MB":>12} {"above start MB":>15}')
    for r in rows:
        print(
            f'  {r["method"]:<8} {r["f1"]:10.6f} {r["ms_per_frame"]:9.1f} '
            f'{r["peak_rss_mb"]:12.0f} {r["peak_rss_mb"] - r["baseline_rss_mb"]:15.0f}'
        )
    return rows


def run_metrics_bench(
    frames: int,
    size: tuple[int, int],
    methods: tuple[str, ...] = METHODS,
    components: tuple[str, ...] = COMPONENT_METHODS,
) -> list[dict[str, Any]]:
    """Benchmark the pixel ``methods`` and print their table, then the ``components`` table (() skips it).

    Returns the pixel rows; :func:`run_component_bench` returns the component rows.
    """
    width, height = size
    print(
        f'pixel metrics on {frames} frames of {width}x{height} ({frames * width * height / 1e6:.0f} M pixels), '
        f'one subprocess per method:'
    )
    rows = _run_workers(methods, frames, width, height)
    ref = next((r for r in rows if r['method'] == 'sklearn'), None)
    print(
        f'  {"method":<8} {"AP":>10} {"Mpixel/s":>9} {"ms/frame":>9} {"vs sklearn":>10} '
        f'{"peak RSS MB":>12} {"above start MB":>15}'
    )
    for r in rows:
        ratio = f'{r["pixels_per_s"] / ref["pixels_per_s"]:.2f}x' if ref else 'n/a'
        print(
            f'  {r["method"]:<8} {r["ap"]:10.6f} {r["pixels_per_s"] / 1e6:9.1f} {r["ms_per_frame"]:9.1f} {ratio:>10} '
            f'{r["peak_rss_mb"]:12.0f} {r["peak_rss_mb"] - r["baseline_rss_mb"]:15.0f}'
        )
    if components:
        run_component_bench(frames, size, components)
    return rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument('--worker', choices=METHODS + COMPONENT_METHODS, required=True)
    p.add_argument('--frames', type=int, required=True)
    p.add_argument('--size', required=True)
    a = p.parse_args()
    w, h = (int(v) for v in a.size.split('x'))
    print(json.dumps(_worker(a.worker, a.frames, w, h)))


if __name__ == '__main__':
    main()
