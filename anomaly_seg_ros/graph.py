"""PipelineGraph: one nn.Module from the camera frame to labels and score, at the camera's resolution.

    frame uint8 1xHxWx3 (RGB) -> resize to the model's input -> normalise -> net -> {logits, taps}
        -> scorer (+ auxiliary maps) -> labels uint8 1xHxW (trainIds), score float32 1xHxW (, aux float32 1xHxW)

The torch backend runs it eagerly (the reference); the onnxruntime and tensorrt backends run it exported as
one ONNX graph (backends/export.py), so the host only hands over the decoded frame and publishes what comes
back. A graph is built for one camera size (its resize and upsampling constants are fixed, and fixed shapes
give the fastest engines); backends keep one per camera size they meet.

Resizing, inside the graph:
- down to the model input: an exact box (area) average over the largest integer factor that divides the
  frame (for 2048x1024 -> 512x256 that is 4x4, the same as cv2.INTER_AREA), then bilinear for what remains
  (nothing when the factor divides exactly). The rows of a box are summed on the HxWx3 layout the camera
  delivers (the full-resolution frame is never transposed); one matmul then sums its columns and does the
  normalisation, the channel order (RGB or BGR net) and the move to channels-first.
- labels back up: nearest (each camera pixel takes the label of the net pixel it falls in, as
  cv2.INTER_NEAREST); for an integer factor each id is repeated along its row by a 0/1 matmul and each row
  by broadcasting, otherwise by an index gather.
- score and aux maps back up: bilinear (half-pixel centres, as cv2.INTER_LINEAR); for an integer factor as
  two separable steps (neighbours x `phase_weights`), otherwise F.interpolate. Bounded scores are clamped to
  their scorer's range afterwards.

Why these forms (ONNX Runtime 1.31 and torch 2.13 on the 2-core CPU, default model, 2048x1024 frames; per-node
figures are minimum kernel times from ORT's profiler, whole-graph figures medians): ORT is slow at broadcasts
with a small inner axis and at reductions over a middle axis, and fast at matmuls and last-axis reductions.
- box average: ReduceSum over two axes of a 6-D view plus Mul/Add/Transpose took 5.2 ms in ORT and 12 ms in
  torch; the row sum + one matmul takes 1.0 ms in ORT (plus the 1.0 ms uint8 -> float Cast) and 3.1 ms in
  torch. (A strided conv does the same sum in torch, but ORT turns it into a blocked conv padded to 16
  channels, 3.5 ms.)
- labels: the 5-D Expand of uint8 ids took 2.2 ms in ORT (0.6 ms torch); the matmul repeat + row broadcast
  0.2 ms (0.3 ms torch). ArgMax over the class rows (scoring/softmax.py): 0.6 ms against 2.2 ms.
- score: Resize took 2.6 ms in ORT (1.9 ms torch) plus a 0.5 ms copy for the `[:, 0]`; the separable matmuls
  1.1 ms (1.5 ms torch), and the final clamp writes the output instead of a Reshape's copy.
Whole graph, entropy: ORT 28.8 -> 14.9 ms, eager torch 40 -> 25 ms. End to end (Pipeline, every softmax
scorer, labels 100 % equal, scores within 1e-5): torch 23-31 ms, ORT 12-15 ms, 1.8-2.1x, when the two run
in blocks or interleaved with a camera-like gap between calls. Back to back without a gap, ORT loses ~5 ms
to torch's OpenMP workers, which spin on both cores for a few ms after each torch call (libgomp's default
GOMP_SPINCOUNT); with GOMP_SPINCOUNT=30000 the interleaved figures match the block ones. Measured with
`anomaly-seg bench --backend torch,onnxruntime --scorer all --sizes 2048x1024 --no-ros`.
"""

from __future__ import annotations

import math
import warnings
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .errors import ConfigError
from .scoring import IMAGE, LOGITS, Scorer, build_scorer
from .scoring.softmax import pixel_rows

__all__ = [
    'FrameToInput',
    'MapsFromOutputs',
    'PipelineGraph',
    'box_factor',
    'build_graph',
    'check_scorer_needs',
    'phase_weights',
]

#: output names of every graph, in order; auxiliary maps follow under their own names
GRAPH_OUTPUTS = ('labels', 'score')
GRAPH_INPUT = 'frame'


def box_factor(src: int, dst: int) -> int:
    """The largest integer k <= src / dst that divides src (1 when not shrinking)."""
    k = max(1, src // dst)
    while src % k:
        k -= 1
    return k


def phase_weights(k: int) -> torch.Tensor:
    """3 x k: for bilinear upsampling by an integer factor k with half-pixel centres, output pixel k*i + r is
    w[0, r] * s[i-1] + w[1, r] * s[i] + w[2, r] * s[i+1] (its centre sits (2r + 1 - k) / 2k source pixels from
    s[i]'s, so only the nearer neighbour has a weight). Edges repeat the border pixel, which is what clamping
    the source coordinate (cv2.INTER_LINEAR, F.interpolate align_corners=False) gives."""
    w = torch.zeros(3, k, dtype=torch.float64)
    for r in range(k):
        d = (2 * r + 1 - k) / (2 * k)
        w[1, r] = 1.0 - abs(d)
        w[0 if d < 0 else 2, r] = abs(d)
    return w.float()


def _fp32(x: torch.Tensor) -> torch.autocast:
    """The resizing arithmetic stays fp32 under the torch backend's CUDA autocast (its matmuls would run fp16)."""
    return torch.autocast(x.device.type, enabled=False)


def _static_hw(x: torch.Tensor) -> tuple[int, int]:
    """A map's h x w as Python ints. A graph is built and traced for one camera size, so what is read while
    tracing is a constant of that graph: the tracer's warning (the value may not generalise) does not apply."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        return int(x.shape[-2]), int(x.shape[-1])


class FrameToInput(nn.Module):
    """uint8 1xHxWx3 RGB camera frame -> float32 1x3xhxw normalised net input (model.yaml `input`)."""

    weight: torch.Tensor
    bias: torch.Tensor

    def __init__(self, model: ModelConfig, frame_hw: tuple[int, int]) -> None:
        super().__init__()
        spec = model.input
        self.frame_hw = frame_hw
        self.input_hw = (spec.height, spec.width)
        big_h, big_w = frame_hw
        self.fy, self.fx = box_factor(big_h, spec.height), box_factor(big_w, spec.width)
        self.box_hw = (big_h // self.fy, big_w // self.fx)
        std = torch.tensor(spec.std, dtype=torch.float64)
        # x * scale, minus mean, over std, with the box average's 1 / (fy * fx) folded into the multiplier
        mul = spec.scale / std / (self.fy * self.fx)
        add = -torch.tensor(spec.mean, dtype=torch.float64) / std
        # mean and std are in the net's channel order; a BGR net reads the RGB frame's channels reversed
        self.bgr = spec.channel_order == 'bgr'
        source = (2, 1, 0) if self.bgr else (0, 1, 2)
        # One matmul does the column half of the box sum, the normalisation, the channel order and the move to
        # channels-first: net channel c of a box pixel = sum over its fx columns of frame channel source[c],
        # times mul[c]. The frame row is W*3 interleaved values, so a box row is fx*3 consecutive values.
        weight = torch.zeros(3, self.fx * 3, dtype=torch.float64)
        for c in range(3):
            weight[c, source[c] :: 3] = mul[c]
        self.register_buffer('weight', weight.float(), persistent=False)
        self.register_buffer('bias', add.float()[:, None], persistent=False)

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        (h, w), big_w = self.box_hw, self.frame_hw[1]
        with _fp32(frame):
            x = frame.float().reshape(h, self.fy, big_w * 3)
            if self.fy > 1:
                x = x.sum(dim=1)  # the row half of the box sum, on the layout the camera delivers
            x = (self.weight @ x.reshape(h * w, self.fx * 3).t() + self.bias).reshape(1, 3, h, w)
            if self.box_hw != self.input_hw:
                x = F.interpolate(x, size=self.input_hw, mode='bilinear', align_corners=False)
        return x


class MapsFromOutputs(nn.Module):
    """Net outputs -> labels, score and aux maps at the camera's resolution."""

    rows: torch.Tensor
    cols: torch.Tensor
    repeat: torch.Tensor
    col_weights: torch.Tensor
    row_weights: torch.Tensor
    row_neighbours: torch.Tensor

    def __init__(
        self,
        model: ModelConfig,
        scorer: Scorer,
        frame_hw: tuple[int, int],
        logits_hw: tuple[int, int],
        aux: dict[str, Scorer] | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = model.num_classes
        self.void_channel = model.void_channel
        self.scorer = scorer
        self.aux = nn.ModuleDict(aux or {})
        self.frame_hw = frame_hw
        big_h, big_w = frame_hw
        lh, lw = logits_hw
        self.integer_up = big_h % lh == 0 and big_w % lw == 0
        self.up = (big_h // lh, big_w // lw)
        self.logits_hw = logits_hw
        # nearest index of each camera row/column, as cv2.INTER_NEAREST: floor(i * src / dst)
        self.register_buffer('rows', torch.arange(big_h) * lh // big_h, persistent=False)
        self.register_buffer('cols', torch.arange(big_w) * lw // big_w, persistent=False)
        fy, fx = self.up if self.integer_up else (1, 1)  # the matmul paths below serve integer factors only
        # labels, integer factor: each id repeated fx times along its row by a 0/1 matrix product over blocks of
        # `block` ids (exact: small integers in float32), then each row fy times by broadcasting
        self.block = max(b for b in range(1, 17) if lw % b == 0)
        repeat = torch.zeros(self.block, self.block * fx)
        for j in range(self.block):
            repeat[j, j * fx : (j + 1) * fx] = 1.0
        self.register_buffer('repeat', repeat, persistent=False)
        # score, integer factor: separable bilinear, each axis as neighbours x phase weights (see phase_weights)
        self.register_buffer('col_weights', phase_weights(fx), persistent=False)
        self.register_buffer('row_weights', phase_weights(fy).t().contiguous(), persistent=False)
        i = torch.arange(lh)
        self.register_buffer(
            'row_neighbours',
            torch.stack(((i - 1).clamp(min=0), i, (i + 1).clamp(max=lh - 1)), dim=1).reshape(-1),
            persistent=False,
        )

    def labels(self, logits: torch.Tensor) -> torch.Tensor:
        if self.void_channel:
            logits = logits[:, : self.num_classes]
        b = logits.shape[0]
        # max().indices, not argmax(): the same first-maximum ids, about 4x faster on CPU; over the rows of a
        # pixels x classes view, which ONNX Runtime reduces 3x faster than the channel axis (scoring/softmax.py)
        ids = pixel_rows(logits).max(dim=-1).indices.reshape(b, *self.logits_hw)
        if self.logits_hw == self.frame_hw:
            return ids.to(torch.uint8)
        if not self.integer_up:
            return ids.to(torch.uint8).index_select(1, self.rows).index_select(2, self.cols)
        (lh, lw), (fy, fx), (big_h, big_w) = self.logits_hw, self.up, self.frame_hw
        if fx > 1:
            with _fp32(ids):
                wide = ids.float().reshape(b * lh * lw // self.block, self.block) @ self.repeat
            row = wide.to(torch.uint8).reshape(b, lh, 1, big_w)
        else:
            row = ids.to(torch.uint8).reshape(b, lh, 1, big_w)
        return row.expand(b, lh, fy, big_w).reshape(b, big_h, big_w)

    def upsample(self, score: torch.Tensor, score_range: tuple[float, float] = (-math.inf, math.inf)) -> torch.Tensor:
        """Bilinear (half-pixel centres) to the camera size, then clamped to the scorer's declared range."""
        score = score.float()
        hw = _static_hw(score)
        if hw != self.frame_hw:
            with _fp32(score):
                if self.integer_up and hw == self.logits_hw:
                    score = self._upsample_integer(score)
                else:
                    score = F.interpolate(score[:, None], size=self.frame_hw, mode='bilinear', align_corners=False)
                    score = score.reshape(score.shape[0], *self.frame_hw)
        lo, hi = score_range
        if math.isfinite(lo) and math.isfinite(hi):
            # interpolation never leaves the range but for float rounding; the clamp also writes the output,
            # which is cheaper in ONNX Runtime than the copy a final Reshape makes
            score = score.clamp(lo, hi)
        return score

    def _upsample_integer(self, score: torch.Tensor) -> torch.Tensor:
        # F.interpolate's result to float rounding, faster in ONNX Runtime (1.1 ms against 2.6 ms at
        # 256x512 -> 1024x2048) and no slower in torch: columns first (edge-padded neighbours, stacked, times the
        # phase weights), then rows (neighbour rows gathered, times the phase weights)
        lh, (fy, fx), (big_h, big_w) = self.logits_hw[0], self.up, self.frame_hw
        b = score.shape[0]
        if fx > 1:
            p = torch.cat((score[..., :1], score, score[..., -1:]), dim=-1)  # edge columns repeated
            score = (torch.stack((p[..., :-2], p[..., 1:-1], p[..., 2:]), dim=-1) @ self.col_weights).reshape(
                b, lh, big_w
            )
        if fy > 1:
            rows = score.index_select(1, self.row_neighbours).reshape(b, lh, 3, big_w)
            score = self.row_weights @ rows
        return score.reshape(b, big_h, big_w)

    def _aux_scorers(self) -> list[Scorer]:
        return [cast(Scorer, s) for s in self.aux.values()]

    def forward(self, outputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        labels = self.labels(outputs[LOGITS])
        score = self.upsample(self.scorer(outputs), self.scorer.score_range)
        aux = [self.upsample(s(outputs), s.score_range) for s in self._aux_scorers()]
        return (labels, score, *aux)


class PipelineGraph(nn.Module):
    """forward(frame uint8 1xHxWx3) -> (labels uint8 1xHxW, score float32 1xHxW, *aux float32 1xHxW).

    `net` maps the normalised input to a dict of named outputs ('logits' plus taps: nets.TappedNet).
    """

    def __init__(self, pre: FrameToInput, net: nn.Module, post: MapsFromOutputs) -> None:
        super().__init__()
        self.pre = pre
        self.net = net
        self.post = post

    @property
    def frame_hw(self) -> tuple[int, int]:
        return self.pre.frame_hw

    @property
    def output_names(self) -> tuple[str, ...]:
        return (*GRAPH_OUTPUTS, *self.post.aux.keys())

    def forward(self, frame: torch.Tensor) -> tuple[torch.Tensor, ...]:
        image = self.pre(frame)
        outputs = dict(self.net(image))
        outputs[IMAGE] = image
        return self.post(outputs)


def check_scorer_needs(model: ModelConfig, scorer: Scorer) -> None:
    """A scorer that reads a tap the model folder does not declare fails at start-up, naming both."""
    have = {LOGITS, IMAGE, *model.taps}
    missing = [n for n in scorer.needs if n not in have]
    if missing:
        declared = ', '.join(sorted(model.taps)) or 'none'
        raise ConfigError(
            f'scorer {scorer.name!r} needs the net output(s) {", ".join(missing)}, which model {model.name!r} '
            f'does not declare (its taps: {declared}); add them under `taps:` in {model.directory / "model.yaml"}'
        )


def build_graph(
    model: ModelConfig,
    net: nn.Module,
    scorer: Scorer,
    frame_hw: tuple[int, int],
    aux: tuple[str, ...] = (),
    logits_hw: tuple[int, int] | None = None,
) -> PipelineGraph:
    """The graph for one camera size. `logits_hw` is the net's output size (probed when not given)."""
    check_scorer_needs(model, scorer)
    for name in aux:
        if name in GRAPH_OUTPUTS or name == GRAPH_INPUT:
            raise ConfigError(f'aux map {name!r}: the name is taken by the graph itself')
    aux_scorers = {name: build_scorer(name, model) for name in aux}
    for s in aux_scorers.values():
        check_scorer_needs(model, s)
    pre = FrameToInput(model, frame_hw)
    if logits_hw is None:
        logits_hw = probe_logits_hw(model, net)
    post = MapsFromOutputs(model, scorer, frame_hw, logits_hw, aux_scorers)
    return PipelineGraph(pre, net, post).eval()


def probe_logits_hw(model: ModelConfig, net: nn.Module) -> tuple[int, int]:
    """Run the net once on a zero input to learn its logits size and check its channel count."""
    spec = model.input
    p = next(iter(net.parameters()), None)
    device = p.device if p is not None else torch.device('cpu')
    with torch.inference_mode():
        out = net(torch.zeros(1, 3, spec.height, spec.width, device=device))
    logits = out[LOGITS]
    if logits.ndim != 4 or logits.shape[1] != model.num_outputs:
        from .errors import BackendError

        raise BackendError(
            f'model {model.name!r}: expected logits 1x{model.num_outputs}xHxW '
            f'({model.num_classes} classes{" + void" if model.void_channel else ""}), got {tuple(logits.shape)}'
        )
    return int(logits.shape[2]), int(logits.shape[3])
