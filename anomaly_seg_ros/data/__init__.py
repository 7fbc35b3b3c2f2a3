"""Data sources, all yielding `Sample`: the synthetic driving world now; dataset readers and blending later."""

from .sample import Sample

__all__ = ['Sample']
