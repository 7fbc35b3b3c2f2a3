"""Default values shared by the options dataclasses and the `anomaly-seg` command line, written once.

The dataclasses (`EvaluateOptions`, `SegTrainConfig`, `ImportOptions`, `BlendConfig`) live in modules that
import torch or cv2 at top level, and `anomaly-seg --help` must not; so both sides read their defaults here.
This module imports nothing. Sizes are (width, height), as typed on the command line.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    'BAG_FRAME_ID',
    'BAG_RATE_HZ',
    'BAG_STORAGE',
    'BLEND_COLOR_NOISE',
    'BLEND_GLOW_PROB',
    'BLEND_HORIZON',
    'BLEND_IN_DISTRIBUTION_PROB',
    'BLEND_OBJECTS_PER_IMAGE',
    'BLEND_SCALE_RANGE',
    'BLEND_SEED',
    'CHANNEL_ORDER',
    'DEFAULT_SCORER',
    'EVAL_MIN_GT_SIZE',
    'EVAL_MIN_PRED_SIZE',
    'EVAL_MODE',
    'EVAL_MODES',
    'EVAL_WORST_K',
    'GT_ANOMALY_TOPIC',
    'GT_LABELS_TOPIC',
    'IMAGENET_MEAN',
    'IMAGENET_STD',
    'IMPORT_ARCHITECTURE',
    'IMPORT_CLASSES',
    'LIVE_RATE_SCALE',
    'PIXEL_SCALE',
    'SEG_BATCH',
    'SEG_CROP_SIZE',
    'SEG_EVAL_EVERY',
    'SEG_INPUT_SIZE',
    'SEG_ITERS',
    'SEG_LR',
    'SEG_SEED',
    'SEG_THREADS',
    'SEG_WIDTH',
    'SYNTHETIC_EVAL_COUNT',
    'SYNTHETIC_EVAL_SEED',
    'SYNTHETIC_FRAME_SIZE',
]

DEFAULT_SCORER: Final = 'entropy'

# Held-out synthetic split and ground-truth topics (evaluate, bag from-dataset)
SYNTHETIC_EVAL_COUNT: Final = 200
SYNTHETIC_EVAL_SEED: Final = 1000  # training uses seeds 0 and 1; the held-out world starts far from them
SYNTHETIC_FRAME_SIZE: Final = (1024, 512)
GT_ANOMALY_TOPIC: Final = '/ground_truth/anomaly'
GT_LABELS_TOPIC: Final = '/ground_truth/labels'

# evaluate: what runs and the metrics (EvaluateOptions); the pixel-metric bins are metrics.pixel.DEFAULT_BINS
EVAL_MODES: Final = ('offline', 'live')
EVAL_MODE: Final = 'offline'
LIVE_RATE_SCALE: Final = 1.0
EVAL_MIN_GT_SIZE: Final = 0
EVAL_MIN_PRED_SIZE: Final = 0
EVAL_WORST_K: Final = 4

# train seg (SegTrainConfig)
SEG_WIDTH: Final = 32
SEG_INPUT_SIZE: Final = (512, 256)
SEG_CROP_SIZE: Final = (384, 192)
SEG_BATCH: Final = 8
SEG_ITERS: Final = 1500
SEG_LR: Final = 2e-3
SEG_EVAL_EVERY: Final = 250
SEG_SEED: Final = 0
SEG_THREADS: Final = 0  # 0: torch's own default

# import-model (ImportOptions)
IMPORT_CLASSES: Final = 'cityscapes'
IMPORT_ARCHITECTURE: Final = 'external'
CHANNEL_ORDER: Final = 'rgb'
PIXEL_SCALE: Final = 1.0 / 255.0
IMAGENET_MEAN: Final = (0.485, 0.456, 0.406)
IMAGENET_STD: Final = (0.229, 0.224, 0.225)

# blend (BlendConfig)
BLEND_OBJECTS_PER_IMAGE: Final = (1, 2)
BLEND_SCALE_RANGE: Final = (0.05, 0.25)
BLEND_HORIZON: Final = 0.45
BLEND_IN_DISTRIBUTION_PROB: Final = 0.3
BLEND_GLOW_PROB: Final = 0.1
BLEND_COLOR_NOISE: Final = 0.02
BLEND_SEED: Final = 0

# bag from-dataset (the keyword defaults of bag.write_bag)
BAG_STORAGE: Final = 'mcap'
BAG_RATE_HZ: Final = 10.0
BAG_FRAME_ID: Final = 'camera'

# TensorRT (backends.tensorrt_backend and `build-engine`)
TRT_PRECISION: Final = 'fp16'
TRT_CALIB_FRAMES: Final = 200
TRT_WORKSPACE_GB: Final = 4.0

# bench: idle time before each timed call (a camera frame period is >= 33 ms; see bench.py)
BENCH_GAP_MS: Final = 20.0

# model input size bounds (model.yaml input and import-model): a 30000x30000 input would try to allocate GBs
MAX_INPUT_SIDE: Final = 8192
MAX_INPUT_PIXELS: Final = 32 * 1024 * 1024
