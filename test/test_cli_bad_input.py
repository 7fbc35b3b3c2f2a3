"""Bad input to `anomaly-seg`: one clear line and a known exit code, refused before any work, nothing overwritten."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch

from anomaly_seg_ros.cli import main
from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.nets import build_net
from anomaly_seg_ros.train.seg import SegTrainConfig


def _must_not_run(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError('the run started although its input was refused')


def _exit_code(argv: list[str]) -> int | str | None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code


# --- evaluate --out -------------------------------------------------------------------------------------------


def _evaluate_argv(tiny_model: Path, out: Path, *extra: str) -> list[str]:
    return ['evaluate', '--dataset', 'synthetic', '--count', '2', '--size', '128x64', '--model', str(tiny_model)] + [
        '--out',
        str(out),
        *extra,
    ]


def test_evaluate_refuses_to_replace_a_report(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / 'r'
    out.mkdir()
    (out / 'report.json').write_bytes(b'{"earlier": 1}')
    monkeypatch.setattr('anomaly_seg_ros.evaluate.run_evaluate', _must_not_run)
    assert main(_evaluate_argv(tiny_model, out)) == 2
    err = capsys.readouterr().err
    assert f'--out {out} already holds report.json; pass --overwrite' in err and 'Traceback' not in err
    assert (out / 'report.json').read_bytes() == b'{"earlier": 1}'
    assert sorted(p.name for p in out.iterdir()) == ['report.json']


def test_evaluate_overwrite_replaces_the_report(
    tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / 'r'
    out.mkdir()
    (out / 'report.json').write_bytes(b'{"earlier": 1}')
    assert main(_evaluate_argv(tiny_model, out, '--overwrite')) == 0
    assert json.loads((out / 'report.json').read_text())['evaluated']['frames_evaluated'] == 2
    assert (out / 'report.html').is_file()
    assert not [p for p in out.iterdir() if p.name.startswith('.anomaly-seg-write-test-')]


def test_evaluate_out_is_a_file(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr('anomaly_seg_ros.evaluate.run_evaluate', _must_not_run)
    target = tmp_path / 'file'
    target.write_bytes(b'keep')
    assert main(_evaluate_argv(tiny_model, target)) == 2
    assert f'--out {target} is a file, not a folder' in capsys.readouterr().err
    assert main(_evaluate_argv(tiny_model, target / 'sub')) == 2
    assert f'cannot create --out {target / "sub"}' in capsys.readouterr().err
    assert target.read_bytes() == b'keep'


def test_evaluate_out_not_writable(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The probe write fails (a read-only mount; faked, because root writes into a 0o555 folder)."""
    monkeypatch.setattr('anomaly_seg_ros.evaluate.run_evaluate', _must_not_run)

    def read_only(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, 'Permission denied')

    monkeypatch.setattr(tempfile, 'mkstemp', read_only)
    assert main(_evaluate_argv(tiny_model, tmp_path / 'ro')) == 2
    err = capsys.readouterr().err
    assert f'--out {tmp_path / "ro"} is not writable: Permission denied' in err and 'Traceback' not in err


@pytest.mark.skipif(not hasattr(os, 'geteuid') or os.geteuid() == 0, reason='root writes into read-only folders')
def test_evaluate_out_read_only_folder(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr('anomaly_seg_ros.evaluate.run_evaluate', _must_not_run)
    out = tmp_path / 'ro'
    out.mkdir()
    out.chmod(0o555)
    try:
        assert main(_evaluate_argv(tiny_model, out)) == 2
    finally:
        out.chmod(0o755)
    assert 'is not writable' in capsys.readouterr().err


# --- train seg --out ------------------------------------------------------------------------------------------

TRAIN_SMALL = ['--width', '8', '--input-size', '128x64', '--crop', '96x48', '--batch', '2', '--iters', '2']


def _model_folder(out: Path) -> dict[str, bytes]:
    out.mkdir(parents=True)
    files = {'model.pt': b'old weights', 'model.yaml': b'name: old\n', 'checkpoint.pt': b'old checkpoint'}
    for name, data in files.items():
        (out / name).write_bytes(data)
    return files


def test_train_refuses_to_replace_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / 'm'
    files = _model_folder(out)
    monkeypatch.setattr('anomaly_seg_ros.train.seg.train_segmentation', _must_not_run)
    assert main(['train', 'seg', '--out', str(out), *TRAIN_SMALL]) == 2
    err = capsys.readouterr().err
    assert f'--out {out} already holds model.yaml, model.pt, checkpoint.pt; pass --overwrite' in err
    assert {name: (out / name).read_bytes() for name in files} == files


def test_train_resume_and_overwrite_are_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / 'm'
    _model_folder(out)
    calls: list[bool] = []

    def fake_train(cfg: SegTrainConfig, train: Any, val: Any, *, resume: bool, description: str) -> dict:
        calls.append(resume)
        return {'history': []}

    monkeypatch.setattr('anomaly_seg_ros.train.seg.train_segmentation', fake_train)
    monkeypatch.setattr('anomaly_seg_ros.cli.train._materialise', lambda world, desc: [])
    assert main(['train', 'seg', '--out', str(out), '--resume', *TRAIN_SMALL]) == 0
    assert main(['train', 'seg', '--out', str(out), '--overwrite', *TRAIN_SMALL]) == 0
    assert calls == [True, False]


def test_train_resume_without_checkpoint_fails_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr('anomaly_seg_ros.cli.train._materialise', _must_not_run)
    assert main(['train', 'seg', '--out', str(tmp_path / 'new'), '--resume', *TRAIN_SMALL]) == 2
    assert '--resume given but no checkpoint there' in capsys.readouterr().err
    assert not (tmp_path / 'new').exists()


def test_train_out_is_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr('anomaly_seg_ros.cli.train._materialise', _must_not_run)
    (tmp_path / 'f').write_bytes(b'keep')
    assert main(['train', 'seg', '--out', str(tmp_path / 'f'), *TRAIN_SMALL]) == 2
    assert 'is a file, not a folder' in capsys.readouterr().err


# --- numbers checked at parse time ----------------------------------------------------------------------------

PARSE_ERRORS = [
    (['evaluate', '--rate-scale', '0'], '--rate-scale', 'a finite number > 0'),
    (['evaluate', '--rate-scale', '-2'], '--rate-scale', 'a finite number > 0'),
    (['evaluate', '--bins', '4000000000'], '--bins', 'a whole number in [2, 16777216]'),
    (['evaluate', '--bins', '0'], '--bins', 'a whole number in [2, 16777216]'),
    (['evaluate', '--count', '0'], '--count', 'a whole number >= 1'),
    (['evaluate', '--limit', '-1'], '--limit', 'a whole number >= 1'),
    (['evaluate', '--threshold', 'nan'], '--threshold', 'a finite number'),
    (['evaluate', '--late-ms', 'inf'], '--late-ms', 'a finite number > 0'),
    (['bag', 'from-dataset', '--format', 'synthetic', '--out', 'b', '--rate', '1e10'], '--rate', '[0.001, 1e+06]'),
    (['bag', 'from-dataset', '--format', 'synthetic', '--out', 'b', '--rate', '1e-12'], '--rate', '[0.001, 1e+06]'),
    (['bag', 'from-dataset', '--format', 'synthetic', '--out', 'b', '--count', '0'], '--count', '>= 1'),
    (['bag', 'from-dataset', '--format', 'synthetic', '--out', 'b', '--limit', '0'], '--limit', '>= 1'),
    (['blend', '--images', 'i', '--objects', 'o', '--out', 'x', '--limit', '0'], '--limit', '>= 1'),
    (['bench', '--frames', '0'], '--frames', '>= 1'),
    (['bench-metrics', '--frames', '-5'], '--frames', '>= 1'),
    (['demo', '--frames', '0'], '--frames', '>= 1'),
    (['train', 'seg', '--out', 'x', '--lr', 'nan'], '--lr', 'a finite number > 0'),
    (['train', 'seg', '--out', 'x', '--lr', '-1'], '--lr', 'a finite number > 0'),
    (['train', 'seg', '--out', 'x', '--batch', '0'], '--batch', '>= 1'),
    (['train', 'seg', '--out', 'x', '--iters', '0'], '--iters', '>= 1'),
    (['import-model', '--onnx', 'x.onnx', '--arch-arg', 'width=!!python/object:os.system'], '--arch-arg', 'plain'),
    (['import-model', '--onnx', 'x.onnx', '--arch-arg', 'width=[1,'], '--arch-arg', 'plain YAML'),
]


@pytest.mark.parametrize(('argv', 'option', 'bound'), PARSE_ERRORS, ids=[' '.join(a[0][-2:]) for a in PARSE_ERRORS])
def test_bad_number_is_a_usage_error(
    argv: list[str], option: str, bound: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err
    assert f'argument {option}: ' in err and bound in err, err
    assert 'Traceback' not in err


def test_rate_bounds_keep_stamps_distinct_and_in_range() -> None:
    """The --rate bounds hold what their comment says: stamps 1 ns apart or more, seconds fitting uint32."""
    from anomaly_seg_ros.cli.bag import STAMP_RATE_HZ
    from anomaly_seg_ros.stamps import frame_stamp, split_ns

    fast, slow = STAMP_RATE_HZ('1e6'), STAMP_RATE_HZ('1e-3')
    assert frame_stamp(1, fast) - frame_stamp(0, fast) >= 1
    assert split_ns(frame_stamp(2_000_000, slow))[0] < 2**32


# --- BatchNorm cannot train on one value per channel ----------------------------------------------------------


def test_train_batch_one_small_crop_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr('anomaly_seg_ros.cli.train._materialise', _must_not_run)
    argv = ['train', 'seg', '--out', str(tmp_path / 'm'), '--width', '8', '--input-size', '128x64']
    assert main([*argv, '--crop', '48x48', '--batch', '1']) == 2
    err = capsys.readouterr().err
    assert '--batch 1 with --crop 48x48' in err and 'BatchNorm' in err
    assert not (tmp_path / 'm').exists()


@pytest.mark.parametrize(('width', 'height'), [(32, 32), (49, 49), (64, 32), (32, 50), (49, 64), (96, 48)])
def test_batchnorm_rule_matches_the_net(width: int, height: int) -> None:
    """validate() refuses exactly the crops on which icnet_small fails to train at batch 1."""
    net = build_net('icnet_small', 19, width=8).train()
    try:
        net(torch.zeros(1, 3, height, width))
        trains = True
    except ValueError as e:
        assert 'Expected more than 1 value per channel' in str(e)
        trains = False
    cfg = SegTrainConfig(out=Path('x'), width=8, input_height=64, input_width=128, batch=1)
    cfg.crop_height, cfg.crop_width = height, width
    if trains:
        cfg.validate()
    else:
        with pytest.raises(ConfigError, match=f'--batch 1 with --crop {width}x{height}'):
            cfg.validate()
    cfg.batch = 2
    cfg.validate()


# --- any other exception: one line, exit 1; Ctrl-C: 130 ------------------------------------------------------


def _raising(error: BaseException) -> Any:
    def run(*args: Any, **kwargs: Any) -> Any:
        raise error

    return run


def test_unexpected_error_is_one_line(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr('anomaly_seg_ros.evaluate.run_evaluate', _raising(OSError(28, 'No space left on device')))
    assert main(_evaluate_argv(tiny_model, tmp_path / 'r')) == 1
    err = capsys.readouterr().err
    assert err == 'anomaly-seg evaluate: OSError: [Errno 28] No space left on device (--debug shows the traceback)\n'


def test_debug_prints_the_traceback(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr('anomaly_seg_ros.eval.bench_metrics.run_metrics_bench', _raising(RuntimeError('bad\nstate')))
    assert main(['--debug', 'bench-metrics', '--frames', '1']) == 1
    err = capsys.readouterr().err
    assert 'Traceback (most recent call last)' in err
    assert err.rstrip().splitlines()[-1] == 'anomaly-seg bench-metrics: RuntimeError: bad state'


def test_keyboard_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr('anomaly_seg_ros.eval.bench_metrics.run_metrics_bench', _raising(KeyboardInterrupt()))
    assert main(['bench-metrics', '--frames', '1']) == 130
    assert capsys.readouterr().err == 'anomaly-seg bench-metrics: interrupted\n'
