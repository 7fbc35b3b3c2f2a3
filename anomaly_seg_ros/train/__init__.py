"""Training and fitting entry points (segmentation now; entropy maximisation, flow, SynBoost, meta later)."""

from .seg import SegTrainConfig, train_segmentation

__all__ = ['SegTrainConfig', 'train_segmentation']
