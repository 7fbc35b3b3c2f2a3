"""Through-ROS latency of the real node process on given frames, for `anomaly-seg bench`."""

from __future__ import annotations

import uuid

import numpy as np

from ..config import default_params_file
from ..errors import AnomalySegError
from .harness import FrameClient, NodeProcess, isolated_ros_env

__all__ = ['node_latency', 'print_node_overhead']


def node_latency(
    model: str, scorer: str, device: str, frames: list[np.ndarray], runs: int, backend: str = 'auto'
) -> np.ndarray:
    """Milliseconds from publishing each frame to receiving all four outputs, one frame in flight at a time."""
    env = isolated_ros_env()
    ns = f'/bench_{uuid.uuid4().hex[:6]}'
    params = {'model': model, 'device': device, 'backend': backend, **({'scorer': scorer} if scorer else {})}
    out = []
    with NodeProcess(default_params_file(), ns, env, params) as proc:
        client = FrameClient(ns, env=env)
        try:
            if not (client.wait_connected(120) and client.handshake(60)):
                raise AnomalySegError(f'bench: node did not start; log:\n{proc.log()}')
            for i in range(runs + 1):
                stamp = 1_000_000_000 + i
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
) -> dict[str, dict[str, float]]:
    """The same frames through the node (same backend and scorer), one at a time, against the bare Pipeline
    end-to-end ms `bench` measured (`direct`, per size); prints a table and returns its figures per size."""
    which = scorer or "the model's scorer"
    print(
        f'Node overhead ({backend}, {which}; same frames, one at a time: publish -> all '
        'outputs received in another process, vs the bare Pipeline):'
    )
    print()
    print('| frame | Pipeline p50 ms | via ROS p50 ms | ratio | via ROS p95 ms |')
    print('|---|---:|---:|---:|---:|')
    figures: dict[str, dict[str, float]] = {}
    for size, sized in images.items():
        through = node_latency(model, scorer, device, sized, frames, backend)
        p50_d = float(np.percentile(direct[size], 50))
        p50_r = float(np.percentile(through, 50))
        p95_r = float(np.percentile(through, 95))
        print(f'| {size[0]}x{size[1]} | {p50_d:.1f} | {p50_r:.1f} | {p50_r / p50_d:.2f} | {p95_r:.1f} |')
        figures[f'{size[0]}x{size[1]}'] = {'pipeline_p50_ms': p50_d, 'ros_p50_ms': p50_r, 'ros_p95_ms': p95_r}
    return figures
