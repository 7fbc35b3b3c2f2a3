"""nn.Modules only: segmentation nets (and later flow, SPADE generator, dissimilarity net), feature taps."""

from .icnet import ICNetSmall
from .registry import NETS, build_net
from .taps import TappedNet, tap_candidates

__all__ = ['ICNetSmall', 'NETS', 'TappedNet', 'build_net', 'tap_candidates']
