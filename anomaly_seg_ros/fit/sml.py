"""`fit sml`: the per-class max-logit statistics of standardized max-logit (Jung et al., ICCV 2021, sec. 3.2).

For every frame the model folder's own net runs exactly as in the Pipeline (graph.FrameToInput resizes and
normalises the camera frame inside torch, backends.source.GraphSource loads the net: a project net, a
TorchScript file or an imported ONNX graph alike), and at the net's logit resolution each in-distribution
pixel contributes its max logit to the statistics of its predicted class. Pixels whose footprint touches an
anomaly == 1 pixel of the frame's ground truth, when it has one, are left out; no labels are needed.

Statistics are streamed: per frame a count, a mean and a sum of squared deviations per class (float64,
np.bincount), merged into the running ones by Chan et al.'s pairwise update, so memory does not grow with the
number of frames and there is no cancellation of a raw sum of squares. std is the population standard
deviation. A class predicted on fewer than --min-pixels pixels (never, typically) gets the statistics of all
pixels together (the fallback is listed in the summary), so the scorer still standardises it sensibly.

Post-processing parameters are written in logit pixels. The paper's figures (boundary width 8, smoothing
dilation 6) are pixels of a logit map at Cityscapes' full 2048-pixel width; by default they are scaled by
logit width / 2048 and rounded (at least 1): the default model's 512-pixel-wide logits get width 2 and
dilation 2. The iteration count (4) and kernel size (7, a number of taps) are not distances and stay.
--boundary-width and friends set logit-pixel values directly.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..classes import ANOMALY_ID
from ..data.sample import Sample
from ..errors import ConfigError
from .base import FitResult, int_at_least, save_artefact

if TYPE_CHECKING:
    import torch

__all__ = ['ARTEFACT', 'HELP', 'PAPER_WIDTH', 'RunningClassStats', 'add_arguments', 'fit', 'scaled_params']

HELP = 'standardized max-logit: per-class mean and std of the max logit on in-distribution frames (no labels)'
#: the artefact file written beside model.yaml
ARTEFACT = 'sml_stats.pt'
#: logit-map width the paper's pixel sizes refer to (Cityscapes at full resolution)
PAPER_WIDTH = 2048
PAPER = {'boundary_iterations': 4, 'boundary_width': 8, 'smoothing_kernel': 7, 'smoothing_dilation': 6}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group('sml options (post-processing sizes in logit pixels; default: scaled, see --help)')
    g.add_argument('--boundary-iterations', type=int_at_least(0), default=None, help='0 turns suppression off (4)')
    g.add_argument(
        '--boundary-width', type=int_at_least(1), default=None, help='first band width (8 x logit width/2048)'
    )
    g.add_argument('--smoothing-kernel', type=_odd, default=None, help='odd; 1 turns smoothing off (7)')
    g.add_argument('--smoothing-dilation', type=int_at_least(1), default=None, help='(6 x logit width/2048)')
    g.add_argument(
        '--min-pixels',
        type=int_at_least(1),
        default=100,
        help='a class predicted on fewer pixels gets the all-pixel statistics',
    )


def _odd(text: str) -> int:
    value = int_at_least(1)(text)
    if value % 2 == 0:
        raise argparse.ArgumentTypeError(f'expected an odd whole number (the kernel has a centre), got {text!r}')
    return value


def scaled_params(logit_width: int) -> dict[str, int]:
    """The paper's post-processing sizes for a logit map `logit_width` pixels wide (see the module docstring)."""
    s = logit_width / PAPER_WIDTH
    return {
        'boundary_iterations': PAPER['boundary_iterations'],
        'boundary_width': max(1, round(PAPER['boundary_width'] * s)),
        'smoothing_kernel': PAPER['smoothing_kernel'],
        'smoothing_dilation': max(1, round(PAPER['smoothing_dilation'] * s)),
    }


class RunningClassStats:
    """Per-class count, mean and sum of squared deviations (M2) of a value, merged batch by batch (float64)."""

    def __init__(self, num_classes: int) -> None:
        self.k = num_classes
        self.count = np.zeros(num_classes, np.int64)
        self.mean = np.zeros(num_classes, np.float64)
        self.m2 = np.zeros(num_classes, np.float64)

    def update(self, values: np.ndarray, classes: np.ndarray) -> None:
        v = values.astype(np.float64, copy=False).ravel()
        c = classes.astype(np.int64, copy=False).ravel()
        n_b = np.bincount(c, minlength=self.k)
        if not n_b.any():
            return
        safe = np.maximum(n_b, 1)
        mean_b = np.bincount(c, weights=v, minlength=self.k) / safe
        m2_b = np.bincount(c, weights=(v - mean_b[c]) ** 2, minlength=self.k)
        n_a = self.count
        n = n_a + n_b
        delta = mean_b - self.mean
        frac = np.divide(n_b, n, out=np.zeros(self.k), where=n > 0)
        self.m2 = self.m2 + m2_b + delta**2 * n_a * frac
        self.mean = self.mean + delta * frac
        self.count = n

    def total(self) -> tuple[int, float, float]:
        """(count, mean, population std) over every class together."""
        n = int(self.count.sum())
        if n == 0:
            return 0, 0.0, 0.0
        mean = float((self.count * self.mean).sum() / n)
        m2 = float(self.m2.sum() + (self.count * (self.mean - mean) ** 2).sum())
        return n, mean, float(np.sqrt(m2 / n))

    def std(self) -> np.ndarray:
        return np.sqrt(np.divide(self.m2, self.count, out=np.zeros(self.k), where=self.count > 0))


def in_distribution_mask(sample: Sample, logits_hw: tuple[int, int]) -> np.ndarray | None:
    """h x w bool at the logit resolution: False where the pixel's footprint touches an anomaly == 1 pixel;
    None when the frame has no anomaly mask (every pixel counts)."""
    if sample.anomaly is None:
        return None
    anomalous = (sample.anomaly == ANOMALY_ID).astype(np.float32)
    if not anomalous.any():
        return None
    import cv2  # noqa: PLC0415 - the module stays light: `anomaly-seg --help` imports it

    h, w = logits_hw
    if anomalous.shape != (h, w):
        # INTER_AREA averages each logit pixel's footprint when shrinking: any anomalous pixel in it leaves it out
        anomalous = cv2.resize(anomalous, (w, h), interpolation=cv2.INTER_AREA)
    return np.asarray(anomalous <= 0.0)


class _NetRunner:
    """The model folder's net on camera frames, as the Pipeline runs it: logits for each frame."""

    def __init__(self, model_dir: Path, device: str) -> None:
        import torch  # noqa: PLC0415 - see in_distribution_mask

        from ..backends.source import GraphSource  # noqa: PLC0415
        from ..config import load_model_config  # noqa: PLC0415
        from ..scoring import build_scorer  # noqa: PLC0415

        self.model = load_model_config(model_dir)
        # any scorer that needs only the logits: GraphSource wants one, the net does not depend on it
        self.source = GraphSource(self.model, build_scorer('max_logit', self.model))
        self.device = torch.device(device)
        self.net = self.source.named_net()
        if self.model.format != 'onnx':
            self.net = self.net.to(self.device)
        elif self.device.type != 'cpu':
            raise ConfigError(f'fit: an imported ONNX net runs on the CPU here, not {device}')
        self.logits_hw = self.source.logits_hw()
        self._pre: dict[tuple[int, int], torch.nn.Module] = {}

    def logits(self, image: np.ndarray) -> torch.Tensor:
        """1 x K x h x w float32 class logits (a void channel dropped) of one HxWx3 uint8 RGB frame."""
        import torch  # noqa: PLC0415

        from ..graph import FrameToInput  # noqa: PLC0415

        hw = (int(image.shape[0]), int(image.shape[1]))
        with torch.inference_mode():
            if hw not in self._pre:
                self._pre[hw] = FrameToInput(self.model, hw).to(self.device)
            frame = torch.from_numpy(np.ascontiguousarray(image))[None].to(self.device)
            out = self.net(self._pre[hw](frame))['logits']
            return out[:, : self.model.num_classes].float()


def fit(model_dir: Path, frames: Sequence[Sample], args: argparse.Namespace) -> FitResult:
    import torch  # noqa: PLC0415

    t0 = time.perf_counter()
    runner = _NetRunner(model_dir, getattr(args, 'device', 'cpu'))
    model = runner.model
    k = model.num_classes
    stats = RunningClassStats(k)
    used = excluded = n_frames = 0
    for sample in frames:
        logits = runner.logits(sample.image)[0]  # K x h x w
        top, classes = logits.max(dim=0)
        top_np, cls_np = top.cpu().numpy(), classes.cpu().numpy()
        keep = in_distribution_mask(sample, runner.logits_hw)
        if keep is not None:
            excluded += int((~keep).sum())
            top_np, cls_np = top_np[keep], cls_np[keep]
        stats.update(top_np, cls_np)
        used += int(top_np.size)
        n_frames += 1
    if used == 0:
        raise ConfigError(f'fit sml: no in-distribution pixels in the {n_frames} frames (every pixel was anomalous)')
    n_all, mean_all, std_all = stats.total()
    std_all = max(std_all, 1e-6)
    min_pixels = int(getattr(args, 'min_pixels', 100))
    mean, std = stats.mean.copy(), stats.std()
    fallback = [c for c in range(k) if stats.count[c] < min_pixels or not std[c] > 1e-6]
    for c in fallback:
        mean[c], std[c] = mean_all, std_all
    artefact = {
        'mean': torch.from_numpy(mean).float(),
        'std': torch.from_numpy(std).float(),
        'count': torch.from_numpy(stats.count.copy()),
    }
    save_artefact(Path(model_dir) / ARTEFACT, artefact)
    params = scaled_params(runner.logits_hw[1])
    for key in params:
        value = getattr(args, key, None)
        if value is not None:
            params[key] = int(value)
    summary = {
        'frames': n_frames,
        'pixels': used,
        'pixels_excluded_anomaly': excluded,
        'logits_hw': list(runner.logits_hw),
        'global_mean': mean_all,
        'global_std': std_all,
        'fallback_classes': [model.classes[c] for c in fallback],
        'per_class': {
            model.classes[c]: {
                'count': int(stats.count[c]),
                'mean': float(mean[c]),
                'std': float(std[c]),
                'fallback': c in fallback,
            }
            for c in range(k)
        },
        'params_scaled_from_paper': {key: getattr(args, key, None) is None for key in params},
        'seconds': round(time.perf_counter() - t0, 2),
    }
    return FitResult(scorer='sml', artefacts={'stats': ARTEFACT}, params=params, taps={}, summary=summary)
