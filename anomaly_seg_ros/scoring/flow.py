"""Learned embedding density (Fishyscapes, Blum et al., sec. 4.2): a normalising flow per feature tap.

A Real-NVP flow (Dinh et al., "Density estimation using Real NVP", ICLR 2017) maps each pixel's embedding z
(the D channels of a tap, taken before a ReLU) to a latent eta with a standard Gaussian prior, so

    log p(z) = log N(eta; 0, I) + log |det d eta / d z|                          (Fishyscapes eq. 7)

and the flow is fitted by the mean negative log-likelihood over in-distribution embeddings (eq. 6; the
fitter is fit/flow.py). As in the paper's appendix, each step is an affine coupling layer, a batch
normalisation and a fixed random permutation, and the couplings start as the identity (last layer of the
scale/shift nets zero, as Glow recommends). The score of a pixel is the normalised NLL

    N_bar(z) = N(z) - L(Z_train)                                                 (eq. 8)

with L the mean NLL of the training embeddings stored in the artefact (`normalise: mean`, the paper's
form); `normalise: std` also divides by the training NLL's standard deviation, which puts taps of very
different spread on one scale before they are combined. Several taps are combined by the pixel-wise
minimum of their normalised, resized scores (the paper's strategy (i): a pixel is anomalous only when every
layer finds it unlikely). The paper's strategy (ii), logistic-regression weights fitted on labelled
validation anomalies, is left out: it needs outlier data, which the fit commands here do not require.

Why it is written this way:
- every layer is a 1x1 convolution or an elementwise op on B x D x h x w, so the flow runs on the whole
  embedding map at once and traces into the fused ONNX graph with static shapes (no reshapes to pixel lists);
  the fitter trains the same modules on N x D x 1 x 1 samples of pixels;
- the coupling scale is s = b * tanh(raw / b) (|s| < b, slope 1 at 0), so one layer can never blow a value
  up by more than e^b: Real-NVP's tanh bound, which keeps training stable on peaky feature distributions;
- the embedding is first standardised by the training mean and std of each channel (a fixed affine map, its
  log-determinant counted, so the NLL stays that of z itself), then clamped to +-CLAMP standard deviations:
  a far-out embedding still scores very high, but never overflows float32 into inf or NaN, which the
  Pipeline would report as a broken model;
- the NLL map is at the tap's resolution; it is upsampled bilinearly to the logits' resolution here (the
  graph then resizes the score to the camera), before taps are combined, as the paper combines resized maps.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from ..errors import CheckpointError, ConfigError
from .base import LOGITS, Scorer, ScorerConfig

__all__ = ['AffineCoupling', 'FlowBatchNorm', 'FlowDensity', 'RealNVP', 'flow_artefact']

#: the artefact format written by fit/flow.py and read here
ARTEFACT_VERSION = 1
#: standardised embeddings are clamped to this many training standard deviations (see the module docstring)
CLAMP = 1e4
_LOG_2PI = math.log(2.0 * math.pi)


class FlowBatchNorm(nn.Module):
    """Real-NVP batch normalisation as a bijection (Dinh et al. sec. 3.7): y = (x - mu) / sqrt(var + eps)
    * exp(log_gamma) + beta over the channel axis. In training mode mu and var are the batch's and update
    running averages; in eval mode the running averages make it a fixed affine map. Its log-determinant per
    pixel is sum_c (log_gamma_c - log(var_c + eps) / 2), the same for every pixel."""

    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, dim: int, momentum: float = 0.05, eps: float = 1e-4) -> None:
        super().__init__()
        self.momentum = momentum
        self.eps = eps
        self.log_gamma = nn.Parameter(torch.zeros(1, dim, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, dim, 1, 1))
        self.register_buffer('running_mean', torch.zeros(1, dim, 1, 1))
        self.register_buffer('running_var', torch.ones(1, dim, 1, 1))

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.training:
            return self.running_mean, self.running_var
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        var = x.var(dim=(0, 2, 3), keepdim=True, unbiased=False)
        with torch.no_grad():
            self.running_mean.lerp_(mean.detach(), self.momentum)
            self.running_var.lerp_(var.detach(), self.momentum)
        return mean, var

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, var = self._stats(x)
        inv = torch.rsqrt(var + self.eps) * self.log_gamma.exp()
        y = (x - mean) * inv + self.beta
        return y, inv.log().sum()

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        inv = torch.rsqrt(self.running_var + self.eps) * self.log_gamma.exp()
        return (y - self.beta) / inv + self.running_mean


class AffineCoupling(nn.Module):
    """y_a = x_a; y_b = x_b * exp(s(x_a)) + t(x_a), with s, t from a small 1x1-conv net of x_a.

    The last conv starts at zero, so s = t = 0 and the layer is the identity at initialisation; the
    log-determinant of a pixel is the sum of its s over the transformed channels."""

    def __init__(self, dim: int, hidden: int, scale_bound: float = 2.0) -> None:
        super().__init__()
        if dim < 2:
            raise ValueError(f'a coupling layer needs at least 2 channels, got {dim}')
        self.d_a = dim // 2
        self.d_b = dim - self.d_a
        self.scale_bound = float(scale_bound)
        last = nn.Conv2d(hidden, 2 * self.d_b, 1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(cast(torch.Tensor, last.bias))  # a Conv2d with bias=True has one
        self.net = nn.Sequential(
            nn.Conv2d(self.d_a, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, hidden, 1), nn.ReLU(), last
        )

    def _scale_shift(self, x_a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        st = self.net(x_a)
        raw_s, t = st[:, : self.d_b], st[:, self.d_b :]
        b = self.scale_bound
        return b * torch.tanh(raw_s / b), t

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_a, x_b = x[:, : self.d_a], x[:, self.d_a :]
        s, t = self._scale_shift(x_a)
        y = torch.cat((x_a, x_b * s.exp() + t), dim=1)
        return y, s.sum(dim=1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        y_a, y_b = y[:, : self.d_a], y[:, self.d_a :]
        s, t = self._scale_shift(y_a)
        return torch.cat((y_a, (y_b - t) * torch.exp(-s)), dim=1)


class RealNVP(nn.Module):
    """z B x D x h x w -> (eta, log|det| B x h x w): standardise, then `layers` x (coupling, batch norm,
    permutation). The permutations are drawn once from `seed` and kept as buffers (they travel in the
    state dict, so a loaded flow is the fitted one)."""

    shift: torch.Tensor
    inv_std: torch.Tensor

    def __init__(self, dim: int, layers: int = 8, hidden: int = 64, scale_bound: float = 2.0, seed: int = 0) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f'a flow needs at least 1 coupling layer, got {layers}')
        self.dim = dim
        self.config = {'dim': dim, 'layers': layers, 'hidden': hidden, 'scale_bound': float(scale_bound)}
        self.register_buffer('shift', torch.zeros(1, dim, 1, 1))
        self.register_buffer('inv_std', torch.ones(1, dim, 1, 1))
        self.couplings = nn.ModuleList(AffineCoupling(dim, hidden, scale_bound) for _ in range(layers))
        self.norms = nn.ModuleList(FlowBatchNorm(dim) for _ in range(layers))
        g = torch.Generator().manual_seed(seed)
        for i in range(layers):
            self.register_buffer(f'perm{i}', torch.randperm(dim, generator=g))

    def _perm(self, i: int) -> torch.Tensor:
        return getattr(self, f'perm{i}')  # type: ignore[no-any-return]

    def set_standardisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """The fixed first map: (z - mean) / std per channel, from the training embeddings."""
        self.shift.copy_(mean.reshape(1, -1, 1, 1))
        self.inv_std.copy_(std.clamp(min=1e-6).reciprocal().reshape(1, -1, 1, 1))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = ((z - self.shift) * self.inv_std).clamp(-CLAMP, CLAMP)
        logdet = self.inv_std.log().sum()
        for i, (coupling, norm) in enumerate(zip(self.couplings, self.norms, strict=True)):
            x, ld = coupling(x)
            logdet = logdet + ld
            x, ld = norm(x)
            logdet = logdet + ld
            x = x.index_select(1, self._perm(i))
        return x, logdet  # B x h x w: every coupling adds its per-pixel term

    def inverse(self, eta: torch.Tensor) -> torch.Tensor:
        """eta -> z (eval mode: batch norms use their running statistics)."""
        x = eta
        for i in reversed(range(len(self.couplings))):
            x = x.index_select(1, torch.argsort(self._perm(i)))
            x = cast(FlowBatchNorm, self.norms[i]).inverse(x)
            x = cast(AffineCoupling, self.couplings[i]).inverse(x)
        return x / self.inv_std + self.shift

    def nll(self, z: torch.Tensor) -> torch.Tensor:
        """-log p(z) per pixel, B x h x w, in nats (eq. 7 negated)."""
        eta, logdet = self(z)
        return 0.5 * (eta * eta).sum(dim=1) + 0.5 * self.dim * _LOG_2PI - logdet


def flow_artefact(flows: dict[str, RealNVP], stats: dict[str, dict[str, float]]) -> dict[str, Any]:
    """What flow.pt holds: per tap the flow's config and state dict plus its training NLL mean and std.
    Only tensors, numbers and strings, so it loads with torch.load(weights_only=True)."""
    return {
        'version': ARTEFACT_VERSION,
        'taps': {
            name: {
                'config': dict(flow.config),
                'state_dict': {k: v.detach().cpu().clone() for k, v in flow.state_dict().items()},
                'nll_mean': float(stats[name]['nll_mean']),
                'nll_std': float(stats[name]['nll_std']),
            }
            for name, flow in flows.items()
        },
    }


def load_flows(path: Any, data: Any) -> dict[str, tuple[RealNVP, float, float]]:
    """flow.pt's contents -> {tap: (flow in eval mode, nll_mean, nll_std)}; a malformed file names itself."""
    if not isinstance(data, dict) or data.get('version') != ARTEFACT_VERSION or not isinstance(data.get('taps'), dict):
        raise CheckpointError(
            f'{path}: not a flow artefact (version {ARTEFACT_VERSION}) written by `anomaly-seg fit flow`'
        )
    out: dict[str, tuple[RealNVP, float, float]] = {}
    for name, entry in data['taps'].items():
        try:
            cfg = entry['config']
            flow = RealNVP(int(cfg['dim']), int(cfg['layers']), int(cfg['hidden']), float(cfg['scale_bound']))
            flow.load_state_dict(entry['state_dict'], strict=True)
            mean, std = float(entry['nll_mean']), float(entry['nll_std'])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise CheckpointError(f'{path}: tap {name!r}: bad flow entry: {type(e).__name__}: {e}') from None
        if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
            raise CheckpointError(f'{path}: tap {name!r}: training NLL mean/std must be finite, got {mean}, {std}')
        out[str(name)] = (flow.eval(), mean, std)
    if not out:
        raise CheckpointError(f'{path}: the flow artefact holds no taps')
    return out


def _static_hw(x: torch.Tensor) -> tuple[int, int]:
    """h x w as ints: a graph is traced for one camera size, so the tracer's warning does not apply."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        return int(x.shape[-2]), int(x.shape[-1])


class FlowDensity(Scorer):
    """Normalised NLL of the tap embeddings under their fitted flows (eq. 8), min over taps; unbounded."""

    name = 'flow'
    params = {'taps': None, 'combine': 'min', 'normalise': 'mean'}
    artefact_names = ('flow',)
    score_range = (-math.inf, math.inf)

    def __init__(
        self,
        num_classes: int,
        flows: dict[str, tuple[RealNVP, float, float]],
        normalise: str = 'mean',
        void_channel: bool = False,
    ) -> None:
        super().__init__(num_classes, void_channel)
        self.tap_names = tuple(flows)
        self.needs = (LOGITS, *self.tap_names)
        self.flows = nn.ModuleDict({n: f for n, (f, _, _) in flows.items()})
        self.offsets = [m for _, m, _ in flows.values()]
        self.scales = [1.0 / s if normalise == 'std' else 1.0 for _, _, s in flows.values()]

    @classmethod
    def from_config(cls, model: ModelConfig, cfg: ScorerConfig) -> Scorer:
        cls.check_config(cfg)
        where = f'scorer {cfg.name!r} (model.yaml scorers.{cfg.name}.params)'
        combine = cfg.params.get('combine', cls.params['combine'])
        if combine != 'min':
            raise ConfigError(f"{where}: combine {combine!r} is not supported; use 'min' (Fishyscapes sec. 4.2 (i))")
        normalise = cfg.params.get('normalise', cls.params['normalise'])
        if normalise not in ('mean', 'std'):
            raise ConfigError(f"{where}: normalise {normalise!r} must be 'mean' (eq. 8) or 'std'")
        path = cfg.artefacts['flow']
        fitted = load_flows(path, cls.load_artefact(path))
        taps = cfg.params.get('taps', cls.params['taps'])
        if taps is None:
            taps = list(fitted)
        if not isinstance(taps, list) or not taps or not all(isinstance(t, str) for t in taps):
            raise ConfigError(f'{where}: taps must be a non-empty list of tap names, got {taps!r}')
        missing = [t for t in taps if t not in fitted]
        if missing:
            raise ConfigError(
                f'{where}: no flow fitted for tap(s) {", ".join(missing)} in {path} (it holds: {", ".join(fitted)}); '
                'run `anomaly-seg fit flow` with those taps'
            )
        undeclared = [t for t in taps if t not in model.taps]
        if undeclared:
            raise ConfigError(
                f'{where}: tap(s) {", ".join(undeclared)} are not declared under `taps:` in '
                f'{model.directory / "model.yaml"} (its taps: {", ".join(sorted(model.taps)) or "none"})'
            )
        return cls(model.num_classes, {t: fitted[t] for t in taps}, normalise, model.void_channel)

    def forward(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        out_hw = _static_hw(outputs[LOGITS])
        score: torch.Tensor | None = None
        for name, offset, scale in zip(self.tap_names, self.offsets, self.scales, strict=True):
            flow = cast(RealNVP, self.flows[name])
            z = outputs[name].float()
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', torch.jit.TracerWarning)
                channels = int(z.shape[1])
            if z.ndim != 4 or channels != flow.dim:
                raise ConfigError(
                    f'scorer flow: tap {name!r} has shape {tuple(z.shape)}, but its flow was fitted on '
                    f'{flow.dim} channels (B x {flow.dim} x h x w); refit with `anomaly-seg fit flow`'
                )
            s = (flow.nll(z) - offset) * scale
            if _static_hw(s) != out_hw:
                s = F.interpolate(s[:, None], size=out_hw, mode='bilinear', align_corners=False)[:, 0]
            score = s if score is None else torch.minimum(score, s)
        if score is None:  # pragma: no cover - from_config refuses an empty tap list
            raise ConfigError('scorer flow: no taps')
        return score
