"""nn.Modules only: segmentation nets (and later flow, SPADE generator, dissimilarity net)."""

from .icnet import ICNetSmall
from .registry import NETS, build_net

__all__ = ['ICNetSmall', 'NETS', 'build_net']
