"""Load weights safely and strictly: weights_only=True, and a mismatch lists missing and unexpected keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from .config import InputSpec
from .errors import CheckpointError

__all__ = ['load_state_dict_strict', 'load_torch_file', 'save_state_dict', 'write_model_folder']


def load_torch_file(path: Path, what: str) -> Any:
    """torch.load with weights_only=True onto the CPU; any failure is a CheckpointError
    '<path>: cannot load <what>: <error>' (torch raises pickle, zip and runtime errors alike for a bad file)."""
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # noqa: BLE001 - see the docstring
        raise CheckpointError(f'{path}: cannot load {what}: {type(e).__name__}: {e}') from None


def load_state_dict_strict(net: nn.Module, path: Path) -> None:
    if not path.is_file():
        raise CheckpointError(f'{path}: weights file not found')
    state = load_torch_file(path, 'weights')
    if isinstance(state, dict) and 'state_dict' in state and isinstance(state['state_dict'], dict):
        state = state['state_dict']  # training checkpoints wrap the weights with optimiser state
    if not isinstance(state, dict):
        raise CheckpointError(f'{path}: expected a state dict, got {type(state).__name__}')
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f'{path}: weights do not fit {type(net).__name__}: '
            f'missing keys {_short(missing)}; unexpected keys {_short(unexpected)}'
        )
    wrong = [f'{k} {tuple(state[k].shape)} != {tuple(v.shape)}' for k, v in own.items() if state[k].shape != v.shape]
    if wrong:
        raise CheckpointError(f'{path}: shape mismatch: {_short(wrong)}')
    net.load_state_dict(state, strict=True)


def save_state_dict(net: nn.Module, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, path)


def _short(items: list[str], n: int = 8) -> str:
    if not items:
        return '[]'
    more = f' ... (+{len(items) - n} more)' if len(items) > n else ''
    return '[' + ', '.join(items[:n]) + more + ']'


def write_model_folder(
    out: Path,
    net: nn.Module,
    architecture: str,
    arch_args: dict[str, Any],
    spec: InputSpec,
    scorer: str,
    description: str,
) -> None:
    """The model folder is the unit users pass around: weights plus the contract to run them (model.yaml)."""
    out.mkdir(parents=True, exist_ok=True)
    save_state_dict(net, out / 'model.pt')
    model_yaml = {
        'name': out.name,
        'description': description,
        'architecture': architecture,
        'arch_args': dict(arch_args),
        'format': 'torch',
        'weights': 'model.pt',
        'classes': 'cityscapes',
        'input': {
            'height': spec.height,
            'width': spec.width,
            'channel_order': spec.channel_order,
            'scale': spec.scale,
            'mean': list(spec.mean),
            'std': list(spec.std),
        },
        'scorer': scorer,
    }
    with open(out / 'model.yaml', 'w', encoding='utf-8') as f:
        yaml.safe_dump(model_yaml, f, sort_keys=False)
