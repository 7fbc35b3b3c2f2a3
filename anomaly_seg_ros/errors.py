"""Domain errors: one small type per domain, each raised with the path, key or index in its text."""

from __future__ import annotations

__all__ = [
    'AnomalySegError',
    'BackendError',
    'BagError',
    'CheckpointError',
    'CodecError',
    'ConfigError',
    'DatasetError',
]


class AnomalySegError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(AnomalySegError):
    """A config file, parameter or model.yaml is missing, unknown or has a bad value."""


class CheckpointError(AnomalySegError):
    """Weights cannot be loaded: missing file, wrong format, missing or unexpected keys."""


class BackendError(AnomalySegError):
    """An inference backend cannot be built or run."""


class NonFiniteOutputError(BackendError):
    """The pipeline produced NaN or inf scores: a broken model must never look like "no anomaly"."""


class CodecError(AnomalySegError):
    """An image message cannot be decoded: unsupported encoding, size/step mismatch, empty frame."""


class DatasetError(AnomalySegError):
    """A dataset file is missing or holds unexpected content."""


class BagError(AnomalySegError):
    """A rosbag cannot be read or written; the message index is in the text."""
