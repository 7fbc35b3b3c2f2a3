"""Through-ROS latency of the real node process on given frames, for `anomaly-seg bench`."""

from __future__ import annotations

import time
import uuid

import numpy as np

from ..config import default_params_file
from ..errors import AnomalySegError
from .harness import OUTPUT_TOPICS, FrameClient, NodeProcess, isolated_ros_env

__all__ = ['CORE_OUTPUTS', 'node_latency', 'print_node_overhead']


#: what a vehicle consumer needs: labels and score (the colour and heatmap topics are then not rendered)
CORE_OUTPUTS = ('segmentation', 'anomaly_score')


def node_latency(
    model: str,
    scorer: str,
    device: str,
    frames: list[np.ndarray],
    runs: int,
    backend: str = 'auto',
    outputs: tuple[str, ...] = tuple(OUTPUT_TOPICS),
    gap_ms: float = 0.0,
) -> np.ndarray:
    """Milliseconds from publishing each frame to receiving every one of `outputs`, one frame in flight at a
    time, `gap_ms` idle before each (the pacing `bench` gives the bare Pipeline). Only `outputs` are subscribed,
    so the node renders no visualisation nobody asked for."""
    env = isolated_ros_env()
    ns = f'/bench_{uuid.uuid4().hex[:6]}'
    params = {'model': model, 'device': device, 'backend': backend, **({'scorer': scorer} if scorer else {})}
    out = []
    with NodeProcess(default_params_file(), ns, env, params) as proc:
        client = FrameClient(ns, outputs=outputs, env=env)
        try:
            if not (client.wait_connected(120) and client.handshake(60)):
                raise AnomalySegError(f'bench: node did not start; log:\n{proc.log()}')
            for i in range(runs + 1):
                stamp = 1_000_000_000 + i
                time.sleep(gap_ms / 1e3)
                client.publish(stamp, frames[i % len(frames)], 'rgb8')
                if not client.wait_for(stamp, 60):
                    raise AnomalySegError(f'bench: no output for frame {i}; log:\n{proc.log()}')
                if i:  # the first frame at a new size is a warm-up
                    out.append(client.latency_s(stamp) * 1e3)
        finally:
            client.close()
    return np.asarray(out)


def print_node_overhead(
    model: str,
    scorer: str,
    backend: str,
    device: str,
    images: dict[tuple[int, int], list[np.ndarray]],
    direct: dict[tuple[int, int], np.ndarray],
    frames: int,
    gap_ms: float = 0.0,
) -> dict[str, dict[str, dict[str, float]]]:
    """The same frames through the node (same backend and scorer), one at a time, against the bare Pipeline
    end-to-end ms `bench` measured (`direct`, per size): once with only labels and score subscribed (what a
    vehicle consumer takes; the goal row), once with all four outputs. Prints a table; returns its figures
    per size and subscription."""
    which = scorer or "the model's scorer"
    print(
        f'Node overhead ({backend}, {which}; same frames, one at a time, {gap_ms:g} ms idle before each: publish '
        '-> outputs received in another process, vs the bare Pipeline). Goal: labels + score below 1.5x at p50 '
        'and 2x at p95.'
    )
    print()
    print('| frame | subscribed | Pipeline p50 / p95 ms | via ROS p50 / p95 ms | ratio p50 | ratio p95 |')
    print('|---|---|---:|---:|---:|---:|')
    figures: dict[str, dict[str, dict[str, float]]] = {}
    for size, sized in images.items():
        p50_d, p95_d = (float(v) for v in np.percentile(direct[size], [50, 95]))
        rows: dict[str, dict[str, float]] = {}
        for label, outputs in (('labels + score', CORE_OUTPUTS), ('all four', tuple(OUTPUT_TOPICS))):
            through = node_latency(model, scorer, device, sized, frames, backend, outputs, gap_ms)
            p50_r, p95_r = (float(v) for v in np.percentile(through, [50, 95]))
            print(
                f'| {size[0]}x{size[1]} | {label} | {p50_d:.1f} / {p95_d:.1f} | {p50_r:.1f} / {p95_r:.1f} '
                f'| {p50_r / p50_d:.2f} | {p95_r / p95_d:.2f} |'
            )
            rows['core' if outputs == CORE_OUTPUTS else 'all'] = {
                'pipeline_p50_ms': p50_d,
                'pipeline_p95_ms': p95_d,
                'ros_p50_ms': p50_r,
                'ros_p95_ms': p95_r,
            }
        figures[f'{size[0]}x{size[1]}'] = rows
    return figures
