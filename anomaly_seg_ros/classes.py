"""Cityscapes label space: the 19 training classes (trainIds 0..18), 255 = ignore, and their colours."""

from __future__ import annotations

import numpy as np

__all__ = [
    'ANOMALY_ID',
    'ANOMALY_IGNORE',
    'ANOMALY_IN_DIST',
    'CITYSCAPES_CLASSES',
    'CITYSCAPES_PALETTE',
    'IGNORE_ID',
    'NUM_CLASSES',
    'TRAIN_ID',
    'colorize',
]

CITYSCAPES_CLASSES: tuple[str, ...] = (
    'road',
    'sidewalk',
    'building',
    'wall',
    'fence',
    'pole',
    'traffic light',
    'traffic sign',
    'vegetation',
    'terrain',
    'sky',
    'person',
    'rider',
    'car',
    'truck',
    'bus',
    'train',
    'motorcycle',
    'bicycle',
)
NUM_CLASSES = len(CITYSCAPES_CLASSES)
TRAIN_ID: dict[str, int] = {name: i for i, name in enumerate(CITYSCAPES_CLASSES)}
IGNORE_ID = 255

# Fishyscapes anomaly ground-truth encoding.
ANOMALY_IN_DIST = 0
ANOMALY_ID = 1
ANOMALY_IGNORE = 255

# Official Cityscapes colours of the 19 train classes (RGB).
CITYSCAPES_PALETTE = np.array(
    [
        (128, 64, 128),
        (244, 35, 232),
        (70, 70, 70),
        (102, 102, 156),
        (190, 153, 153),
        (153, 153, 153),
        (250, 170, 30),
        (220, 220, 0),
        (107, 142, 35),
        (152, 251, 152),
        (70, 130, 180),
        (220, 20, 60),
        (255, 0, 0),
        (0, 0, 142),
        (0, 0, 70),
        (0, 60, 100),
        (0, 80, 100),
        (0, 0, 230),
        (119, 11, 32),
    ],
    dtype=np.uint8,
)


def colorize(labels: np.ndarray) -> np.ndarray:
    """Map HxW trainIds to an HxWx3 RGB image; ignore and unknown ids are black."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[:NUM_CLASSES] = CITYSCAPES_PALETTE
    return lut[labels]
