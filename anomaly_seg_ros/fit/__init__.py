"""Fitting scorers on the user's own frames: `anomaly-seg fit METHOD --model M <source> [method options]`.

A fitter reads in-distribution frames (a bag, an image folder, a dataset layout or the synthetic world; see
sources.py), runs the model folder's own net on them, writes what it learned as small files beside the model
and says what to record in model.yaml (base.FitResult; model_yaml.py records it). Fitter modules are named
here by module path and imported only when that method is asked for, so one missing or broken fitter never
stops the others (or `--help`).

Each fitter module exposes `HELP: str`, `add_arguments(parser)` (its own options) and
`fit(model_dir, frames, args) -> FitResult`.
"""

from __future__ import annotations

__all__ = ['FITTERS']

#: method name -> module path of its fitter
FITTERS = {'sml': 'anomaly_seg_ros.fit.sml', 'flow': 'anomaly_seg_ros.fit.flow', 'meta': 'anomaly_seg_ros.fit.meta'}
