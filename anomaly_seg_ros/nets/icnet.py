"""A small ICNet-style segmentation net (Zhao et al., ICNet, ECCV 2018), sized for CPU training here.

Three branches as in ICNet: a light full-resolution branch for detail, a 1/2-resolution stem and a
1/4-resolution context branch with dilated residual blocks and pyramid pooling, joined by cascade
feature fusion (CFF) units. Everything exports to ONNX opset 17 (no unfold). ONNX has no adaptive
pooling: the exporter turns it into a fixed AveragePool, which needs the pooled map (1/32 of the input)
to divide by every bin; where a bin does not divide it, the same average is computed as two small matrix
products (`_adaptive_avg`), so any input size exports.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ['ICNetSmall']


def _cbr(cin: int, cout: int, stride: int = 1, dilation: int = 1, k: int = 3) -> nn.Sequential:
    pad = dilation * (k // 2)
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _Residual(nn.Module):
    def __init__(self, ch: int, dilation: int) -> None:
        super().__init__()
        self.a = _cbr(ch, ch, dilation=dilation)
        self.b = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, dilation, dilation=dilation, bias=False), nn.BatchNorm2d(ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.b(self.a(x)))


class _PyramidPool(nn.Module):
    """PSP-style context: averages over 1x1, 2x2 and 4x4 grids, upsampled and summed (as ICNet sums).

    ICNet uses bins (1, 2, 3, 6); 3 and 6 do not divide the 1/32 maps of 2^k-sized inputs, which blocks
    ONNX export, so this small net uses (1, 2, 4).
    """

    def __init__(self, bins: tuple[int, ...] = (1, 2, 4)) -> None:
        super().__init__()
        self.bins = bins

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        out = x
        for b in self.bins:
            pooled = x.mean(dim=(2, 3), keepdim=True) if b == 1 else _adaptive_avg(x, b)
            out = out + F.interpolate(pooled, size=(h, w), mode='bilinear', align_corners=False)
        return out


def _bin_matrix(n: int, b: int, device: torch.device) -> torch.Tensor:
    """b x n averaging weights of adaptive pooling: bin i covers [floor(i n / b), ceil((i + 1) n / b))."""
    m = torch.zeros(b, n, device=device)
    for i in range(b):
        lo, hi = (i * n) // b, -((-(i + 1) * n) // b)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


def _adaptive_avg(x: torch.Tensor, b: int) -> torch.Tensor:
    """F.adaptive_avg_pool2d(x, (b, b)), exportable when b does not divide the map (as two matrix products)."""
    h, w = int(x.shape[2]), int(x.shape[3])
    if h % b == 0 and w % b == 0:
        return F.adaptive_avg_pool2d(x, (b, b))
    return _bin_matrix(h, b, x.device).to(x.dtype) @ x @ _bin_matrix(w, b, x.device).to(x.dtype).T


class _CFF(nn.Module):
    """Cascade feature fusion: upsample the coarse input x2, dilated conv; project the fine input; add."""

    def __init__(self, c_low: int, c_high: int, cout: int, num_classes: int) -> None:
        super().__init__()
        self.low = nn.Sequential(nn.Conv2d(c_low, cout, 3, 1, 2, dilation=2, bias=False), nn.BatchNorm2d(cout))
        self.high = nn.Sequential(nn.Conv2d(c_high, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.aux = nn.Conv2d(c_low, num_classes, 1)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        up = F.interpolate(low, size=high.shape[2:], mode='bilinear', align_corners=False)
        return F.relu(self.low(up) + self.high(high)), self.aux(up)


class ICNetSmall(nn.Module):
    """forward(x: Bx3xHxW normalised) -> logits BxCxHxW at the input size.

    In training mode it returns (logits, aux_mid, aux_low) for ICNet's cascade label guidance loss;
    auxiliaries are at 1/8 and 1/16 of the input.
    """

    def __init__(self, num_classes: int = 19, width: int = 32) -> None:
        super().__init__()
        w = width
        self.num_classes = num_classes
        # Full-resolution branch: three stride-2 convs -> 1/8, kept shallow because it sees the most pixels.
        self.high = nn.Sequential(_cbr(3, w // 2, 2), _cbr(w // 2, w, 2), _cbr(w, 2 * w, 2))
        # 1/2-resolution stem -> 1/16 of the input (shared in spirit with ICNet's medium branch).
        self.stem = nn.Sequential(_cbr(3, w, 2), _cbr(w, w, 1), _cbr(w, 2 * w, 2), _cbr(2 * w, 2 * w, 2))
        # Context branch at 1/32 of the input with dilated residual blocks and pyramid pooling.
        self.context = nn.Sequential(
            _cbr(2 * w, 4 * w, 1),
            _Residual(4 * w, 1),
            _Residual(4 * w, 2),
            _Residual(4 * w, 4),
            _PyramidPool(),
            _cbr(4 * w, 4 * w, k=1),
        )
        self.cff_low = _CFF(4 * w, 2 * w, 3 * w, num_classes)
        self.cff_mid = _CFF(3 * w, 2 * w, 2 * w, num_classes)
        self.head = nn.Sequential(_cbr(2 * w, 2 * w), nn.Conv2d(2 * w, num_classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        size = x.shape[2:]
        f_high = self.high(x)  # 1/8
        half = F.interpolate(x, scale_factor=0.5, mode='bilinear', align_corners=False)
        f_mid = self.stem(half)  # 1/16
        quarter = F.interpolate(f_mid, scale_factor=0.5, mode='bilinear', align_corners=False)
        f_low = self.context(quarter)  # 1/32
        fused_mid, aux_low = self.cff_low(f_low, f_mid)  # 1/16
        fused_high, aux_mid = self.cff_mid(fused_mid, f_high)  # 1/8
        up = F.interpolate(fused_high, scale_factor=2.0, mode='bilinear', align_corners=False)  # 1/4
        logits = F.interpolate(self.head(up), size=size, mode='bilinear', align_corners=False)
        if self.training:
            return logits, aux_mid, aux_low
        return logits
