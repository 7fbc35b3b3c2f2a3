"""Shared fixtures: a tiny model folder made here (random weights), so core tests never need the embedded model."""

from __future__ import annotations

import os
from pathlib import Path

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
