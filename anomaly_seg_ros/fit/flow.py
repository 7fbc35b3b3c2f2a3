"""`anomaly-seg fit flow`: fit the Real-NVP embedding density of the `flow` scorer (scoring/flow.py).

Fishyscapes (Blum et al.) sec. 4.2 and its appendix: embeddings of in-distribution frames at a layer before
a ReLU, a flow trained by mean NLL (eq. 6) with Adam, a held-out set of embeddings for a validation NLL
(the paper's way to choose flow hyper-parameters without outlier data), and the training set's mean NLL
stored for eq. 8. Sized down for a CPU: the paper stacks 32 steps and trains 200k iterations at lr 1e-4 on
22M embeddings; the defaults here (8 steps, 3000 iterations at 1e-3 with a cosine decay, 512 random
pixels per frame) fit in minutes on two cores and converge on the default model.

How the embeddings are computed: through the project's own inference path, so the flow sees exactly what
the scorer will see on the vehicle: the frame is resized and normalised by the graph's FrameToInput, and
the net (a project net with forward hooks, or an imported ONNX net run by ONNX Runtime with the taps as
extra outputs) comes from backends.GraphSource with the taps asked for added to the model's own.

Which pixels: in-distribution only. Where a frame has an anomaly mask, a feature cell that covers any
anomaly pixel (anomaly == 1) is left out; where it has labels, a cell that is mostly void (255) is left
out. Frames without ground truth (a bag of the user's drives) are taken whole. The validation frames are
the last ones of the sequence, not every k-th: neighbouring frames of a drive are near duplicates, and an
interleaved split would measure memorisation.

Checkpoints (`--checkpoint-every`) go to flow.ckpt.pt beside the model and are removed once flow.pt is
written; `--resume` continues one, after checking it was made from the same taps, frames and options
(the pixel sample is drawn from `--seed`, so it is the same sample again).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..backends import GraphSource
from ..checkpoint import load_torch_file
from ..config import RESERVED_OUTPUTS, ModelConfig, load_model_config
from ..data.sample import Sample
from ..errors import AnomalySegError, CheckpointError, ConfigError
from ..graph import FrameToInput
from ..nets.taps import tap_candidates
from ..scoring import build_scorer
from ..scoring.flow import RealNVP, flow_artefact
from .base import FitResult, save_artefact

__all__ = ['HELP', 'add_arguments', 'fit', 'parse_taps']

HELP = 'Real-NVP density of feature-tap embeddings (Fishyscapes sec. 4.2): writes flow.pt for scorer `flow`'

ARTEFACT = 'flow.pt'
CHECKPOINT = 'flow.ckpt.pt'
CHECKPOINT_VERSION = 1
#: a feature cell is void (left out) when more than this fraction of its label pixels is 255
VOID_FRACTION = 0.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group('flow')
    g.add_argument(
        '--tap',
        action='append',
        default=[],
        metavar='NAME=PATH',
        help='a feature tap to fit a flow on (repeatable): PATH is a module path for project nets, taken before '
        'its ReLU (e.g. head_bn=head.0.1), or a tensor name inside an imported ONNX net; added to model.yaml '
        '`taps:`. Default: the taps the model already declares',
    )
    g.add_argument('--pixels-per-frame', type=int, default=512, help='random in-distribution feature pixels per frame')
    g.add_argument('--steps', type=int, default=3000, help='training iterations')
    g.add_argument('--batch', type=int, default=2048, help='embeddings per iteration and tap')
    g.add_argument('--lr', type=float, default=1e-3, help='Adam learning rate, cosine-decayed to a tenth')
    g.add_argument('--coupling-layers', type=int, default=8, help='flow steps: coupling + batch norm + permutation')
    g.add_argument('--hidden', type=int, default=64, help="channels of the coupling layers' scale/shift nets")
    g.add_argument(
        '--val-fraction',
        type=float,
        default=0.1,
        help='fraction of the frames (the last ones) held out for the validation NLL; 0: none',
    )
    g.add_argument(
        '--normalise',
        choices=('mean', 'std'),
        default='mean',
        help="score normalisation: 'mean' = NLL minus the training mean NLL (Fishyscapes eq. 8), 'std' = also "
        'divided by the training NLL standard deviation',
    )
    try:
        g.add_argument('--seed', type=int, default=0, help='seed of the pixel sample, permutations and batches')
    except argparse.ArgumentError:  # the frame sources' --seed (of --synthetic) is already there: one seed for both
        for action in parser._actions:  # say so in its --help (argparse has no public lookup of an option)
            if '--seed' in action.option_strings:
                action.help = f'{action.help}; fit flow: also the seed of the pixel sample and the flow (default 0)'
    g.add_argument('--threads', type=int, default=0, help="torch CPU threads (0: torch's default)")
    g.add_argument(
        '--checkpoint-every',
        type=int,
        default=500,
        help=f'write {CHECKPOINT} beside the model every N iterations; 0: never',
    )
    g.add_argument('--resume', action='store_true', help=f'continue from {CHECKPOINT} beside the model')


def parse_taps(specs: Sequence[str], model: ModelConfig) -> dict[str, str]:
    """--tap NAME=PATH values -> {name: path}; a name the model already maps elsewhere fails naming both."""
    taps: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition('=')
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise ConfigError(f'fit flow: --tap {spec!r}: expected NAME=PATH (e.g. head_bn=head.0.1)')
        if not name.isidentifier() or name in RESERVED_OUTPUTS:
            raise ConfigError(
                f'fit flow: --tap {spec!r}: the name must be an identifier other than {", ".join(RESERVED_OUTPUTS)}'
            )
        old = model.taps.get(name)
        if old is not None and old != path:
            raise ConfigError(
                f'fit flow: --tap {spec!r}: model {model.name!r} already maps tap {name!r} to {old!r}; '
                'choose another name or use that path'
            )
        if taps.get(name, path) != path:
            raise ConfigError(f'fit flow: --tap {name!r} given twice with different paths')
        taps[name] = path
    return taps


def _check_options(args: argparse.Namespace) -> None:
    positive = ('pixels_per_frame', 'steps', 'batch', 'coupling_layers', 'hidden')
    for key in positive:
        if int(getattr(args, key)) < 1:
            raise ConfigError(f'fit flow: --{key.replace("_", "-")} must be >= 1, got {getattr(args, key)}')
    if not (args.lr > 0 and math.isfinite(args.lr)):
        raise ConfigError(f'fit flow: --lr must be a positive number, got {args.lr}')
    if not 0.0 <= args.val_fraction < 1.0:
        raise ConfigError(f'fit flow: --val-fraction must be in [0, 1), got {args.val_fraction}')
    if args.threads < 0 or args.checkpoint_every < 0:
        raise ConfigError('fit flow: --threads and --checkpoint-every must be >= 0')


def _check_not_relu(model: ModelConfig, source: GraphSource, taps: dict[str, str]) -> None:
    """The paper found training unstable after a ReLU (dimensions stuck at 0): refuse a tap on a ReLU module."""
    if model.format != 'torch':
        return
    named = source.named_net()
    modules = dict(getattr(named, 'net', named).named_modules())
    for name, path in taps.items():
        if isinstance(modules.get(path), nn.ReLU):
            raise ConfigError(
                f'fit flow: tap {name!r}: {path!r} is a ReLU; tap the module before it (a BatchNorm or conv), '
                f'Fishyscapes appendix "Layer selection"; module paths look like: {tap_candidates(named)}'
            )


def _cell_mask(sample: Sample, hw: tuple[int, int]) -> np.ndarray | None:
    """h x w bool, True where a feature cell may be used as in-distribution; None when the frame has no truth."""
    h, w = hw
    keep = np.ones((h, w), bool)
    if sample.anomaly is None and sample.labels is None:
        return None
    if sample.anomaly is not None:
        bad = cv2.resize((sample.anomaly == 1).astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
        keep &= bad <= 0.0
    if sample.labels is not None:
        void = cv2.resize((sample.labels == 255).astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
        keep &= void <= VOID_FRACTION
    return keep


def _embeddings(
    model: ModelConfig,
    source: GraphSource,
    frames: Sequence[Sample],
    taps: Sequence[str],
    per_frame: int,
    seed: int,
    progress: bool,
) -> tuple[dict[str, list[np.ndarray]], dict[str, int]]:
    """Per tap and frame, up to `per_frame` sampled in-distribution embeddings (k x D float32)."""
    net = source.named_net()
    pre: dict[tuple[int, int], FrameToInput] = {}
    out: dict[str, list[np.ndarray]] = {t: [] for t in taps}
    dims: dict[str, int] = {}
    for i, sample in enumerate(tqdm(frames, desc='fit flow: embeddings', unit='frame', disable=not progress)):
        img = sample.image
        if not (isinstance(img, np.ndarray) and img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8):
            raise ConfigError(f'fit flow: frame {sample.name or i}: expected an HxWx3 uint8 RGB image')
        hw = (int(img.shape[0]), int(img.shape[1]))
        if hw not in pre:
            pre[hw] = FrameToInput(model, hw)
        with torch.inference_mode():
            outputs = net(pre[hw](torch.from_numpy(np.ascontiguousarray(img))[None]))
        rng = np.random.default_rng([seed, i])
        for t in taps:
            z = outputs[t]
            if z.ndim != 4 or z.shape[0] != 1:
                raise ConfigError(f'fit flow: tap {t!r} gives shape {tuple(z.shape)}; a flow needs a 1 x D x h x w map')
            d, h, w = (int(v) for v in z.shape[1:])
            if d < 2:
                raise ConfigError(f'fit flow: tap {t!r} has {d} channel; a flow needs at least 2')
            dims[t] = d
            rows = z[0].float().reshape(d, h * w).t().numpy()
            mask = _cell_mask(sample, (h, w))
            idx = np.flatnonzero(mask.reshape(-1)) if mask is not None else np.arange(h * w)
            if idx.size > per_frame:
                idx = rng.choice(idx, per_frame, replace=False)
            out[t].append(np.ascontiguousarray(rows[idx], dtype=np.float32))
    return out, dims


def _lr(base: float, step: int, steps: int) -> float:
    """Cosine decay from `base` to base / 10: stateless, so a resumed run follows the same schedule."""
    return base * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * step / steps)))


def _fingerprint(args: argparse.Namespace, taps: dict[str, str], frames: Sequence[Sample], dims: dict[str, int]) -> str:
    names = [s.name for s in frames]
    return repr(
        (
            sorted(taps.items()),
            sorted(dims.items()),
            len(frames),
            names[:3],
            names[-3:],
            args.pixels_per_frame,
            args.batch,
            args.steps,
            args.lr,
            args.coupling_layers,
            args.hidden,
            args.val_fraction,
            args.seed,
        )
    )


def _as_map(rows: torch.Tensor) -> torch.Tensor:
    """N x D embeddings as a 1 x D x N x 1 map: the flow's 1x1 convs then run as one matmul over N pixels,
    about 15 % faster than N separate 1 x 1 maps (N x D x 1 x 1); batch norm averages over N either way."""
    return rows.t()[None, :, :, None]


@torch.no_grad()
def _nll_stats(flow: RealNVP, x: torch.Tensor, chunk: int = 65536) -> tuple[float, float]:
    flow.eval()
    nll = torch.cat([flow.nll(_as_map(x[i : i + chunk])).reshape(-1) for i in range(0, len(x), chunk)])
    return float(nll.double().mean()), float(nll.double().std()) if nll.numel() > 1 else 0.0


def fit(model_dir: Path, frames: Sequence[Sample], args: argparse.Namespace) -> FitResult:
    """Fit one flow per tap on `frames` and write flow.pt into `model_dir`; returns what model.yaml records."""
    if getattr(args, 'seed', None) is None:
        # `fit flow` shares the frame sources' --seed, whose default is None (it means "the world's default" to
        # --synthetic); here it seeds the pixel sample and the flow's initialisation, so None is 0
        args = argparse.Namespace(**{**vars(args), 'seed': 0})
    _check_options(args)
    model = load_model_config(model_dir)
    progress = bool(getattr(args, 'progress', True))
    new_taps = parse_taps(args.tap, model)
    taps = new_taps or dict(model.taps)
    if not taps:
        raise ConfigError(
            f'fit flow: model {model.name!r} declares no feature taps; pass --tap NAME=PATH (a module path before '
            'a ReLU for project nets, a tensor name for imported ONNX nets)'
        )
    if len(frames) < 1:
        raise AnomalySegError('fit flow: no frames to fit on')
    n_val = min(max(1, round(args.val_fraction * len(frames))), len(frames) - 1) if args.val_fraction > 0 else 0
    fit_model = dataclasses.replace(model, taps={**model.taps, **taps})
    previous_threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        source = GraphSource(fit_model, build_scorer('entropy', fit_model))
        _check_not_relu(fit_model, source, taps)
        per_frame, dims = _embeddings(fit_model, source, frames, list(taps), args.pixels_per_frame, args.seed, progress)
        return _train(model_dir, model, frames, taps, per_frame, dims, n_val, args, progress)
    finally:
        torch.set_num_threads(previous_threads)


def _train(
    model_dir: Path,
    model: ModelConfig,
    frames: Sequence[Sample],
    taps: dict[str, str],
    per_frame: dict[str, list[np.ndarray]],
    dims: dict[str, int],
    n_val: int,
    args: argparse.Namespace,
    progress: bool,
) -> FitResult:
    n_train = len(frames) - n_val
    train = {t: torch.from_numpy(np.concatenate(per_frame[t][:n_train])) for t in taps}
    val: dict[str, torch.Tensor | None] = {
        t: torch.from_numpy(np.concatenate(per_frame[t][n_train:])) if n_val else None for t in taps
    }
    for t, x in train.items():
        if len(x) < 2 * dims[t]:
            raise AnomalySegError(
                f'fit flow: tap {t!r}: only {len(x)} in-distribution embeddings from {n_train} training frames '
                f'(a {dims[t]}-dim flow needs far more); give more frames or a larger --pixels-per-frame'
            )
    flows: dict[str, RealNVP] = {}
    with torch.random.fork_rng(devices=[]):  # the layers' initial weights follow --seed, the caller's RNG is kept
        torch.manual_seed(args.seed)
        for k, t in enumerate(taps):
            flow = RealNVP(dims[t], args.coupling_layers, args.hidden, seed=args.seed + k)
            flow.set_standardisation(train[t].mean(dim=0), train[t].std(dim=0))
            flows[t] = flow.train()
    params = [p for f in flows.values() for p in f.parameters()]
    opt = torch.optim.Adam(params, lr=args.lr)
    ckpt_path = model_dir / CHECKPOINT
    fingerprint = _fingerprint(args, taps, frames, dims)
    start = 0
    running = {t: math.nan for t in taps}
    if args.resume:
        start, running = _resume(ckpt_path, fingerprint, flows, opt)
    bar = tqdm(range(start, args.steps), initial=start, total=args.steps, desc='fit flow', disable=not progress)
    for step in bar:
        gen = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        for group in opt.param_groups:
            group['lr'] = _lr(args.lr, step, args.steps)
        losses = {}
        for t, flow in flows.items():
            idx = torch.randint(len(train[t]), (args.batch,), generator=gen)
            losses[t] = flow.nll(_as_map(train[t][idx])).mean()
        loss = torch.stack(list(losses.values())).sum()
        if not torch.isfinite(loss):
            raise AnomalySegError(
                f'fit flow: the NLL became non-finite at iteration {step} '
                f'({", ".join(f"{t}: {float(v)}" for t, v in losses.items())}); try a smaller --lr'
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 100.0)
        opt.step()
        for t, v in losses.items():
            nll = float(v.detach())
            running[t] = nll if math.isnan(running[t]) else 0.98 * running[t] + 0.02 * nll
        bar.set_postfix({f'nll_{t}': f'{v:.2f}' for t, v in running.items()})
        done = step + 1
        if args.checkpoint_every and done % args.checkpoint_every == 0 and done < args.steps:
            state = {
                'version': CHECKPOINT_VERSION,
                'fingerprint': fingerprint,
                'step': done,
                'running': dict(running),
                'flows': {t: f.state_dict() for t, f in flows.items()},
                'optimizer': opt.state_dict(),
            }
            save_artefact(ckpt_path, state)
    bar.close()
    stats: dict[str, dict[str, float]] = {}
    summary: dict[str, Any] = {'frames_train': n_train, 'frames_val': n_val, 'steps': args.steps, 'taps': {}}
    for t, flow in flows.items():
        mean, std = _nll_stats(flow, train[t])
        stats[t] = {'nll_mean': mean, 'nll_std': std}
        entry: dict[str, Any] = {
            'dim': dims[t],
            'embeddings_train': len(train[t]),
            'train_nll': mean,
            'train_nll_std': std,
        }
        held = val[t]
        if held is not None and len(held):
            entry['embeddings_val'] = len(held)
            entry['val_nll'] = _nll_stats(flow, held)[0]
        summary['taps'][t] = entry
    save_artefact(model_dir / ARTEFACT, flow_artefact(flows, stats))
    ckpt_path.unlink(missing_ok=True)
    summary['artefact_bytes'] = (model_dir / ARTEFACT).stat().st_size
    return FitResult(
        scorer='flow',
        artefacts={'flow': ARTEFACT},
        params={'taps': list(taps), 'combine': 'min', 'normalise': args.normalise},
        taps=dict(taps),
        summary=summary,
    )


def _resume(
    path: Path, fingerprint: str, flows: dict[str, RealNVP], opt: torch.optim.Optimizer
) -> tuple[int, dict[str, float]]:
    if not path.is_file():
        raise ConfigError(f'fit flow: --resume: no checkpoint {path} (one is written every --checkpoint-every steps)')
    state = load_torch_file(path, 'the flow checkpoint')
    if not isinstance(state, dict) or state.get('version') != CHECKPOINT_VERSION:
        raise CheckpointError(f'{path}: not a flow checkpoint (version {CHECKPOINT_VERSION})')
    if state.get('fingerprint') != fingerprint:
        raise ConfigError(
            f'fit flow: --resume: {path} was made with other taps, frames or options; rerun with the same ones, '
            'or without --resume to start over'
        )
    try:
        for t, f in flows.items():
            f.load_state_dict(state['flows'][t], strict=True)
        opt.load_state_dict(state['optimizer'])
    except (KeyError, ValueError, RuntimeError) as e:
        raise CheckpointError(f'{path}: bad flow checkpoint: {type(e).__name__}: {e}') from None
    return int(state['step']), {t: float(v) for t, v in state['running'].items()}
