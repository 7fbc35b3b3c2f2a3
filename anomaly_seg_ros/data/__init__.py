"""Data sources, all yielding `Sample`: the synthetic driving world, dataset readers, Fishyscapes-style blending."""

from .readers import DATASET_FORMATS, open_dataset
from .sample import Sample

__all__ = ['DATASET_FORMATS', 'Sample', 'open_dataset']
