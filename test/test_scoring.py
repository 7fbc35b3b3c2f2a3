import math

import numpy as np
import pytest
import torch

from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.scoring import SCORERS, build_scorer


def _logits_from_probs(p: list[float]) -> torch.Tensor:
    # log p are valid logits for p (softmax is shift-invariant); shape 1xCx1x1
    return torch.log(torch.tensor(p, dtype=torch.float64)).reshape(1, -1, 1, 1)


IMG = torch.zeros(1, 3, 1, 1)


def test_entropy_hand_values() -> None:
    s = build_scorer('entropy', 4)
    # uniform -> 1; p=(0.5, 0.5, 0, 0)-ish -> log 2 / log 4 = 0.5
    assert float(s(_logits_from_probs([0.25] * 4), IMG)) == pytest.approx(1.0, abs=1e-6)
    p = [0.5, 0.5, 1e-12, 1e-12]
    assert float(s(_logits_from_probs(p), IMG)) == pytest.approx(0.5, abs=1e-5)
    p = [0.7, 0.2, 0.1, 0.0 + 1e-15]
    h = -sum(x * math.log(x) for x in p[:3]) / math.log(4)
    assert float(s(_logits_from_probs(p), IMG)) == pytest.approx(h, abs=1e-5)


def test_entropy_certain_is_zero_and_finite_for_huge_logits() -> None:
    s = build_scorer('entropy', 19)
    logits = torch.full((1, 19, 2, 2), -1e4)
    logits[:, 3] = 1e4
    out = s(logits, IMG)
    assert torch.isfinite(out).all()
    assert float(out.max()) == pytest.approx(0.0, abs=1e-6)


def test_max_softmax_hand_values_and_range() -> None:
    s = build_scorer('max_softmax', 4)
    assert float(s(_logits_from_probs([0.7, 0.2, 0.05, 0.05]), IMG)) == pytest.approx(0.3, abs=1e-6)
    assert s.score_range == (0.0, 0.75)
    assert float(s(_logits_from_probs([0.25] * 4), IMG)) == pytest.approx(0.75, abs=1e-6)


def test_softmax_distance_synboost_eq2() -> None:
    s = build_scorer('softmax_distance', 4)
    # D = 1 - 0.6 + 0.3 = 0.7
    assert float(s(_logits_from_probs([0.6, 0.3, 0.05, 0.05]), IMG)) == pytest.approx(0.7, abs=1e-6)
    # tie between the top two -> maximal distance score 1
    assert float(s(_logits_from_probs([0.4, 0.4, 0.1, 0.1]), IMG)) == pytest.approx(1.0, abs=1e-6)
    assert float(s(_logits_from_probs([1 - 3e-9, 1e-9, 1e-9, 1e-9]), IMG)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize('name', sorted(SCORERS))
def test_scores_within_declared_range(name: str) -> None:
    void = name == 'void'
    s = build_scorer(name, 19, void_channel=void)
    out = s(torch.randn(2, 19 + void, 8, 8) * 5, torch.zeros(2, 3, 8, 8)).numpy()
    lo, hi = s.score_range
    assert out.shape == (2, 8, 8) and out.dtype == np.float32
    assert out.min() >= lo - 1e-6 and out.max() <= hi + 1e-6


def test_unknown_scorer_lists_valid() -> None:
    with pytest.raises(ConfigError, match='unknown scorer .nope.; available: entropy, max_logit, max_softmax'):
        build_scorer('nope', 19)


def test_max_logit_hand_values_unbounded() -> None:
    s = build_scorer('max_logit', 3)
    logits = torch.tensor([2.0, -1.0, 0.5]).reshape(1, 3, 1, 1)
    assert float(s(logits, IMG)) == pytest.approx(-2.0)
    assert not s.bounded and s.score_range == (-math.inf, math.inf)


def test_void_channel_ignored_by_class_scorers() -> None:
    base = torch.randn(1, 4, 3, 3)
    with_void = torch.cat([base, torch.full((1, 1, 3, 3), 50.0)], dim=1)
    for name in ('entropy', 'max_softmax', 'softmax_distance', 'max_logit'):
        a = build_scorer(name, 4)(base, IMG)
        b = build_scorer(name, 4, void_channel=True)(with_void, IMG)
        torch.testing.assert_close(a, b)
    void = build_scorer('void', 4, void_channel=True)(with_void, IMG)
    assert float(void.min()) > 0.99  # the void logit dominates


@pytest.mark.parametrize('name', ['entropy', 'max_softmax', 'softmax_distance'])
@pytest.mark.parametrize('num_classes', [2, 19, 37])
def test_scores_stay_inside_the_declared_range(name: str, num_classes: int) -> None:
    """Uniform pixels (the top of max_softmax's range), near-ties and huge logits: float rounding must not push a
    score outside the range the metrics bin over (max_softmax exceeded 1 - 1/C on uniform pixels before)."""
    scorer = build_scorer(name, num_classes)
    lo, hi = scorer.score_range
    g = torch.Generator().manual_seed(num_classes)
    logits = torch.cat(
        [
            torch.zeros(1, num_classes, 4, 4),  # uniform
            torch.full((1, num_classes, 4, 4), 7.3),  # uniform, other offset
            torch.randn(1, num_classes, 4, 4, generator=g) * 1e-6,  # near-ties
            torch.randn(1, num_classes, 4, 4, generator=g) * 50.0,  # near one-hot
        ]
    )
    s = scorer(logits, torch.zeros(4, 3, 4, 4)).numpy()
    assert s.dtype == np.float32
    assert float(s.min()) >= lo and float(s.max()) <= hi
    if name == 'max_softmax':
        assert float(s[0].max()) == hi  # a uniform pixel scores exactly the top of the range
