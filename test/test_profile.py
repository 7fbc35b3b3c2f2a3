"""`anomaly-seg profile`: stamp matching, drops after the timeout, percentiles and clock-skew detection without
ROS, the CLI's options, and one run against a real node process (frames matched, profile.json with sane ages)."""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from anomaly_seg_ros.cli import profile as profile_cli
from anomaly_seg_ros.cli.help_format import CommandParser
from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.eval.profile_stats import (
    ProfileStats,
    SkewDetector,
    format_header,
    format_row,
    parse_stage_times,
    stamp_from_cdr,
    summarize,
    write_plot,
)

S = 1_000_000_000
MS = 1_000_000
T0 = 1_800_000_000 * S  # a plausible wall-clock stamp
OUTS = ('segmentation', 'anomaly_score')


def _frame(stats: ProfileStats, stamp: int, recv_in: int, recv_out: dict[str, int]) -> None:
    stats.on_input(stamp, recv_in)
    for topic, t in recv_out.items():
        stats.on_output(topic, stamp, t)


# -- pure logic -----------------------------------------------------------------------------------------------
def test_outputs_match_inputs_by_stamp_whatever_the_order() -> None:
    stats = ProfileStats(OUTS, timeout_s=1.0)
    # frame 1: input, then both outputs; frame 2: outputs arrive interleaved with frame 3's input
    _frame(stats, T0, T0 + 5 * MS, {'segmentation': T0 + 30 * MS, 'anomaly_score': T0 + 40 * MS})
    stats.on_input(T0 + 100 * MS, T0 + 104 * MS)
    stats.on_output('anomaly_score', T0 + 100 * MS, T0 + 150 * MS)
    stats.on_input(T0 + 200 * MS, T0 + 203 * MS)
    stats.on_output('segmentation', T0 + 100 * MS, T0 + 160 * MS)
    assert stats.completed == 2 and set(stats.pending) == {T0 + 200 * MS}
    assert list(stats.ages_ms) == pytest.approx([40.0, 60.0])  # last output - stamp
    assert list(stats.through_ms) == pytest.approx([35.0, 56.0])  # last output - input, one clock
    assert list(stats.topic_ages_ms['segmentation']) == pytest.approx([30.0, 60.0])
    # a duplicate output of a finished frame opens nothing new
    stats.on_output('segmentation', T0, T0 + 300 * MS)
    assert T0 not in stats.pending and stats.completed == 2


def test_output_before_its_input_still_matches() -> None:
    stats = ProfileStats(('segmentation',), timeout_s=1.0)
    stats.on_output('segmentation', T0, T0 + 20 * MS)
    assert stats.completed == 1 and stats.completed_without_input == 1 and not stats.through_ms
    stats.on_input(T0, T0 + 25 * MS)  # the late input of a finished frame is no pending frame (no false drop)
    stats.expire(T0 + 10 * S)
    assert stats.dropped == 0 and stats.inputs == 1


def test_drops_and_partial_frames_only_after_the_timeout() -> None:
    stats = ProfileStats(OUTS, timeout_s=0.5)
    stats.on_input(T0, T0 + MS)  # never answered
    stats.on_input(T0 + 10 * MS, T0 + 11 * MS)
    stats.on_output('segmentation', T0 + 10 * MS, T0 + 40 * MS)  # one of two outputs
    assert stats.expire(T0 + 400 * MS) == [] and stats.dropped == 0
    gone = stats.expire(T0 + 600 * MS)
    assert sorted(f.stamp_ns for f in gone) == [T0, T0 + 10 * MS]
    assert (stats.dropped, stats.partial, stats.pending) == (1, 1, {})
    # an output after its frame expired is not resurrected into a completed frame
    stats.on_output('anomaly_score', T0 + 10 * MS, T0 + 700 * MS)
    assert stats.completed == 0 and not stats.pending


def test_report_counts_frames_in_flight_separately() -> None:
    stats = ProfileStats(OUTS, timeout_s=2.0)
    _frame(stats, T0, T0 + MS, {'segmentation': T0 + 20 * MS, 'anomaly_score': T0 + 22 * MS})
    stats.on_input(T0 + 100 * MS, T0 + 101 * MS)
    report = stats.report(T0 + 200 * MS, node='/x/anomaly_seg')
    assert report['frames']['completed'] == 1 and report['frames']['dropped'] == 0
    assert report['frames']['in_flight_at_exit'] == 1 and report['node'] == '/x/anomaly_seg'
    assert report['age_ms']['p50'] == pytest.approx(22.0) and report['ages_reliable'] is True
    json.dumps(report, allow_nan=False)


def test_summarize_percentiles_and_empty() -> None:
    xs = list(range(1, 101))
    s = summarize(float(x) for x in xs)
    assert s['n'] == 100 and s['max'] == 100.0
    assert s['p50'] == pytest.approx(np.percentile(xs, 50)) and s['p95'] == pytest.approx(np.percentile(xs, 95))
    assert summarize([]) == {'n': 0, 'p50': None, 'p95': None, 'max': None}


def test_live_window_rates_and_ages_forget_old_frames() -> None:
    stats = ProfileStats(('segmentation',), timeout_s=1.0, window_s=2.0)
    for i in range(20):  # 10 Hz for 2 s, 50 ms each
        t = T0 + i * 100 * MS
        _frame(stats, t, t + MS, {'segmentation': t + 50 * MS})
    snap = stats.snapshot(T0 + 2 * S)
    assert snap.in_hz == pytest.approx(10.0, abs=0.6) and snap.out_hz == pytest.approx(10.0, abs=0.6)
    assert snap.age_ms['p50'] == pytest.approx(50.0)
    later = stats.snapshot(T0 + 10 * S)  # input stopped: the rates decay to 0, the counters stay
    assert later.in_hz == 0.0 and later.out_hz == 0.0 and later.age_ms['n'] == 0 and later.completed == 20
    assert len(stats.timeline) == 2


def test_skew_detector_future_past_and_plausible() -> None:
    skew = SkewDetector(future_tol_s=0.5, past_limit_s=30.0)
    assert skew.check(T0, T0 + 40 * MS) is None
    assert skew.check(T0 + 400 * MS, T0) is None  # within the tolerance
    assert skew.reliable and skew.warning() is None
    assert skew.check(T0 + 3 * S, T0) == 'future'
    assert 'future' in (skew.warning() or '') and '3.000 s' in (skew.warning() or '')
    assert skew.check(2 * S, T0) == 'past'  # sim time: 2 s after the epoch
    text = skew.warning() or ''
    assert 'sim time' in text and 'unreliable' in text and not skew.reliable
    with pytest.raises(ValueError, match='tolerances'):
        SkewDetector(-1.0)


def test_skewed_stamps_flag_the_ages_in_report_and_table() -> None:
    stats = ProfileStats(('segmentation',), timeout_s=1.0)
    _frame(stats, 5 * S, T0, {'segmentation': T0 + 30 * MS})  # replayed bag: stamp from long ago
    report = stats.report(T0 + S)
    assert report['ages_reliable'] is False and report['clock_skew']['past'] == 2
    row = format_row(stats.snapshot(T0 + S))
    assert '!' in row


def test_parse_stage_times_reads_the_node_diagnostics() -> None:
    values = {
        'frames_received': '3',
        'decode_ms_p50': '1.25',
        'decode_ms_p95': '2.5',
        'graph_ms_p50': '10.0',
        'total_ms_p95': 'nan',
        'publish_ms_p50': 'n/a',
        'backend': 'onnxruntime cpu fp32',
    }
    assert parse_stage_times(values) == {'decode': {'p50': 1.25, 'p95': 2.5}, 'graph': {'p50': 10.0}}
    stats = ProfileStats(('segmentation',))
    stats.on_diagnostics(values)
    header = format_header(stats.stages)
    assert 'decode' in header and 'graph' in header
    assert '1.2' in format_row(stats.snapshot(T0))


def test_unknown_output_and_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match='at least one output'):
        ProfileStats(())
    with pytest.raises(ValueError, match="unknown output 'heat'"):
        ProfileStats(OUTS).on_output('heat', T0, T0)


def test_stamp_from_cdr_both_byte_orders_and_short_data() -> None:
    le = b'\x00\x01\x00\x00' + struct.pack('<iI', 1_700_000_000, 123_456_789) + b'rest'
    be = b'\x00\x00\x00\x00' + struct.pack('>iI', 12, 5)
    assert stamp_from_cdr(le) == 1_700_000_000 * S + 123_456_789
    assert stamp_from_cdr(be) == 12 * S + 5
    with pytest.raises(ValueError, match='too short'):
        stamp_from_cdr(b'\x00\x01\x00\x00\x01')
    with pytest.raises(ValueError, match='encapsulation'):
        stamp_from_cdr(b'\x07\x01' + bytes(10))


def test_stamp_from_cdr_reads_a_serialized_image() -> None:
    pytest.importorskip('rclpy')
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1_765_000_000, 999_999_999
    msg.header.frame_id = 'cam'
    assert stamp_from_cdr(serialize_message(msg)) == 1_765_000_000 * S + 999_999_999


def test_plot_written_or_reason_given(tmp_path: Path) -> None:
    stats = ProfileStats(('segmentation',))
    assert write_plot(stats, tmp_path / 'p.png') == 'no plot: no frame was profiled'
    _frame(stats, T0, T0 + MS, {'segmentation': T0 + 20 * MS})
    stats.snapshot(T0 + S)
    assert write_plot(stats, tmp_path / 'p.png') is None
    assert (tmp_path / 'p.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


# -- CLI ------------------------------------------------------------------------------------------------------
def _parser() -> CommandParser:
    parser = CommandParser(prog='anomaly-seg')
    profile_cli.add_parser(parser.add_subparsers(dest='command'))
    return parser


def test_cli_help_shows_every_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(['profile', '--help'])
    text = ''.join(capsys.readouterr().out.split())  # argparse wraps long defaults mid-word
    for shown in (
        '(default: /)',
        '(default: until Ctrl-C or SIGTERM)',
        '(default: profile)',
        '(default: segmentation,anomaly_score,segmentation/color,anomaly_heatmap)',
        '(default: 2.0)',
        '(default: 0.5)',
        '(default: 30.0)',
    ):
        assert shown.replace(' ', '') in text, shown


@pytest.mark.parametrize(
    ('argv', 'message'),
    [
        (['--outputs', 'heatmap'], 'comma-separated list of segmentation'),
        (['--duration', '0'], 'finite number > 0'),
        (['--timeout', 'nan'], 'finite number'),
    ],
)
def test_cli_bad_values_are_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        _parser().parse_args(['profile', '--image', '/cam', *argv])
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_cli_refuses_to_overwrite_before_attaching(tmp_path: Path) -> None:
    (tmp_path / 'profile.json').write_text('{}')
    args = _parser().parse_args(['profile', '--image', '/cam', '--out', str(tmp_path)])
    with pytest.raises(ConfigError, match='already holds profile.json'):
        profile_cli.run(args)


# -- against a real node --------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def ros_env() -> Iterator[dict[str, str]]:
    pytest.importorskip('rclpy', reason='rclpy not installed (pip install ros-rclpy, see README)')
    from anomaly_seg_ros.ros.harness import isolated_ros_env

    env = isolated_ros_env()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_profile_attaches_to_a_running_node(tiny_model: Path, ros_env: dict[str, str], tmp_path: Path) -> None:
    from anomaly_seg_ros.ros.harness import FrameClient, NodeProcess
    from anomaly_seg_ros.ros.profile import Profiler, write_outputs

    params_file = Path(__file__).resolve().parents[1] / 'config' / 'default.yaml'
    ns = f'/p{uuid.uuid4().hex[:8]}'
    params = {'model': str(tiny_model), 'input_qos': 'reliable', 'diagnostics_period': 0.2}
    with NodeProcess(params_file, ns, ros_env, params) as proc:
        client = FrameClient(ns)
        try:
            assert client.wait_connected(90), proc.log()
            assert client.handshake(60), proc.log()  # the node runs before the profiler attaches
            with pytest.raises(ConfigError, match='no running node'):
                Profiler(f'{ns}/image', '/nowhere', discovery_s=0.3).__enter__()
            with Profiler(f'{ns}/image', ns, timeout_s=1.0, discovery_s=30) as profiler:
                assert profiler.target == f'{ns}/anomaly_seg' and not profiler.notes
                assert profiler.wait_connected(30), proc.log()
                deadline = time.monotonic() + 30  # discovery matches each side on its own: the camera must see us too
                while client.pub.get_subscription_count() < 2 and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert client.pub.get_subscription_count() >= 2, 'the camera publisher never matched the profiler'
                sent = []
                rng = np.random.default_rng(0)
                for _ in range(5):
                    stamp = time.time_ns()
                    client.publish(stamp, rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
                    assert client.wait_for(stamp, 30), proc.log()
                    sent.append(stamp)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:  # every frame matched and the node's stage times seen
                    with profiler.lock:
                        if profiler.stats.completed >= len(sent) and profiler.stats.stages:
                            break
                    time.sleep(0.05)
                stream = io.StringIO()
                profiler.run(0.3, stream, period_s=0.1)
                report = write_outputs(profiler, tmp_path, stream)
            assert proc.alive(), proc.log()  # attached and detached, never restarted
        finally:
            client.close()
    text = stream.getvalue()
    assert 'age p50' in text and 'WARNING' not in text, text
    saved = json.loads((tmp_path / 'profile.json').read_text())
    assert saved['frames'] == report['frames']
    assert saved['frames']['completed'] == len(sent) and saved['frames']['inputs_seen'] == len(sent)
    assert saved['frames']['dropped'] == 0 and saved['frames']['completed_without_input_seen'] == 0
    assert saved['ages_reliable'] is True and saved['clock_skew']['checked'] > 0
    age = saved['age_ms']
    assert age['n'] == len(sent) and 0.0 < age['p50'] <= age['p95'] <= age['max'] < 30_000.0
    assert 0.0 < saved['through_node_ms']['p50'] <= age['max']
    assert {'decode', 'graph', 'publish'} <= set(saved['stages_ms']), saved['stages_ms']
    assert saved['node'] == f'{ns}/anomaly_seg' and (tmp_path / 'profile.png').stat().st_size > 0


def test_cli_parser_namespace_round_trip() -> None:
    args = _parser().parse_args(['profile', '--image', '/cam', '--outputs', 'segmentation', '--duration', '2'])
    assert isinstance(args, argparse.Namespace)
    assert args.outputs == ('segmentation',) and args.duration == 2.0 and args.node == '/'
