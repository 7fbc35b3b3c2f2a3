import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from anomaly_seg_ros.config import InputSpec, ModelConfig
from anomaly_seg_ros.errors import CheckpointError, ConfigError
from anomaly_seg_ros.scoring import SCORERS, Scorer, ScorerConfig, build_scorer, register_scorer


def _logits_from_probs(p: list[float]) -> torch.Tensor:
    # log p are valid logits for p (softmax is shift-invariant); shape 1xCx1x1
    return torch.log(torch.tensor(p, dtype=torch.float64)).reshape(1, -1, 1, 1)


def _cfg(num_classes: int, void: bool = False) -> ModelConfig:
    return ModelConfig(
        name='t',
        directory=Path('.'),
        architecture='icnet_small',
        format='torch',
        weights=Path('model.pt'),
        classes=tuple(f'c{i}' for i in range(num_classes)),
        input=InputSpec(64, 128),
        scorer='entropy',
        void_channel=void,
    )


def test_entropy_hand_values() -> None:
    s = build_scorer('entropy', _cfg(4))
    # uniform -> 1; p=(0.5, 0.5, 0, 0)-ish -> log 2 / log 4 = 0.5
    assert float(s({'logits': _logits_from_probs([0.25] * 4)})) == pytest.approx(1.0, abs=1e-6)
    p = [0.5, 0.5, 1e-12, 1e-12]
    assert float(s({'logits': _logits_from_probs(p)})) == pytest.approx(0.5, abs=1e-5)
    p = [0.7, 0.2, 0.1, 0.0 + 1e-15]
    h = -sum(x * math.log(x) for x in p[:3]) / math.log(4)
    assert float(s({'logits': _logits_from_probs(p)})) == pytest.approx(h, abs=1e-5)


def test_entropy_certain_is_zero_and_finite_for_huge_logits() -> None:
    s = build_scorer('entropy', _cfg(19))
    logits = torch.full((1, 19, 2, 2), -1e4)
    logits[:, 3] = 1e4
    out = s({'logits': logits})
    assert torch.isfinite(out).all()
    assert float(out.max()) == pytest.approx(0.0, abs=1e-6)


def test_max_softmax_hand_values_and_range() -> None:
    s = build_scorer('max_softmax', _cfg(4))
    assert float(s({'logits': _logits_from_probs([0.7, 0.2, 0.05, 0.05])})) == pytest.approx(0.3, abs=1e-6)
    assert s.score_range == (0.0, 0.75)
    assert float(s({'logits': _logits_from_probs([0.25] * 4)})) == pytest.approx(0.75, abs=1e-6)


def test_softmax_distance_synboost_eq2() -> None:
    s = build_scorer('softmax_distance', _cfg(4))
    # D = 1 - 0.6 + 0.3 = 0.7
    assert float(s({'logits': _logits_from_probs([0.6, 0.3, 0.05, 0.05])})) == pytest.approx(0.7, abs=1e-6)
    # tie between the top two -> maximal distance score 1
    assert float(s({'logits': _logits_from_probs([0.4, 0.4, 0.1, 0.1])})) == pytest.approx(1.0, abs=1e-6)
    assert float(s({'logits': _logits_from_probs([1 - 3e-9, 1e-9, 1e-9, 1e-9])})) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize('name', sorted(SCORERS))
def test_scores_within_declared_range(name: str) -> None:
    if SCORERS[name].artefact_names:
        pytest.skip('a fitted scorer needs its artefact; its own test file checks it (test_flow.py)')
    void = name == 'void'
    s = build_scorer(name, _cfg(19, void))
    out = s({'logits': torch.randn(2, 19 + void, 8, 8) * 5}).numpy()
    lo, hi = s.score_range
    assert out.shape == (2, 8, 8) and out.dtype == np.float32
    assert out.min() >= lo - 1e-6 and out.max() <= hi + 1e-6


def test_unknown_scorer_lists_valid() -> None:
    with pytest.raises(ConfigError, match='unknown scorer .nope.; available: entropy, flow, max_logit, max_softmax'):
        build_scorer('nope', _cfg(19))


def test_max_logit_hand_values_unbounded() -> None:
    s = build_scorer('max_logit', _cfg(3))
    logits = torch.tensor([2.0, -1.0, 0.5]).reshape(1, 3, 1, 1)
    assert float(s({'logits': logits})) == pytest.approx(-2.0)
    assert not s.bounded and s.score_range == (-math.inf, math.inf)


def test_void_channel_ignored_by_class_scorers() -> None:
    base = torch.randn(1, 4, 3, 3)
    with_void = torch.cat([base, torch.full((1, 1, 3, 3), 50.0)], dim=1)
    for name in ('entropy', 'max_softmax', 'softmax_distance', 'max_logit'):
        a = build_scorer(name, _cfg(4))({'logits': base})
        b = build_scorer(name, _cfg(4, True))({'logits': with_void})
        torch.testing.assert_close(a, b)
    void = build_scorer('void', _cfg(4, True))({'logits': with_void})
    assert float(void.min()) > 0.99  # the void logit dominates


@pytest.mark.parametrize('name', ['entropy', 'max_softmax', 'softmax_distance'])
@pytest.mark.parametrize('num_classes', [2, 19, 37])
def test_scores_stay_inside_the_declared_range(name: str, num_classes: int) -> None:
    """Uniform pixels (the top of max_softmax's range), near-ties and huge logits: float rounding must not push a
    score outside the range the metrics bin over (max_softmax exceeded 1 - 1/C on uniform pixels before)."""
    scorer = build_scorer(name, _cfg(num_classes))
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
    s = scorer({'logits': logits}).numpy()
    assert s.dtype == np.float32
    assert float(s.min()) >= lo and float(s.max()) <= hi
    if name == 'max_softmax':
        assert float(s[0].max()) == hi  # a uniform pixel scores exactly the top of the range


class _Fitted(Scorer):
    """A scorer with a tap, a parameter and a fitted artefact: the contract every later scorer uses."""

    name = '_fitted_test'
    needs = ('logits', 'features')
    params = {'scale': 1.0}
    artefact_names = ('centre',)
    score_range = (0.0, math.inf)

    def __init__(self, model: ModelConfig, cfg: ScorerConfig) -> None:
        super().__init__(model.num_classes, model.void_channel)
        self.scale = float(self.param(cfg, 'scale'))
        self.register_buffer('centre', self.load_artefact(cfg.artefacts['centre']))

    @classmethod
    def from_config(cls, model: ModelConfig, cfg: ScorerConfig) -> Scorer:
        cls.check_config(cfg)
        return cls(model, cfg)

    def forward(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        f = outputs['features']
        return ((f - self.centre.view(1, -1, 1, 1)) ** 2).mean(dim=1) * self.scale


@pytest.fixture()
def fitted(tmp_path: Path) -> ModelConfig:
    register_scorer(_Fitted)
    torch.save(torch.ones(4), tmp_path / 'centre.pt')
    cfg = _cfg(19)
    yield dataclasses.replace(
        cfg,
        directory=tmp_path,
        taps={'features': 'head.0.1'},
        scorers={'_fitted_test': {'params': {'scale': 2.0}, 'artefacts': {'centre': 'centre.pt'}}},
    )
    SCORERS.pop('_fitted_test')


def test_scorer_reads_params_artefacts_and_taps(fitted: ModelConfig) -> None:
    s = build_scorer('_fitted_test', fitted)
    out = s({'logits': torch.zeros(1, 19, 2, 2), 'features': torch.full((1, 4, 2, 2), 3.0)})
    torch.testing.assert_close(out, torch.full((1, 2, 2), 8.0))  # (3 - 1)^2 * scale 2


def test_scorer_config_errors_name_what_is_wrong(fitted: ModelConfig, tmp_path: Path) -> None:
    entry = fitted.scorers['_fitted_test']
    bad = dataclasses.replace(fitted, scorers={'_fitted_test': {**entry, 'params': {'scael': 1}}})
    with pytest.raises(ConfigError, match=r'unknown parameter\(s\) scael; it takes: scale'):
        build_scorer('_fitted_test', bad)
    with pytest.raises(ConfigError, match=r"needs the fitted artefact 'centre'.*scorers\._fitted_test\.artefacts"):
        build_scorer('_fitted_test', dataclasses.replace(fitted, scorers={}))
    (tmp_path / 'centre.pt').unlink()
    with pytest.raises(ConfigError, match=r"artefact 'centre': file .*centre\.pt not found"):
        build_scorer('_fitted_test', fitted)


def test_scorer_artefact_loaded_safely(fitted: ModelConfig, tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple:
            return (print, ('executed',))

    torch.save({'x': Evil()}, tmp_path / 'centre.pt')
    with pytest.raises(CheckpointError, match='cannot load scorer artefact'):
        build_scorer('_fitted_test', fitted)


def test_scorer_needing_a_missing_tap_fails_at_start(fitted: ModelConfig) -> None:
    from anomaly_seg_ros.graph import check_scorer_needs

    s = build_scorer('_fitted_test', fitted)
    with pytest.raises(ConfigError, match=r"needs the net output\(s\) features, which model 't' does not declare"):
        check_scorer_needs(dataclasses.replace(fitted, taps={}), s)
