"""Evaluation: streaming benchmark metrics (see .metrics) and offline runs of the Pipeline over datasets."""

from .metrics import *  # noqa: F403
from .metrics import __all__

__all__ = list(__all__)
