"""Plain records an evaluation run produces per frame: the per-frame row and a worst frame kept for inspection.

The accumulator fills them, the runners pass them on and the report draws them; none of them imports the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ['FrameRecord', 'WorstFrame']


@dataclass
class FrameRecord:
    """One message / sample of the run, as the per-frame table and the latency plot show it."""

    index: int  # message / sample index
    name: str
    stamp_ns: int
    status: str  # 'ok' | 'dropped' | 'late' | 'skipped: <reason>' (not read) | 'failed: <reason>' (no usable output)
    n_anomaly_px: int = 0
    n_in_dist_px: int = 0
    ap: float | None = None  # this frame's own AP (None: no anomaly pixel or not evaluated)
    mean_score_anomaly: float | None = None
    mean_score_in_dist: float | None = None
    latency_ms: float | None = None  # end-to-end or pipeline total for this frame
    stage_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class WorstFrame:
    """A frame picked for inspection, with why it was picked."""

    name: str
    why: str  # e.g. 'lowest frame AP 0.12' or 'highest in-distribution score 0.93'
    image: np.ndarray  # RGB uint8 HxWx3
    anomaly_gt: np.ndarray  # uint8 HxW 0/1/255
    score: np.ndarray  # float32 HxW
    score_range: tuple[float, float]
