"""The ROS environment of the harness: both naming generations where the distribution reads them, and no change
to the calling process's environment (the live evaluator, demo and bench pass it to subprocesses and apply it to
their own client only while rclpy starts)."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='rclpy not installed (pip install ros-rclpy, see README)')

from anomaly_seg_ros.ros import harness  # noqa: E402
from anomaly_seg_ros.ros.harness import ROS_ENV_KEYS, isolated_ros_env, ros_distro, ros_env_applied  # noqa: E402

SHIPPED = str(Path(__file__).resolve().parents[1] / 'config' / 'fastdds_large_images.xml')


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in (*ROS_ENV_KEYS, 'ROS_DISTRO'):
        monkeypatch.delenv(k, raising=False)


@pytest.mark.parametrize('distro', ['humble', ''])
def test_humble_and_unknown_get_both_naming_generations(clean_env: None, distro: str) -> None:
    before = dict(os.environ)
    env = isolated_ros_env(7, distro=distro)
    assert dict(os.environ) == before, 'isolated_ros_env changed os.environ'
    assert env['ROS_DOMAIN_ID'] == '7'
    assert env['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'  # Iron and later
    assert env['ROS_LOCALHOST_ONLY'] == '1'  # Humble
    assert env['FASTDDS_DEFAULT_PROFILES_FILE'] == env['FASTRTPS_DEFAULT_PROFILES_FILE'] == SHIPPED


def test_jazzy_gets_the_old_profile_name_but_not_the_deprecated_localhost_only(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv('ROS_LOCALHOST_ONLY', '1')
    env = isolated_ros_env(distro='jazzy')  # Fast DDS 2.14: FASTRTPS_*; rcl warns about ROS_LOCALHOST_ONLY
    assert env['FASTDDS_DEFAULT_PROFILES_FILE'] == env['FASTRTPS_DEFAULT_PROFILES_FILE'] == SHIPPED
    assert 'ROS_LOCALHOST_ONLY' not in env and env['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
    assert os.environ['ROS_LOCALHOST_ONLY'] == '1'


def test_kilted_gets_only_the_names_it_reads(clean_env: None) -> None:
    env = isolated_ros_env(distro='kilted')  # its rmw warns that FASTRTPS_DEFAULT_PROFILES_FILE is deprecated
    assert env['FASTDDS_DEFAULT_PROFILES_FILE'] == SHIPPED
    assert 'FASTRTPS_DEFAULT_PROFILES_FILE' not in env and 'ROS_LOCALHOST_ONLY' not in env


@pytest.mark.parametrize('name', ['FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE'])
def test_a_profile_the_user_chose_applies_under_both_names(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    mine = str(tmp_path / 'mine.xml')
    monkeypatch.setenv(name, mine)
    env = isolated_ros_env(distro='humble')
    assert env['FASTDDS_DEFAULT_PROFILES_FILE'] == env['FASTRTPS_DEFAULT_PROFILES_FILE'] == mine


def test_ros_distro_from_the_environment_or_the_rclpy_version(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('ROS_DISTRO', 'Humble')
    assert ros_distro() == 'humble'
    monkeypatch.delenv('ROS_DISTRO')
    versions = {'ros-rclpy': '3.3.16'}

    def version(dist: str) -> str:
        if dist not in versions:
            raise harness.importlib.metadata.PackageNotFoundError(dist)
        return versions[dist]

    monkeypatch.setattr(harness.importlib.metadata, 'version', version)
    assert ros_distro() == 'humble'
    versions['ros-rclpy'] = '7.1.5'
    assert ros_distro() == 'jazzy'
    versions['ros-rclpy'] = '9.1.2'
    assert ros_distro() == 'kilted'
    versions.clear()
    assert ros_distro() == ''


def test_ros_env_applied_restores_set_and_unset_variables(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('ROS_DOMAIN_ID', '3')
    monkeypatch.setenv('FASTRTPS_DEFAULT_PROFILES_FILE', '/theirs.xml')
    before = dict(os.environ)
    env = isolated_ros_env(42, distro='kilted')  # drops FASTRTPS_*: it must be unset inside, back afterwards
    with pytest.raises(RuntimeError), ros_env_applied(env):
        assert os.environ['ROS_DOMAIN_ID'] == '42'
        assert os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
        assert 'FASTRTPS_DEFAULT_PROFILES_FILE' not in os.environ
        raise RuntimeError('leaving by an exception restores too')
    assert dict(os.environ) == before


def test_live_evaluation_leaves_the_environment_as_it_was(tiny_model: Path) -> None:
    """A live-evaluation call (node subprocess + client here) on two frames: answered, and os.environ unchanged."""
    from anomaly_seg_ros.config import NodeConfig
    from anomaly_seg_ros.data.sample import Sample
    from anomaly_seg_ros.eval.offline import EvalFrame
    from anomaly_seg_ros.ros.live_eval import evaluate_live

    rng = np.random.default_rng(0)
    frames = [
        EvalFrame(i, f'f{i}', 1_000_000_000 + i * 100_000_000, Sample(rng.integers(0, 255, (64, 128, 3), np.uint8)))
        for i in range(2)
    ]
    before = dict(os.environ)
    cfg = NodeConfig(model=str(tiny_model), backend='torch')
    opts = SimpleNamespace(late_ms=None, rate_scale=1.0, progress=False)
    _, _, evaluated = evaluate_live(cfg, opts, frames, 2, {})
    assert dict(os.environ) == before, 'the live evaluation changed os.environ'
    assert evaluated['frames_read'] == 2 and evaluated['dropped_frames'] == 0, evaluated
