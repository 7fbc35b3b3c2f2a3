"""`anomaly-seg demo`: start the real node, stream generated road frames into it, print latency, and save
what came back (heatmap, colour segmentation) as PNG files a person can look at."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..config import default_params_file
from ..data.synthetic import SyntheticWorld, WorldConfig
from ..eval.offline import frame_stamp
from .harness import FrameClient, NodeProcess, isolated_ros_env

__all__ = ['run_demo']


def run_demo(model: str, frames: int, size: tuple[int, int], out: Path, seed: int) -> int:
    width, height = size
    out.mkdir(parents=True, exist_ok=True)
    env = isolated_ros_env()
    ns = f'/demo_{uuid.uuid4().hex[:6]}'
    world = SyntheticWorld(frames, seed=seed, config=WorldConfig(height=height, width=width, anomaly_prob=1.0))
    print(
        f'demo: node in namespace {ns} (ROS_DOMAIN_ID={env["ROS_DOMAIN_ID"]}), model {model!r}, '
        f'{frames} frames of {width}x{height}'
    )
    latencies: list[float] = []
    with NodeProcess(default_params_file(), ns, env, {'model': model}) as proc:
        client = FrameClient(ns, env=env)
        try:
            if not (client.wait_connected(120) and client.handshake(60)):
                print(f'demo: the node did not come up; its log:\n{proc.log()}', file=sys.stderr)
                return 1
            for i in tqdm(range(frames), desc='demo frames'):
                sample = world[i]
                stamp = frame_stamp(i)
                client.publish(stamp, sample.image, 'rgb8', frame_id='demo_camera')
                if not client.wait_for(stamp, 60):
                    print(f'demo: no output for frame {i}; node log:\n{proc.log()}', file=sys.stderr)
                    return 1
                latencies.append(client.latency_s(stamp) * 1e3)
                _save(out, i, sample.image, client, stamp)
            client.wait_diagnostics('frames_processed', frames, 5)
            diag = dict(client.diagnostics)
        finally:
            client.close()
    lat = np.asarray(latencies)
    print(
        f'end-to-end latency (publish -> last output received), {len(lat)} frames: '
        f'p50 {np.percentile(lat, 50):.1f} ms, p95 {np.percentile(lat, 95):.1f} ms, max {lat.max():.1f} ms'
    )
    stages = {k: v for k, v in diag.items() if k.endswith('_ms_p50') or k.endswith('_ms_p95')}
    if stages:
        print('node per-stage latency (from its diagnostics): ' + ', '.join(f'{k} {v}' for k, v in stages.items()))
    print(
        f'wrote {frames} heatmaps and colour segmentations to {out}/ (heatmap_*.png, segmentation_*.png, input_*.png)'
    )
    return 0


def _save(out: Path, i: int, rgb: np.ndarray, client: FrameClient, stamp: int) -> None:
    heat = client.received.by_topic['anomaly_heatmap'][stamp][0]
    color = client.received.by_topic['segmentation/color'][stamp][0]
    h, w = heat.height, heat.width
    heat_bgr = np.frombuffer(bytes(heat.data), np.uint8).reshape(h, w, 3)
    color_rgb = np.frombuffer(bytes(color.data), np.uint8).reshape(h, w, 3)
    cv2.imwrite(str(out / f'heatmap_{i:03d}.png'), heat_bgr)
    cv2.imwrite(str(out / f'segmentation_{i:03d}.png'), cv2.cvtColor(color_rgb, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(out / f'input_{i:03d}.png'), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
