"""`anomaly-seg bench --soak`: a tiny soak and overload through the real node process; figures exist and add up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip('rclpy', reason='rclpy not installed (pip install ros-rclpy, see README)')

from anomaly_seg_ros.cli.main import main  # noqa: E402
from anomaly_seg_ros.ros.soak import rss_mb, rss_slope, run_soak  # noqa: E402


def test_rss_slope_is_mb_per_1000_frames() -> None:
    assert rss_slope([(0, 100.0), (1000, 101.0), (2000, 102.0)]) == pytest.approx(1.0)
    assert rss_slope([(0, 100.0)]) == 0.0
    assert rss_mb(os.getpid()) > 1.0


def test_tiny_soak_and_overload_account_for_every_frame(tiny_model: Path) -> None:
    before = dict(os.environ)
    report = run_soak(str(tiny_model), 20, 2.0, 20.0, (128, 64), overload_frames=20, backend='torch', samples=10)
    assert dict(os.environ) == before, 'the soak changed this process environment'
    assert report.node_alive_at_end
    assert report.rss_start_mb > 10 and report.rss_end_mb > 10
    assert len(report.rss_samples) >= 3
    assert abs(report.rss_slope_mb_per_1000) < 10_000  # finite, from >= 3 samples
    assert report.sustainable_hz > 0
    soak, over = report.phases
    assert (soak.name, over.name) == ('soak', 'overload')
    assert over.rate_hz == pytest.approx(2.0 * report.sustainable_hz)
    for p in report.phases:
        assert p.sent == 20
        assert p.answered + p.dropped_superseded + p.never_answered == p.sent
        assert min(p.answered, p.dropped_superseded, p.never_answered, p.not_received_by_node, p.failed) >= 0
        assert p.failed == 0
    # at 20 Hz a tiny model keeps up: every frame answered
    assert soak.answered == 20, soak
    assert 0 < soak.age_ms['p50'] <= soak.age_ms['p95'] <= soak.age_ms['p99'] <= soak.age_ms['max']
    assert over.answered >= 1 and over.age_ms['p50'] > 0
    assert report.to_json()['size'] == '128x64'


def test_bench_soak_cli_prints_the_figures(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / 'soak.json'
    rc = main(
        ['bench', '--model', str(tiny_model), '--backend', 'torch', '--sizes', '128x64', '--soak', '10',
         '--overload', '2', '--overload-frames', '10', '--rate', '20', '--json', str(out)]
    )  # fmt: skip
    text = capsys.readouterr().out
    assert rc == 0
    assert 'node RSS' in text and 'MB per 1000 frames' in text and '| overload |' in text
    assert 'Pipeline p50' not in text  # --soak runs only the soak, not the backend table
    import json

    figures = json.loads(out.read_text())
    assert [p['sent'] for p in figures['soak']['phases']] == [10, 10]


def test_bench_soak_rejects_several_sizes(tiny_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(['bench', '--model', str(tiny_model), '--sizes', '128x64,256x128', '--soak', '5']) == 2
    assert '--soak runs at one size' in capsys.readouterr().err
