"""Named feature taps on a torch net: forward(x) -> {'logits': ..., TAP: ...}.

A tap names a module by its path (as in `net.named_modules()`, e.g. `cff_mid.low.1`); its output is taken
with a forward hook. The Fishyscapes density method takes features before their ReLU, so a tap should name
the module that feeds a ReLU (a BatchNorm or a conv); once any tap is declared, every nn.ReLU in the net is
made out-of-place, so no ReLU can overwrite a tapped tensor afterwards (the values are identical, the cost is
one extra buffer per ReLU). Hooks trace into ONNX like any other op, so taps become extra graph outputs.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError

__all__ = ['TappedNet', 'tap_candidates']


def tap_candidates(net: nn.Module, limit: int = 12) -> str:
    names = [n for n, m in net.named_modules() if n and not isinstance(m, nn.ReLU)]
    more = f' ... (+{len(names) - limit} more)' if len(names) > limit else ''
    return ', '.join(names[:limit]) + more


class TappedNet(nn.Module):
    """Wraps a net returning logits so it returns logits plus the tapped module outputs, by name."""

    def __init__(self, net: nn.Module, taps: dict[str, str] | None = None, model_name: str = '') -> None:
        super().__init__()
        self.net = net
        self.taps = dict(taps or {})
        modules = dict(net.named_modules())
        self._store: dict[str, torch.Tensor] = {}
        for name, path in self.taps.items():
            if path not in modules or not path:
                raise ConfigError(
                    f'model {model_name!r}: tap {name!r}: no module {path!r} in {type(net).__name__}; '
                    f'module paths look like: {tap_candidates(net)}'
                )
            modules[path].register_forward_hook(self._hook(name))
        if self.taps:
            for m in net.modules():
                if isinstance(m, nn.ReLU):
                    m.inplace = False

    def _hook(self, name: str):  # type: ignore[no-untyped-def]
        def hook(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
            if not isinstance(output, torch.Tensor):
                raise ConfigError(f'tap {name!r}: module {type(module).__name__} does not return one tensor')
            self._store[name] = output

        return hook

    @property
    def output_names(self) -> tuple[str, ...]:
        return ('logits', *self.taps)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self._store.clear()
        logits = self.net(x)
        if isinstance(logits, (tuple, list)):  # a net in training mode returns auxiliaries too
            logits = logits[0]
        out = {'logits': logits}
        for name in self.taps:
            if name not in self._store:
                raise ConfigError(f'tap {name!r}: module {self.taps[name]!r} did not run in forward()')
            out[name] = self._store[name]
        self._store.clear()
        return out
