"""The node's outputs as one table: each entry owns its topic, message type, encoding, switch and render step.

The node creates its publishers from `OUTPUTS`, publishes every frame by walking it, and the test harness
subscribes to what it lists (`harness.OUTPUT_TOPICS`), so a new output (the obstacle segments of the meta
classifier, say) is one entry here and its render function, not five edits across the node and the tests.

An entry's `render(frame)` builds the message from an `OutputFrame` (the input header, the decoded camera frame,
the Pipeline result and the node's config). `switch` names the NodeConfig boolean that turns the output on
(None: always on; a live parameter, so `ros2 param set` creates the publisher on the fly); `on_demand` outputs
are rendered only while something subscribes, because the visualisations cost more than the pipeline itself at
high resolutions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sensor_msgs.msg import Image

from ..config import NodeConfig
from ..viz import colorize_fast, heatmap_overlay
from .messages import image_msg

__all__ = ['OUTPUTS', 'Output', 'OutputFrame']


@dataclass(frozen=True)
class OutputFrame:
    """What every render step sees for one frame."""

    header: Any
    rgb: np.ndarray
    result: Any  # pipeline.Result: labels, score, score_range, aux
    cfg: NodeConfig


@dataclass(frozen=True)
class Output:
    name: str  # topic under the node's private namespace: ~/NAME
    msg_type: type
    encoding: str  # what the message carries (an Image encoding, or a short description for other types)
    render: Callable[[OutputFrame], Any]
    switch: str | None = None  # NodeConfig boolean that enables it; None: always published
    on_demand: bool = False  # rendered only while it has a subscriber
    description: str = ''

    def enabled(self, cfg: NodeConfig) -> bool:
        return self.switch is None or bool(getattr(cfg, self.switch))


def _labels(f: OutputFrame) -> Image:
    return image_msg(f.header, f.result.labels, 'mono8')


def _score(f: OutputFrame) -> Image:
    return image_msg(f.header, f.result.score.astype(np.float32, copy=False), '32FC1')


def _color(f: OutputFrame) -> Image:
    return image_msg(f.header, colorize_fast(f.result.labels), 'rgb8')


def _heatmap(f: OutputFrame) -> Image:
    overlay = heatmap_overlay(f.rgb, f.result.score, f.result.score_range, f.cfg.heatmap_alpha)
    return image_msg(f.header, overlay, 'bgr8')


#: in publishing order: labels and score first (what a planner consumes), the visualisations after
OUTPUTS: tuple[Output, ...] = (
    Output('segmentation', Image, 'mono8', _labels, description='Cityscapes trainIds, camera resolution'),
    Output('anomaly_score', Image, '32FC1', _score, description='anomaly score, camera resolution'),
    Output(
        'segmentation/color',
        Image,
        'rgb8',
        _color,
        switch='publish_color',
        on_demand=True,
        description='Cityscapes palette',
    ),
    Output(
        'anomaly_heatmap',
        Image,
        'bgr8',
        _heatmap,
        switch='publish_heatmap',
        on_demand=True,
        description='TURBO heatmap over the camera frame',
    ),
)
