"""The flow density scorer (scoring/flow.py) and its fitter (fit/flow.py), on tiny dimensions."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from anomaly_seg_ros.data.sample import Sample
from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.fit import flow as fit_flow
from anomaly_seg_ros.fit.model_yaml import update_model_yaml
from anomaly_seg_ros.scoring.flow import AffineCoupling, RealNVP

TAP = 'head_bn'
TAP_PATH = 'head.0.1'  # the BatchNorm before the head's ReLU: 16 channels at 1/4 for the width-8 tiny net


def _randomised(flow: RealNVP, seed: int = 0) -> RealNVP:
    """A flow far from the identity: random last layers, batch-norm parameters and statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for c in flow.couplings:
            last = c.net[-1]
            last.weight.copy_(torch.randn(last.weight.shape, generator=g) * 0.5)
            last.bias.copy_(torch.randn(last.bias.shape, generator=g) * 0.5)
        for n in flow.norms:
            n.log_gamma.copy_(torch.randn(n.log_gamma.shape, generator=g) * 0.3)
            n.beta.copy_(torch.randn(n.beta.shape, generator=g))
            n.running_mean.copy_(torch.randn(n.running_mean.shape, generator=g))
            n.running_var.copy_(torch.rand(n.running_var.shape, generator=g) + 0.5)
        flow.set_standardisation(torch.randn(flow.dim, generator=g), torch.rand(flow.dim, generator=g) + 0.5)
    return flow.eval()


@pytest.mark.parametrize('dim', [4, 5])
def test_log_determinant_matches_brute_force_jacobian(dim: int) -> None:
    flow = _randomised(RealNVP(dim, layers=3, hidden=8), seed=dim)
    torch.manual_seed(1)
    for _ in range(3):
        z = torch.randn(dim, dtype=torch.float32) * 2

        def g(v: torch.Tensor) -> torch.Tensor:
            return flow(v.reshape(1, dim, 1, 1))[0].reshape(dim)

        jac = torch.autograd.functional.jacobian(g, z)
        brute = torch.linalg.slogdet(jac.double())[1]
        mine = flow(z.reshape(1, dim, 1, 1))[1].reshape(())
        assert float(mine.detach()) == pytest.approx(float(brute), abs=1e-4)
        # and the NLL is the Gaussian NLL of eta minus that log-determinant
        eta = g(z)
        expected = 0.5 * float((eta.detach() ** 2).sum()) + 0.5 * dim * np.log(2 * np.pi) - float(brute)
        assert float(flow.nll(z.reshape(1, dim, 1, 1))) == pytest.approx(expected, abs=1e-3)


def test_inverse_undoes_forward() -> None:
    flow = _randomised(RealNVP(6, layers=4, hidden=8))
    z = torch.randn(2, 6, 3, 5)
    with torch.no_grad():
        torch.testing.assert_close(flow.inverse(flow(z)[0]), z, atol=1e-4, rtol=1e-4)


def test_identity_at_initialisation() -> None:
    coupling = AffineCoupling(4, 8)
    x = torch.randn(3, 4, 2, 2)
    y, logdet = coupling(x)
    assert torch.equal(y, x) and torch.equal(logdet, torch.zeros(3, 2, 2))
    # the whole fresh flow is a permutation of its (unit) standardisation: NLL = standard Gaussian NLL
    flow = RealNVP(4, layers=3, hidden=8).eval()
    z = torch.randn(5, 4, 1, 1)
    gauss = 0.5 * (z**2).sum(dim=1) + 2 * np.log(2 * np.pi)
    torch.testing.assert_close(flow.nll(z), gauss, atol=1e-3, rtol=1e-3)


@pytest.fixture
def one_thread() -> object:
    """Tiny matmuls: a second thread only adds contention (35 s against 2 s on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures('one_thread')
def test_fitted_flow_prefers_in_distribution_embeddings() -> None:
    # a curved, correlated 4-D distribution: a Gaussian would not fit it, a flow does better than one
    torch.manual_seed(0)

    def sample(n: int) -> torch.Tensor:
        a = torch.randn(n, 2)
        return torch.stack((a[:, 0], a[:, 0] ** 2 + 0.3 * a[:, 1], a[:, 1], -a[:, 0] + 0.2 * torch.randn(n)), 1)

    train = sample(4096)
    flow = RealNVP(4, layers=4, hidden=32)
    flow.set_standardisation(train.mean(0), train.std(0))
    opt = torch.optim.Adam(flow.parameters(), lr=3e-3)
    for _ in range(200):
        idx = torch.randint(len(train), (256,))
        loss = flow.nll(train[idx, :, None, None]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    flow.eval()
    with torch.no_grad():
        held_out = flow.nll(sample(2000)[:, :, None, None]).mean()
        shifted = flow.nll((sample(2000) + torch.tensor([0.0, -1.5, 1.0, 1.0]))[:, :, None, None]).mean()
        start = RealNVP(4, 4, 32)
        start.set_standardisation(train.mean(0), train.std(0))
        untrained = start.eval().nll(sample(2000)[:, :, None, None]).mean()
    assert float(held_out) < float(untrained) - 0.5  # it learned something beyond the standardisation
    assert float(shifted) > float(held_out) + 2.0


def _args(*extra: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    fit_flow.add_arguments(p)
    args = p.parse_args(
        [
            '--threads',
            '1',
            '--steps',
            '20',
            '--batch',
            '256',
            '--pixels-per-frame',
            '256',
            '--coupling-layers',
            '2',
            '--hidden',
            '16',
        ]
        + list(extra)
    )
    args.progress = False
    return args


def _frames(n: int, hw: tuple[int, int] = (64, 128), anomaly: bool = False) -> list[Sample]:
    """Smooth random frames (a road-ish gradient plus noise): the fitter needs no realism, only pixels."""
    rng = np.random.default_rng(0)
    out = []
    base = np.linspace(40, 200, hw[0], dtype=np.float32)[:, None, None] * np.ones((1, hw[1], 3), np.float32)
    for i in range(n):
        img = np.clip(base + rng.normal(0, 20, (*hw, 3)), 0, 255).astype(np.uint8)
        mask = None
        if anomaly:
            mask = np.zeros(hw, np.uint8)
            mask[:, : hw[1] // 2] = 1  # the left half is "anomalous": must never be sampled
        out.append(Sample(image=img, anomaly=mask, name=f'f{i}'))
    return out


@pytest.fixture
def model_copy(tiny_model: Path, tmp_path: Path) -> Path:
    out = tmp_path / 'tiny_flow'
    shutil.copytree(tiny_model, out)
    return out


@pytest.fixture
def fitted(model_copy: Path) -> Path:
    result = fit_flow.fit(model_copy, _frames(5), _args('--tap', f'{TAP}={TAP_PATH}'))
    update_model_yaml(model_copy, result)
    return model_copy


def test_fitter_writes_artefact_and_model_yaml(model_copy: Path) -> None:
    result = fit_flow.fit(model_copy, _frames(5), _args('--tap', f'{TAP}={TAP_PATH}', '--val-fraction', '0.2'))
    assert result.scorer == 'flow' and result.artefacts == {'flow': 'flow.pt'}
    assert result.taps == {TAP: TAP_PATH} and result.params['taps'] == [TAP]
    assert (model_copy / 'flow.pt').is_file() and not (model_copy / fit_flow.CHECKPOINT).exists()
    s = result.summary
    assert s['frames_train'] == 4 and s['frames_val'] == 1
    tap = s['taps'][TAP]
    assert tap['dim'] == 16 and tap['embeddings_train'] == 4 * 256 and np.isfinite(tap['val_nll'])
    update_model_yaml(model_copy, result)
    data = yaml.safe_load((model_copy / 'model.yaml').read_text())
    assert data['taps'] == {TAP: TAP_PATH}
    assert data['scorers']['flow']['artefacts'] == {'flow': 'flow.pt'}
    assert data['scorer'] == 'entropy'  # not made the default


def test_fitted_scorer_runs_and_onnxruntime_matches_torch(fitted: Path) -> None:
    pytest.importorskip('onnxruntime')
    from anomaly_seg_ros.pipeline import Pipeline

    ref = Pipeline.from_model(fitted, scorer='flow', backend='torch')
    ort = Pipeline.from_model(fitted, scorer='flow', backend='onnxruntime')
    assert ref.scorer.needs == ('logits', TAP)
    for hw in ((64, 128), (128, 256), (90, 150)):
        frame = _frames(1, hw)[0].image
        a, b = ref(frame), ort(frame)
        assert a.score.shape == hw and np.isfinite(a.score).all()
        np.testing.assert_allclose(b.score, a.score, atol=1e-3 * max(1.0, float(np.abs(a.score).max())))


def test_missing_artefact_fails_at_start_up_naming_it(fitted: Path) -> None:
    from anomaly_seg_ros.pipeline import Pipeline

    (fitted / 'flow.pt').unlink()
    with pytest.raises(ConfigError, match=r"artefact 'flow': file .*flow\.pt not found"):
        Pipeline.from_model(fitted, scorer='flow', backend='torch')


def test_missing_tap_fails_at_start_up_naming_it(fitted: Path) -> None:
    from anomaly_seg_ros.pipeline import Pipeline

    data = yaml.safe_load((fitted / 'model.yaml').read_text())
    del data['taps']
    (fitted / 'model.yaml').write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=rf'tap\(s\) {TAP} are not declared under `taps:`'):
        Pipeline.from_model(fitted, scorer='flow', backend='torch')
    data['taps'] = {TAP: TAP_PATH}
    data['scorers']['flow']['params']['taps'] = ['other']
    (fitted / 'model.yaml').write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=rf'no flow fitted for tap\(s\) other .*holds: {TAP}'):
        Pipeline.from_model(fitted, scorer='flow', backend='torch')


def test_anomaly_pixels_are_never_sampled(model_copy: Path) -> None:
    frames = _frames(3, anomaly=True)
    mask = fit_flow._cell_mask(frames[0], (16, 32))
    assert mask is not None and not mask[:, :16].any() and mask[:, 16:].all()
    # frames that are all anomaly leave nothing in-distribution to fit on
    for s in frames:
        assert s.anomaly is not None
        s.anomaly[:] = 1
    with pytest.raises(Exception, match=r'only 0 in-distribution embeddings'):
        fit_flow.fit(model_copy, frames, _args('--tap', f'{TAP}={TAP_PATH}', '--val-fraction', '0'))


def test_bad_taps_are_refused(model_copy: Path) -> None:
    with pytest.raises(ConfigError, match='declares no feature taps; pass --tap'):
        fit_flow.fit(model_copy, _frames(2), _args())
    with pytest.raises(ConfigError, match="no module 'head.9'"):
        fit_flow.fit(model_copy, _frames(2), _args('--tap', 'x=head.9'))
    with pytest.raises(ConfigError, match=r"'head.0.2' is a ReLU"):
        fit_flow.fit(model_copy, _frames(2), _args('--tap', 'x=head.0.2'))
    with pytest.raises(ConfigError, match='expected NAME=PATH'):
        fit_flow.fit(model_copy, _frames(2), _args('--tap', 'head.0.1'))


class _Stop(Exception):
    pass


def test_resume_continues_to_the_same_flow(model_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frames = _frames(4)
    opts = ('--tap', f'{TAP}={TAP_PATH}', '--steps', '12', '--checkpoint-every', '5')
    fit_flow.fit(model_copy, frames, _args(*opts))
    whole = torch.load(model_copy / 'flow.pt', weights_only=True)

    real_lr = fit_flow._lr

    def crash_at_8(base: float, step: int, steps: int) -> float:
        if step == 8:
            raise _Stop
        return real_lr(base, step, steps)

    monkeypatch.setattr(fit_flow, '_lr', crash_at_8)
    with pytest.raises(_Stop):
        fit_flow.fit(model_copy, frames, _args(*opts))
    assert (model_copy / fit_flow.CHECKPOINT).is_file()  # written at step 5
    monkeypatch.setattr(fit_flow, '_lr', real_lr)
    with pytest.raises(ConfigError, match='made with other taps, frames or options'):
        fit_flow.fit(model_copy, frames, _args(*opts, '--lr', '0.01', '--resume'))
    fit_flow.fit(model_copy, frames, _args(*opts, '--resume'))
    resumed = torch.load(model_copy / 'flow.pt', weights_only=True)
    for key, value in whole['taps'][TAP]['state_dict'].items():
        torch.testing.assert_close(resumed['taps'][TAP]['state_dict'][key], value, atol=1e-5, rtol=1e-5)
    assert not (model_copy / fit_flow.CHECKPOINT).exists()
    with pytest.raises(ConfigError, match='--resume: no checkpoint'):
        fit_flow.fit(model_copy, frames, _args(*opts, '--resume'))
