"""Through-ROS latency of the real node process on given frames, for `anomaly-seg bench`."""

from __future__ import annotations

import os
import uuid

import numpy as np

from ..config import default_params_file
from ..errors import AnomalySegError
from .harness import FrameClient, NodeProcess, isolated_ros_env

__all__ = ['node_latency', 'print_node_overhead']


def node_latency(model: str, scorer: str, device: str, frames: list[np.ndarray], runs: int) -> np.ndarray:
    """Milliseconds from publishing each frame to receiving all four outputs, one frame in flight at a time."""
    env = isolated_ros_env()
    os.environ.update(env)
    ns = f'/bench_{uuid.uuid4().hex[:6]}'
    params = {'model': model, 'device': device, **({'scorer': scorer} if scorer else {})}
    out = []
    with NodeProcess(default_params_file(), ns, env, params) as proc:
        client = FrameClient(ns)
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
    device: str,
    images: dict[tuple[int, int], list[np.ndarray]],
    direct: dict[tuple[int, int], dict[str, np.ndarray]],
    frames: int,
) -> None:
    """The same frames through the node, one at a time, against the bare Pipeline totals `bench` measured."""
    print('node overhead (same frames, one at a time: publish -> all outputs received, vs bare Pipeline total):')
    print(f'  {"frame size":<11} {"pipeline p50":>13} {"via ROS p50":>12} {"ratio":>7} {"via ROS p95":>12}')
    for size, sized in images.items():
        through = node_latency(model, scorer, device, sized, frames)
        p50_d = float(np.percentile(direct[size]['total'], 50))
        p50_r = float(np.percentile(through, 50))
        print(
            f'  {size[0]}x{size[1]:<6} {p50_d:10.1f} ms {p50_r:9.1f} ms {p50_r / p50_d:7.2f} '
            f'{np.percentile(through, 95):9.1f} ms'
        )
