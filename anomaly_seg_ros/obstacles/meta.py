"""The meta classifier: logistic regression telling true-positive obstacle segments from false positives.

Chan et al. (sec. 4, 7) fit a logistic regression on the per-segment metrics (features.py) with labels
TP = the segment overlaps a ground-truth OoD pixel (their eq. 6, IoU > 0), FP = it does not (eq. 7), and
drop the segments it calls FP. A linear model keeps the decision transparent: the coefficients of the
standardised features say which metric drives it.

Fitting uses scikit-learn (StandardScaler + LogisticRegression); the fitted model is stored as a small JSON
file (feature names, standardisation mean and scale, coefficients, intercept, the decision threshold on
p(TP), and the segment threshold t and min_size it was fitted with, since the features depend on both).
No pickle: the file is data, readable and diffable, and loading cannot run code. `predict_proba` is plain
numpy, so the node needs no scikit-learn at run time. `MetaClassifier.load` validates every key and names
what is wrong.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .features import FEATURE_NAMES

__all__ = ['FORMAT', 'VERSION', 'MetaClassifier', 'fit_logistic']

#: the `format` field of a meta.json
FORMAT = 'anomaly_seg_ros/meta-classifier'
VERSION = 1
_KEYS = {
    'format',
    'version',
    'feature_names',
    'mean',
    'scale',
    'coef',
    'intercept',
    'decision_threshold',
    'segment_threshold',
    'min_size',
    'scorer',
    'info',
}


@dataclass(frozen=True)
class MetaClassifier:
    """p(TP | features) = sigmoid(coef . (x - mean) / scale + intercept); a segment is kept when p >=
    decision_threshold. `segment_threshold` and `min_size` are the t and size filter the features were
    computed with; `scorer` the score map t applies to; `info` free-form fit figures (not read back)."""

    feature_names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    decision_threshold: float
    segment_threshold: float
    min_size: int
    scorer: str
    info: dict[str, Any] = field(default_factory=dict)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """(N,) p(TP) of an (N, F) feature matrix in `feature_names` order (numpy only)."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise ValueError(
                f'meta classifier: expected an (N, {len(self.feature_names)}) feature matrix, got shape {x.shape}'
            )
        z = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        # sigmoid without overflow warnings for large |z|
        e = np.exp(-np.abs(z))
        return np.where(z >= 0, 1.0, e) / (1.0 + e)

    def keep(self, features: np.ndarray) -> np.ndarray:
        """(N,) bool: the segments classified as true positives."""
        return self.predict_proba(features) >= self.decision_threshold

    def to_json(self) -> dict[str, Any]:
        return {
            'format': FORMAT,
            'version': VERSION,
            'scorer': self.scorer,
            'segment_threshold': self.segment_threshold,
            'min_size': self.min_size,
            'decision_threshold': self.decision_threshold,
            'feature_names': list(self.feature_names),
            'mean': [float(v) for v in self.mean],
            'scale': [float(v) for v in self.scale],
            'coef': [float(v) for v in self.coef],
            'intercept': float(self.intercept),
            'info': self.info,
        }

    def save(self, path: Path) -> Path:
        """Write atomically (temporary file + os.replace): a node starting meanwhile never reads half a file."""
        path = Path(path)
        tmp = path.with_name(f'.{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp')
        try:
            tmp.write_text(json.dumps(self.to_json(), indent=1) + '\n', encoding='utf-8')
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: Path) -> MetaClassifier:
        """Read and validate a meta.json; ConfigError naming the file and the key on any problem."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding='utf-8'))
        except FileNotFoundError:
            raise ConfigError(f'{path}: meta classifier file not found (fit it with `anomaly-seg fit meta`)') from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f'{path}: cannot read the meta classifier: {e}') from None
        except json.JSONDecodeError as e:
            raise ConfigError(f'{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})') from None
        return cls.from_json(data, str(path))

    @classmethod
    def from_json(cls, data: Any, source: str = 'meta classifier') -> MetaClassifier:
        def fail(key: str, why: str) -> ConfigError:
            return ConfigError(f'{source}: key {key!r}: {why}')

        if not isinstance(data, dict):
            raise ConfigError(f'{source}: expected a JSON object, got {type(data).__name__}')
        missing = sorted(_KEYS - {'info'} - set(data))
        if missing:
            raise ConfigError(f'{source}: missing key(s) {", ".join(missing)}')
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise ConfigError(f'{source}: unknown key(s) {", ".join(map(str, unknown))}')
        if data['format'] != FORMAT:
            raise fail('format', f'expected {FORMAT!r}, got {data["format"]!r}: not a meta classifier file')
        if data['version'] != VERSION:
            raise fail('version', f'this version reads version {VERSION}, got {data["version"]!r}')
        names = data['feature_names']
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise fail('feature_names', 'must be a list of feature names')
        if tuple(names) != FEATURE_NAMES:
            extra = sorted(set(names) - set(FEATURE_NAMES))
            lacking = sorted(set(FEATURE_NAMES) - set(names))
            raise fail(
                'feature_names',
                'differs from the features this version computes '
                f'(unknown: {", ".join(extra) or "none"}; missing: {", ".join(lacking) or "none"}; or another '
                'order); fit the classifier again with `anomaly-seg fit meta --overwrite`',
            )
        arrays = {}
        for key in ('mean', 'scale', 'coef'):
            value = data[key]
            if not isinstance(value, list) or len(value) != len(names) or not all(_is_finite_number(v) for v in value):
                raise fail(key, f'must be a list of {len(names)} finite numbers (one per feature)')
            arrays[key] = np.asarray(value, dtype=np.float64)
        if not (arrays['scale'] > 0).all():
            raise fail('scale', 'every standardisation scale must be > 0')
        for key in ('intercept', 'segment_threshold'):
            if not _is_finite_number(data[key]):
                raise fail(key, f'must be a finite number, got {data[key]!r}')
        p = data['decision_threshold']
        if not _is_finite_number(p) or not 0.0 <= p <= 1.0:
            raise fail('decision_threshold', f'must be a probability in [0, 1], got {p!r}')
        size = data['min_size']
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise fail('min_size', f'must be a whole number >= 1, got {size!r}')
        if not isinstance(data['scorer'], str) or not data['scorer']:
            raise fail('scorer', f'must be the name of the scorer the threshold applies to, got {data["scorer"]!r}')
        info = data.get('info', {})
        if not isinstance(info, dict):
            raise fail('info', 'must be an object')
        return cls(
            feature_names=tuple(names),
            mean=arrays['mean'],
            scale=arrays['scale'],
            coef=arrays['coef'],
            intercept=float(data['intercept']),
            decision_threshold=float(p),
            segment_threshold=float(data['segment_threshold']),
            min_size=int(size),
            scorer=data['scorer'],
            info=info,
        )


def _is_finite_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def fit_logistic(
    features: np.ndarray,
    is_tp: np.ndarray,
    *,
    segment_threshold: float,
    min_size: int,
    scorer: str,
    decision_threshold: float = 0.5,
    c: float = 1.0,
    info: dict[str, Any] | None = None,
) -> MetaClassifier:
    """Fit the logistic regression on standardised features (scikit-learn, L2, lbfgs). Needs both classes.

    A feature constant over the fitting set gets scale 1 (StandardScaler does the same), so it adds nothing
    and cannot divide by zero at run time."""
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 - only the fit needs scikit-learn
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(is_tp, dtype=bool)
    if x.ndim != 2 or x.shape[1] != len(FEATURE_NAMES) or y.shape != (x.shape[0],):
        raise ValueError(f'fit_logistic: expected (N, {len(FEATURE_NAMES)}) features and N labels, got {x.shape}')
    n_tp, n_fp = int(y.sum()), int((~y).sum())
    if n_tp == 0 or n_fp == 0:
        raise ConfigError(
            f'meta classifier: needs true- and false-positive segments to learn from, got {n_tp} TP and {n_fp} FP '
            '(use more frames, frames with anomalies, or another threshold)'
        )
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=c, max_iter=2000).fit(scaler.transform(x), y)
    return MetaClassifier(
        feature_names=FEATURE_NAMES,
        mean=np.asarray(scaler.mean_, dtype=np.float64),
        scale=np.asarray(scaler.scale_, dtype=np.float64),
        coef=np.asarray(model.coef_[0], dtype=np.float64),
        intercept=float(model.intercept_[0]),
        decision_threshold=float(decision_threshold),
        segment_threshold=float(segment_threshold),
        min_size=int(min_size),
        scorer=scorer,
        info=dict(info or {}),
    )
