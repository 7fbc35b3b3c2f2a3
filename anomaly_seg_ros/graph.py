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
  (nothing when the factor divides exactly). The box sum runs on the HxWx3 layout the camera delivers, so
  the full-resolution frame is never transposed.
- labels back up: nearest (each camera pixel takes the label of the net pixel it falls in, as
  cv2.INTER_NEAREST), by broadcasting when the factor is an integer, by an index gather otherwise.
- score and aux maps back up: bilinear (half-pixel centres, as cv2.INTER_LINEAR).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .errors import ConfigError
from .scoring import IMAGE, LOGITS, Scorer, build_scorer

__all__ = ['FrameToInput', 'MapsFromOutputs', 'PipelineGraph', 'box_factor', 'build_graph', 'check_scorer_needs']

#: output names of every graph, in order; auxiliary maps follow under their own names
GRAPH_OUTPUTS = ('labels', 'score')
GRAPH_INPUT = 'frame'


def box_factor(src: int, dst: int) -> int:
    """The largest integer k <= src / dst that divides src (1 when not shrinking)."""
    k = max(1, src // dst)
    while src % k:
        k -= 1
    return k


class FrameToInput(nn.Module):
    """uint8 1xHxWx3 RGB camera frame -> float32 1x3xhxw normalised net input (model.yaml `input`)."""

    def __init__(self, model: ModelConfig, frame_hw: tuple[int, int]) -> None:
        super().__init__()
        spec = model.input
        self.frame_hw = frame_hw
        self.input_hw = (spec.height, spec.width)
        big_h, big_w = frame_hw
        self.fy, self.fx = box_factor(big_h, spec.height), box_factor(big_w, spec.width)
        self.box_hw = (big_h // self.fy, big_w // self.fx)
        std = torch.tensor(spec.std, dtype=torch.float32)
        # x * scale, minus mean, over std, with the box average's 1 / (fy * fx) folded into the multiplier
        mul = spec.scale / std / (self.fy * self.fx)
        add = -torch.tensor(spec.mean, dtype=torch.float32) / std
        # mean and std are in the net's channel order; a BGR net gets the RGB frame's channels flipped first
        self.bgr = spec.channel_order == 'bgr'
        self.register_buffer('mul', mul, persistent=False)
        self.register_buffer('add', add, persistent=False)

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        x = frame.float()
        if self.fy > 1 or self.fx > 1:
            h, w = self.box_hw
            x = x.reshape(1, h, self.fy, w, self.fx, 3).sum(dim=(2, 4))
        if self.bgr:
            x = x.flip(-1)
        x = (x * self.mul + self.add).permute(0, 3, 1, 2)
        if self.box_hw != self.input_hw:
            x = F.interpolate(x, size=self.input_hw, mode='bilinear', align_corners=False)
        return x.contiguous()


class MapsFromOutputs(nn.Module):
    """Net outputs -> labels, score and aux maps at the camera's resolution."""

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

    def labels(self, logits: torch.Tensor) -> torch.Tensor:
        # max().indices, not argmax(): the same first-maximum ids, about 4x faster over the channel dim on CPU
        ids = logits[:, : self.num_classes].max(dim=1).indices.to(torch.uint8)  # 1 x lh x lw
        if ids.shape[1:] == self.frame_hw:
            return ids
        if self.integer_up:
            (lh, lw), (fy, fx) = self.logits_hw, self.up
            return ids[:, :, None, :, None].expand(1, lh, fy, lw, fx).reshape(1, *self.frame_hw)
        return ids.index_select(1, self.rows).index_select(2, self.cols)

    def upsample(self, score: torch.Tensor) -> torch.Tensor:
        score = score.float()
        if score.shape[-2:] == self.frame_hw:
            return score
        return F.interpolate(score[:, None], size=self.frame_hw, mode='bilinear', align_corners=False)[:, 0]

    def forward(self, outputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        labels = self.labels(outputs[LOGITS])
        score = self.upsample(self.scorer(outputs))
        aux = [self.upsample(s(outputs)) for s in self.aux.values()]
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
