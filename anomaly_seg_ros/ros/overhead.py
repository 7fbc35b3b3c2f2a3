"""Through-ROS latency of the real node process on given frames, for `anomaly-seg bench`."""

from __future__ import annotations

import os
import uuid

import numpy as np

from ..config import default_params_file
from ..errors import AnomalySegError
from .harness import FrameClient, NodeProcess, isolated_ros_env

__all__ = ['node_latency']


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
