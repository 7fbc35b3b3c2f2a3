"""`anomaly-seg bench`: per-stage latency of the Pipeline on this machine, printed as a table.

Figures, not assertions: speed targets are checked by reading this output, never by timed tests.
"""

from __future__ import annotations

import platform
import time

import numpy as np
import torch
from tqdm import tqdm

from .data.synthetic import SyntheticWorld, WorldConfig
from .pipeline import STAGES, Pipeline

__all__ = ['BENCH_SIZES', 'bench_frames', 'pipeline_latency', 'print_table']

BENCH_SIZES = ((1024, 512), (2048, 1024))


def bench_frames(size: tuple[int, int], n: int = 4, seed: int = 3000) -> list[np.ndarray]:
    """A few distinct road frames (with obstacles) at WIDTHxHEIGHT; timed loops cycle through them."""
    w, h = size
    world = SyntheticWorld(n, seed=seed, config=WorldConfig(height=h, width=w, anomaly_prob=1.0))
    return [world[i].image for i in range(n)]


def pipeline_latency(pipe: Pipeline, frames: list[np.ndarray], runs: int, desc: str) -> dict[str, np.ndarray]:
    pipe(frames[0])  # warm-up at this size (allocator, resize buffers)
    rows: dict[str, list[float]] = {k: [] for k in (*STAGES, 'total')}
    for i in tqdm(range(runs), desc=desc, leave=False):
        t = pipe(frames[i % len(frames)]).timings
        for k in rows:
            rows[k].append(t[k])
    return {k: np.asarray(v) for k, v in rows.items()}


def print_table(title: str, table: dict[str, np.ndarray]) -> None:
    print(title)
    print(f'  {"stage":<12} {"p50 ms":>9} {"p95 ms":>9}')
    for k, v in table.items():
        print(f'  {k:<12} {np.percentile(v, 50):9.2f} {np.percentile(v, 95):9.2f}')


def machine_line(device: str) -> str:
    return (
        f'machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, '
        f'{torch.get_num_threads()} threads, device {device}'
    )


def _disc_object(rgb: tuple[int, int, int], r: int) -> np.ndarray:
    """An RGBA disc with a soft edge: a stand-in object for timing the blend step."""
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    obj = np.zeros((2 * r + 1, 2 * r + 1, 4), np.uint8)
    obj[..., :3] = rgb
    obj[..., 3] = (np.clip(r - np.hypot(yy, xx), 0.0, 1.0) * 255).astype(np.uint8)
    return obj


def data_tool_latency(runs: int, size: tuple[int, int] = (1024, 512)) -> dict[str, np.ndarray]:
    """ms per frame of the data tools at WIDTHxHEIGHT: rendering a synthetic frame, Fishyscapes-style blending."""
    from .data.blend import BlendConfig, blend_sample
    from .data.sample import Sample

    w, h = size
    world = SyntheticWorld(runs, seed=3000, config=WorldConfig(height=h, width=w))
    objects = [_disc_object((230, 20, 20), 30), _disc_object((20, 230, 40), 45)]
    rng = np.random.default_rng(0)
    rows: dict[str, list[float]] = {'synthetic frame': [], 'blend_sample': []}
    for i in tqdm(range(runs), desc='data tools', leave=False):
        t0 = time.perf_counter()
        frame = world[i]
        t1 = time.perf_counter()
        blend_sample(Sample(frame.image), objects, [], BlendConfig(), rng)
        t2 = time.perf_counter()
        rows['synthetic frame'].append((t1 - t0) * 1e3)
        rows['blend_sample'].append((t2 - t1) * 1e3)
    return {k: np.asarray(v) for k, v in rows.items()}


def run_bench(
    model: str, scorer: str, frames: int, device: str
) -> tuple[dict[tuple[int, int], dict[str, np.ndarray]], dict[tuple[int, int], list[np.ndarray]]]:
    """Print the Pipeline and data-tool tables; return the Pipeline timings and the frames, per size, so the
    node-overhead step (`ros.overhead.print_node_overhead`, in the ROS layer) can compare against them."""
    pipe = Pipeline.from_model(model, scorer, 'torch', device)
    pipe.warmup()
    spec = pipe.model.input
    print(f'model {pipe.model.name!r} (input {spec.width}x{spec.height}), scorer {pipe.scorer.name!r}')
    print(machine_line(device))
    direct: dict[tuple[int, int], dict[str, np.ndarray]] = {}
    images = {size: bench_frames(size) for size in BENCH_SIZES}
    for size in BENCH_SIZES:
        direct[size] = pipeline_latency(pipe, images[size], frames, f'pipeline {size[0]}x{size[1]}')
        print_table(f'Pipeline, {size[0]}x{size[1]} frames, {frames} runs:', direct[size])
    print_table(f'data tools, 1024x512, {frames} runs:', data_tool_latency(frames))
    return direct, images
