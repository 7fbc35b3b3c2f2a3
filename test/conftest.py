"""Shared fixtures: a tiny model folder made here (random weights), so core tests never need the embedded model;
an rclpy context on an isolated domain for in-process node tests; a writer of Cityscapes-layout trees."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import pytest
import torch

from anomaly_seg_ros.checkpoint import write_model_folder
from anomaly_seg_ros.config import InputSpec
from anomaly_seg_ros.nets import build_net


@pytest.fixture(scope='session', autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Exported graphs and engines go to a per-run cache (children inherit it), never the user's ~/.cache."""
    os.environ['ANOMALY_SEG_CACHE'] = str(tmp_path_factory.mktemp('cache'))


@pytest.fixture(scope='session')
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp('models') / 'tiny'
    torch.manual_seed(0)
    net = build_net('icnet_small', 19, width=8).eval()
    write_model_folder(out, net, 'icnet_small', {'width': 8}, InputSpec(64, 128), 'entropy', 'random weights')
    return out


@pytest.fixture()
def ros_context(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An rclpy Context on an isolated ROS domain (this machine only), shut down afterwards. rclpy is imported
    here, not at the top, so the core tests run where ROS is not installed."""
    rclpy = pytest.importorskip('rclpy', reason='rclpy not installed (pip install ros-rclpy, see README)')
    from rclpy.context import Context

    from anomaly_seg_ros.ros.harness import isolated_ros_env

    for k, v in isolated_ros_env().items():
        monkeypatch.setenv(k, v)
    ctx = Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.try_shutdown(context=ctx)


@pytest.fixture()
def cityscapes_tree() -> Callable[[Path, str, Sequence[Any]], None]:
    """write(root, split, samples): the samples (images + trainId labels) as a Cityscapes tree under root."""

    def write(root: Path, split: str, samples: Sequence[Any]) -> None:
        for i, s in enumerate(samples):
            stem = f'aachen_000000_{i:06d}'
            (root / 'leftImg8bit' / split / 'aachen').mkdir(parents=True, exist_ok=True)
            (root / 'gtFine' / split / 'aachen').mkdir(parents=True, exist_ok=True)
            cv2.imwrite(
                str(root / 'leftImg8bit' / split / 'aachen' / f'{stem}_leftImg8bit.png'),
                cv2.cvtColor(s.image, cv2.COLOR_RGB2BGR),
            )
            assert s.labels is not None
            cv2.imwrite(str(root / 'gtFine' / split / 'aachen' / f'{stem}_gtFine_labelTrainIds.png'), s.labels)

    return write
