"""Host-side frame -> network input for training: resize / channel order / normalisation as model.yaml says.

Inference does the same inside the pipeline graph (graph.FrameToInput), so it compiles with the net. The two
agree up to rounding: for an integer shrink factor both are the exact area average (cv2.INTER_AREA here on
uint8, rounded to integers; the graph in float32, unrounded), i.e. within half a grey level before
normalisation. Training validation runs through the Pipeline, so the mIoU it reports is the graph's.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from .checks import image_problem
from .config import InputSpec

__all__ = ['Preprocessor', 'resize_interpolation']


def resize_interpolation(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> int:
    """INTER_AREA when any side shrinks (no aliasing), INTER_LINEAR when only enlarging."""
    shrinking = src_hw[0] > dst_hw[0] or src_hw[1] > dst_hw[1]
    return cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR


class Preprocessor:
    """RGB uint8 frames -> float32 NCHW tensors at the model's input size, as the InputSpec says."""

    def __init__(self, spec: InputSpec) -> None:
        self.spec = spec
        self.size = (spec.width, spec.height)  # cv2 order
        # uint8 -> float: x * scale, minus mean, over std; folded into one multiply-add per channel.
        std = np.asarray(spec.std, np.float32)
        self._mul = (spec.scale / std).astype(np.float32)
        self._add = (-np.asarray(spec.mean, np.float32) / std).astype(np.float32)
        self._bgr = spec.channel_order == 'bgr'

    def resize(self, rgb: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 RGB at any size -> the model's input size (a no-op when it already has it)."""
        problem = image_problem(rgb)
        if problem is not None:
            raise TypeError(problem) if not isinstance(rgb, np.ndarray) else ValueError(problem)
        h, w = rgb.shape[:2]
        if (w, h) == self.size:
            return rgb
        return cv2.resize(
            rgb, self.size, interpolation=resize_interpolation((h, w), (self.spec.height, self.spec.width))
        )

    def normalise(self, images: np.ndarray | list[np.ndarray]) -> torch.Tensor:
        """Nxhxwx3 (or one hxwx3) uint8 RGB at any common size -> Nx3xhxw float32, channel order applied."""
        x = np.stack(images) if isinstance(images, list) else images
        if x.ndim == 3:
            x = x[None]
        if self._bgr:
            x = x[..., ::-1]
        y = x.astype(np.float32) * self._mul + self._add
        return torch.from_numpy(np.ascontiguousarray(y.transpose(0, 3, 1, 2)))

    def __call__(self, rgb: np.ndarray) -> torch.Tensor:
        """One camera frame -> 1x3xhxw at the model's input size."""
        return self.normalise(self.resize(rgb))
