"""Entropy maximisation fine-tuning (Chan et al. sec. 3.1): the loss by hand, a short run on a tiny net, the
folder it writes, the real-data path (pasted RGBA objects into a Cityscapes layout) and the refusals."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from anomaly_seg_ros.cli import main as cli_main
from anomaly_seg_ros.config import load_model_config
from anomaly_seg_ros.data.sample import Sample
from anomaly_seg_ros.data.synthetic import SyntheticWorld, WorldConfig
from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.pipeline import Pipeline
from anomaly_seg_ros.train.entropy_max import (
    PROXY_ID,
    EntropyMaxConfig,
    entropy_max_loss,
    proxy_target,
    train_entropy_max,
)
from anomaly_seg_ros.train.seg import SegTrainConfig, train_segmentation

H, W = 96, 192
TINY = dict(width=8, input_height=H, input_width=W, crop_height=64, crop_width=128, batch=2)


def _frames(n: int, seed: int, prob: float, family: str = 'proxy') -> list[Sample]:
    world = SyntheticWorld(
        n, seed=seed, config=WorldConfig(height=H, width=W, anomaly_prob=prob, anomaly_family=family)
    )
    return [world[i] for i in range(n)]


@pytest.fixture(scope='module')
def base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny net that has seen some in-distribution training, so it is confident before the fine-tune."""
    out = tmp_path_factory.mktemp('base') / 'tiny'
    torch.manual_seed(0)
    train_segmentation(
        SegTrainConfig(out=out, iters=30, eval_every=30, lr=5e-3, threads=1, **TINY),
        _frames(8, 0, 0.0),
        [],
        progress=False,
    )
    return out


def test_loss_matches_hand_computation_on_2x2() -> None:
    """Two classes, one image of 2x2 pixels: an in-distribution pixel of each class, one proxy, one ignored."""
    log3 = math.log(3.0)
    # channel-first logits: pixel (0,0) = (0, 0); (0,1) = (log 3, 0); (1,0) = (log 3, 0); (1,1) = (50, -50)
    logits = torch.tensor([[[[0.0, log3], [log3, 50.0]], [[0.0, 0.0], [0.0, -50.0]]]], requires_grad=True)
    target = torch.tensor([[[0, 1], [PROXY_ID, 255]]])
    loss = entropy_max_loss(logits, target, lam=0.9)
    # (0,0): p = (1/2, 1/2), class 0 -> log 2;  (0,1): p = (3/4, 1/4), class 1 -> log 4
    ce = (math.log(2.0) + math.log(4.0)) / 2
    # (1,0): p = (3/4, 1/4) -> -(log 3/4 + log 1/4) / 2
    out = -(math.log(0.75) + math.log(0.25)) / 2
    assert loss.ce.item() == pytest.approx(ce, rel=1e-6)
    assert loss.proxy.item() == pytest.approx(out, rel=1e-6)
    assert loss.total.item() == pytest.approx(0.1 * ce + 0.9 * out, rel=1e-6)
    loss.total.backward()
    assert logits.grad is not None
    assert torch.all(logits.grad[0, :, 1, 1] == 0)  # the ignored pixel takes no part
    # the proxy term is bounded below by log q, reached by the uniform softmax (paper, after eq. 4)
    uniform = entropy_max_loss(torch.zeros(1, 19, 1, 1), torch.tensor([[[PROXY_ID]]]), lam=1.0)
    assert uniform.proxy.item() == pytest.approx(math.log(19.0), rel=1e-6)
    assert uniform.ce.item() == 0.0 and uniform.total.item() == pytest.approx(math.log(19.0), rel=1e-6)


def test_proxy_target_marks_proxies_and_ignores_their_border() -> None:
    labels = np.array([[0, 255], [3, 7]], np.uint8)
    anomaly = np.array([[0, 1], [255, 0]], np.uint8)
    assert proxy_target(labels, anomaly).tolist() == [[0, PROXY_ID], [255, 7]]
    assert proxy_target(labels, None).tolist() == labels.tolist()


def _mean_score_on_anomalies(model: Path, frames: list[Sample]) -> tuple[float, float]:
    """Mean entropy on anomaly pixels and on in-distribution pixels, through the deployed Pipeline."""
    pipe = Pipeline.from_model(model, scorer='entropy')
    on, off = [], []
    for s in frames:
        assert s.anomaly is not None
        score = pipe(s.image).score
        on.append(score[s.anomaly == 1])
        off.append(score[s.anomaly == 0])
    return float(np.concatenate(on).mean()), float(np.concatenate(off).mean())


def test_short_run_raises_entropy_on_proxies(base_model: Path, tmp_path: Path) -> None:
    out = tmp_path / 'em'
    cfg = EntropyMaxConfig(
        out=out, iters=16, eval_every=8, batch=4, lr=3e-3, proxy_prob=1.0, crop_height=64, crop_width=128, threads=1
    )
    train, val = _frames(12, 0, 1.0), _frames(4, 1, 1.0)
    summary = train_entropy_max(cfg, base_model, train, val, source='tiny synthetic', progress=False)
    hist = summary['history']
    assert [h['iteration'] for h in hist] == [0, 8, 16]
    assert all(math.isfinite(h['train_ce']) and h['train_ce'] > 0 for h in hist[1:])
    assert all(h['train_proxy_nll'] >= math.log(19) - 1e-4 for h in hist[1:])
    assert hist[-1]['val_entropy_proxy'] > hist[0]['val_entropy_proxy']
    assert 0.0 <= summary['before']['val_miou'] <= 1.0 and 0.0 <= summary['after']['val_miou'] <= 1.0
    # the written folder, measured independently through Pipeline.from_model on held-out frames
    model = load_model_config(out)
    assert model.scorer == 'entropy' and model.input.height == H and 'entropy maximisation' in model.description
    held_out = _frames(4, 5, 1.0)
    before_on, before_off = _mean_score_on_anomalies(base_model, held_out)
    after_on, after_off = _mean_score_on_anomalies(out, held_out)
    assert after_on > before_on
    # not merely "more uncertain everywhere": the proxies pull away from the in-distribution pixels
    assert after_on - after_off > before_on - before_off + 0.05
    log = json.loads((out / 'train_log.json').read_text())
    assert log['base_model']['name'] == 'tiny' and len(log['base_model']['weights_sha256']) == 64
    # --resume continues from the checkpoint instead of starting over
    cfg2 = EntropyMaxConfig(**{**cfg.__dict__, 'iters': 24})
    summary2 = train_entropy_max(cfg2, base_model, train, val, resume=True, progress=False)
    assert [h['iteration'] for h in summary2['history']] == [0, 8, 16, 24]


def _objects(folder: Path, n: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    for i in range(n):
        bgra = np.zeros((40, 30, 4), np.uint8)
        bgra[..., :3] = rng.integers(0, 255, 3)
        cv2.circle(bgra, (15, 20), 12, (0, 0, 0, 255), -1)
        bgra[..., :3] = np.where(bgra[..., 3:] > 0, rng.integers(0, 255, (40, 30, 3)), 0)
        cv2.imwrite(str(folder / f'obj{i}.png'), bgra)
    return folder


def _em_args(base: Path, out: Path, *extra: str) -> list[str]:
    small = ['--iters', '2', '--eval-every', '2', '--batch', '2', '--crop', '128x64', '--threads', '1']
    return ['train', 'entropy-max', '--model', str(base), '--out', str(out), *small, *extra]


def test_cli_on_cityscapes_layout_with_pasted_objects(
    base_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], cityscapes_tree: Any
) -> None:
    frames = _frames(3, 7, 0.0)
    cityscapes_tree(tmp_path / 'cs', 'train', frames)
    cityscapes_tree(tmp_path / 'cs', 'val', frames[:2])
    objects = _objects(tmp_path / 'objects')
    args = ['--dataset', 'cityscapes', '--root', str(tmp_path / 'cs'), '--proxy-objects', str(objects)]
    rc = cli_main(_em_args(base_model, tmp_path / 'm', *args, '--proxy-prob', '1'))
    assert rc == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    assert out['after']['iteration'] == 2
    # every validation frame got pasted objects, so the proxy statistic exists and is an entropy in [0, 1]
    assert 0.0 <= out['after']['val_entropy_proxy'] <= 1.0
    r = Pipeline.from_model(tmp_path / 'm')(np.zeros((H, W, 3), np.uint8))
    assert r.labels.shape == (H, W) and r.score_range == (0.0, 1.0)
    # the folder is not overwritten without --overwrite
    assert cli_main(_em_args(base_model, tmp_path / 'm', *args)) == 2
    assert 'already holds' in capsys.readouterr().err


def test_cli_defaults_are_the_trainers() -> None:
    from anomaly_seg_ros.cli.main import build_parser
    from anomaly_seg_ros.train import entropy_max as em

    args = build_parser().parse_args(['train', 'entropy-max', '--model', 'm', '--out', 'o'])
    assert (args.lam, args.iters, args.lr, args.proxy_prob) == (em.EM_LAMBDA, em.EM_ITERS, em.EM_LR, em.EM_PROXY_PROB)


def test_refusals(base_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # lambda outside [0, 1]: argparse (exit 2) and the config itself
    with pytest.raises(SystemExit) as exc:
        cli_main(_em_args(base_model, tmp_path / 'a', '--synthetic', '4', '--proxy-synthetic', '--lambda', '1.5'))
    assert exc.value.code == 2 and '--lambda' in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r'--lambda must be a number in \[0, 1\]'):
        EntropyMaxConfig(out=tmp_path, lam=-0.1).validate()
    # a missing proxy folder is named with its option
    rc = cli_main(_em_args(base_model, tmp_path / 'b', '--synthetic', '4', '--proxy-objects', str(tmp_path / 'nope')))
    err = capsys.readouterr().err
    assert rc == 2 and '--proxy-objects' in err and 'does not exist' in err
    # frames without segmentation labels: a Fishyscapes folder has anomaly masks only
    (tmp_path / 'fs' / 'images').mkdir(parents=True)
    (tmp_path / 'fs' / 'labels').mkdir()
    cv2.imwrite(str(tmp_path / 'fs' / 'images' / 'a.png'), np.zeros((H, W, 3), np.uint8))
    cv2.imwrite(str(tmp_path / 'fs' / 'labels' / 'a.png'), np.zeros((H, W), np.uint8))
    objects = _objects(tmp_path / 'objects')
    fs = ['--dataset', 'fishyscapes', '--root', str(tmp_path / 'fs'), '--proxy-objects', str(objects)]
    rc = cli_main(_em_args(base_model, tmp_path / 'c', *fs))
    err = capsys.readouterr().err
    assert rc == 2 and 'carry no segmentation labels' in err
    with pytest.raises(ConfigError, match='has no segmentation labels'):
        unlabeled = [Sample(image=np.zeros((H, W, 3), np.uint8), anomaly=np.zeros((H, W), np.uint8), name='x')]
        train_entropy_max(EntropyMaxConfig(out=tmp_path / 'd', iters=1, batch=2), base_model, unlabeled, [])
    # one frame source and one proxy source, and the synthetic proxies only with synthetic frames
    rc = cli_main(_em_args(base_model, tmp_path / 'e', '--synthetic', '4'))
    assert rc == 2 and 'exactly one proxy source' in capsys.readouterr().err
    rc = cli_main(_em_args(base_model, tmp_path / 'f', '--proxy-synthetic'))
    assert rc == 2 and 'exactly one frame source' in capsys.readouterr().err
    rc = cli_main(_em_args(base_model, tmp_path / 'g', *fs[:4], '--proxy-synthetic'))
    assert rc == 2 and '--proxy-synthetic marks obstacles' in capsys.readouterr().err
    assert not any((tmp_path / d).exists() for d in 'abcdefg')  # nothing written by a refused run
