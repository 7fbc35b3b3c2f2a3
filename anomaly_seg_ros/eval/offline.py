"""Offline evaluation: the Pipeline over a sequence of Samples, pooled benchmark metrics, and a report that
says exactly what was evaluated (dataset, split, count, ignore rule, score range, model, scorer)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
from tqdm import tqdm

from ..classes import NUM_CLASSES
from ..data.sample import Sample
from ..pipeline import STAGES, Pipeline
from .metrics import PixelAnomalyMetrics, SegmentationIoU

__all__ = ['evaluate_samples', 'evaluate_synthetic']


def evaluate_samples(pipe: Pipeline, samples: Sequence[Sample], progress: bool = True) -> dict[str, Any]:
    """Run every sample once; anomaly metrics over frames that have anomaly GT, mIoU over frames with labels."""
    anomaly = PixelAnomalyMetrics('binned', score_range=pipe.score_range) if pipe.scorer.bounded else \
        PixelAnomalyMetrics('exact')
    iou = SegmentationIoU(NUM_CLASSES)
    timings: dict[str, list[float]] = {k: [] for k in (*STAGES, 'total')}
    n_anomaly_frames = 0
    t0 = time.perf_counter()
    for s in tqdm(samples, desc='evaluate', disable=not progress):
        r = pipe(s.image)
        if s.anomaly is not None:
            anomaly.update(r.score, s.anomaly)
            n_anomaly_frames += int((s.anomaly == 1).any())
        if s.labels is not None:
            iou.update(r.labels, s.labels)
        for k in timings:
            timings[k].append(r.timings[k])
    wall = time.perf_counter() - t0
    px = anomaly.compute()
    seg = iou.compute()
    return {
        'pixel': {k: _num(v) for k, v in asdict(px).items()},
        'segmentation': {
            'miou': _num(seg.miou),
            'per_class_iou': {n: _num(v) for n, v in zip(seg.class_names, seg.per_class_iou.tolist())},
            'n_pixels': seg.n_pixels, 'n_ignored': seg.n_ignored,
        },
        'frames': len(samples),
        'frames_with_anomalies': n_anomaly_frames,
        'latency_ms': {k: {'p50': float(np.percentile(v, 50)), 'p95': float(np.percentile(v, 95))}
                       for k, v in timings.items() if v},
        'wall_s': wall,
    }


def _num(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None  # JSON has no NaN; null with the result's `note` saying why
    if isinstance(v, tuple):
        return list(v)
    return v


def evaluate_synthetic(
    model: str, scorer: str, count: int, seed: int, size: tuple[int, int], backend: str = 'torch',
    device: str = 'cpu', anomaly_family: str = 'test',
) -> dict[str, Any]:
    from ..data.synthetic import SyntheticWorld, WorldConfig

    pipe = Pipeline.from_model(model, scorer, backend, device)
    w, h = size
    world = SyntheticWorld(count, seed=seed, config=WorldConfig(height=h, width=w, anomaly_family=anomaly_family))
    metrics = evaluate_samples(pipe, world)
    return {
        'evaluated': {
            'dataset': 'synthetic', 'split_seed': seed, 'frames': count, 'frame_size': f'{w}x{h}',
            'world': asdict(world.config) if hasattr(world, 'config') else None,
            'anomaly_family': anomaly_family,
            'ignore_rule': 'anomaly GT 255 and segmentation GT 255 pixels are excluded from every metric',
            'model': pipe.model.name, 'model_dir': str(pipe.model.directory), 'scorer': pipe.scorer.name,
            'score_range': list(pipe.score_range), 'backend': backend, 'device': device,
        },
        **metrics,
    }
