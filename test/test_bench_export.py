"""`anomaly-seg export` (the fused graph as one checked ONNX file) and `anomaly-seg bench` (backends x scorers x
sizes, interleaved, against eager torch), on the tiny model with small frames."""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from anomaly_seg_ros import bench
from anomaly_seg_ros.backends import backend_capabilities
from anomaly_seg_ros.cli import COMMANDS, main
from anomaly_seg_ros.cli import bench as bench_cli
from anomaly_seg_ros.cli import export as export_cli
from anomaly_seg_ros.cli.help_format import CommandParser, HelpFormatter
from anomaly_seg_ros.config import load_model_config
from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.pipeline import Result

cli_main = importlib.import_module('anomaly_seg_ros.cli.main')  # the module: the package's `main` is the function
TRT_REASON = backend_capabilities()['tensorrt'].available


@pytest.fixture(autouse=True)
def cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Exports go to a cache of this test module, never the user's."""
    root = tmp_path_factory.getbasetemp() / 'bench-export-cache'
    monkeypatch.setenv('ANOMALY_SEG_CACHE', str(root))
    return root


def _parse(module: object, argv: list[str]) -> argparse.Namespace:
    """Parse through the subcommand module's own parser (what cli/main.py builds for it)."""
    parser = CommandParser(prog='anomaly-seg')
    module.add_parser(parser.add_subparsers(dest='command'))  # type: ignore[attr-defined]
    return parser.parse_args(argv)


def _export(argv: list[str]) -> int:
    rc: int = export_cli.run(_parse(export_cli, ['export', *argv]))
    return rc


def _io(values: Any) -> list[tuple[str, int, list[int]]]:
    return [(v.name, v.type.tensor_type.elem_type, [d.dim_value for d in v.type.tensor_type.shape.dim]) for v in values]


def _graph_io(path: Path) -> tuple[list[tuple[str, int, list[int]]], list[tuple[str, int, list[int]]]]:
    model = onnx.load(str(path))
    return _io(model.graph.input), _io(model.graph.output)


# --- export -------------------------------------------------------------------------------------------------


def test_export_writes_a_checked_graph(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / 'sub' / 'pipeline.onnx'
    assert _export(['--model', str(tiny_model), '--out', str(out), '--size', '256x128', '--aux', 'max_softmax']) == 0
    onnx.checker.check_model(str(out))
    inputs, outputs = _graph_io(out)
    u8, f32 = onnx.TensorProto.UINT8, onnx.TensorProto.FLOAT
    assert inputs == [('frame', u8, [1, 128, 256, 3])]
    assert outputs == [
        ('labels', u8, [1, 128, 256]),
        ('score', f32, [1, 128, 256]),
        ('max_softmax', f32, [1, 128, 256]),
    ]
    text = capsys.readouterr().out
    assert 'ai.onnx opset 17' in text and 'input  frame' in text and 'output max_softmax' in text
    agreement = float(text.split('labels agree on ')[1].split(' %')[0])
    assert agreement >= 99.9
    assert f'wrote {out}: ' in text and ' MB' in text
    assert sorted(p.name for p in out.parent.iterdir()) == ['pipeline.onnx']  # no temporary file left behind


def test_export_default_size_is_the_models_input(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / 'p.onnx'
    assert _export(['--model', str(tiny_model), '--out', str(out), '--frames', '1']) == 0
    inputs, outputs = _graph_io(out)
    spec = load_model_config(tiny_model).input
    assert inputs[0][2] == [1, spec.height, spec.width, 3]
    assert [o[0] for o in outputs] == ['labels', 'score']


def test_export_refuses_to_overwrite(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / 'p.onnx'
    out.write_text('keep me')
    with pytest.raises(ConfigError, match=r'already exists; pass --overwrite'):
        _export(['--model', str(tiny_model), '--out', str(out)])
    assert out.read_text() == 'keep me'
    with pytest.raises(ConfigError, match='is a folder'):
        _export(['--model', str(tiny_model), '--out', str(tmp_path)])
    assert _export(['--model', str(tiny_model), '--out', str(out), '--overwrite', '--frames', '1']) == 0
    onnx.checker.check_model(str(out))


def test_export_parity_failure_exits_1_and_writes_nothing(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench, 'LABEL_AGREEMENT', 1.01)  # no graph can agree on 101 % of pixels
    out = tmp_path / 'p.onnx'
    assert _export(['--model', str(tiny_model), '--out', str(out), '--frames', '1']) == 1
    err = capsys.readouterr().err
    assert 'parity check failed: labels agree on' in err and f'nothing was written to {out}' in err
    assert list(tmp_path.iterdir()) == []


def test_export_unknown_aux_names_it(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown scorer 'nope'"):
        _export(['--model', str(tiny_model), '--out', str(tmp_path / 'p.onnx'), '--aux', 'nope'])
    assert list(tmp_path.iterdir()) == []


def _with_external_weights(src: Path, dst: Path, location: str) -> Path:
    """`src` re-saved with every initializer in one external file beside `dst` (as a > 2 GB graph must be)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(onnx.load(str(src)), str(dst), save_as_external_data=True, location=location, size_threshold=0)
    return dst


def test_export_of_an_imported_onnx_net(tiny_model: Path, tmp_path: Path) -> None:
    """An imported ONNX file (weights in an external file) exports as one fused graph too."""
    from anomaly_seg_ros.backends import load_torch_net
    from anomaly_seg_ros.backends.export import export_onnx
    from anomaly_seg_ros.importer import ImportOptions, import_model

    spec = load_model_config(tiny_model).input
    plain = export_onnx(load_torch_net(load_model_config(tiny_model)), spec.height, spec.width, tmp_path / 'n.onnx')
    user = _with_external_weights(plain, tmp_path / 'user' / 'net.onnx', 'net.weights')
    folder = import_model(user, 'onnx', ImportOptions(name='imported'), tmp_path / 'models')
    out = tmp_path / 'out' / 'p.onnx'
    assert _export(['--model', str(folder), '--out', str(out), '--size', '200x100', '--frames', '1']) == 0
    onnx.checker.check_model(str(out))
    assert _graph_io(out)[0] == [('frame', onnx.TensorProto.UINT8, [1, 100, 200, 3])]


def test_export_copies_external_data_files(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A fused graph whose weights live in external files is written with them, at the same relative paths."""
    from anomaly_seg_ros.backends import GraphSource

    real = GraphSource.onnx

    def external(self: GraphSource, frame_hw: tuple[int, int]) -> Path:
        return _with_external_weights(real(self, frame_hw), tmp_path / 'cache' / 'g.onnx', 'g.weights')

    monkeypatch.setattr(GraphSource, 'onnx', external)
    out = tmp_path / 'out' / 'p.onnx'
    assert _export(['--model', str(tiny_model), '--out', str(out), '--frames', '1']) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ['g.weights', 'p.onnx']
    onnx.checker.check_model(str(out))
    assert 'with 1 external-data file(s)' in capsys.readouterr().out
    out.unlink()
    with pytest.raises(ConfigError, match=r'external files, and .*g\.weights already exist'):
        _export(['--model', str(tiny_model), '--out', str(out)])
    assert not out.exists()


@pytest.mark.parametrize(
    ('size', 'message'),
    [('10x10', 'too small'), ('9000x100', 'too large (max 8192 per side)'), ('big', 'expected WIDTHxHEIGHT')],
)
def test_export_bad_size_is_a_usage_error(size: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        _parse(export_cli, ['export', '--out', 'x.onnx', '--size', size])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert '--size' in err and message in err


def test_export_through_main(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Errors map to exit codes as for every command (registered here if cli/main.py does not list it yet)."""
    if export_cli not in COMMANDS:
        monkeypatch.setattr(cli_main, 'COMMANDS', (*COMMANDS, export_cli))
    out = tmp_path / 'p.onnx'
    out.write_text('keep me')
    assert main(['export', '--model', str(tiny_model), '--out', str(out)]) == 2
    assert 'anomaly-seg export: error: export: --out' in capsys.readouterr().err and out.read_text() == 'keep me'
    monkeypatch.setattr(bench, 'SCORE_ATOL', -1.0)  # scores can never be within a negative bound
    assert main(['export', '--model', str(tiny_model), '--out', str(out), '--overwrite', '--frames', '1']) == 1
    assert 'parity check failed' in capsys.readouterr().err and out.read_text() == 'keep me'


def test_help_shows_every_default() -> None:
    for module in (export_cli, bench_cli):
        parser = CommandParser(prog='anomaly-seg')
        sub = module.add_parser(parser.add_subparsers(dest='command'))  # type: ignore[attr-defined]
        for action in sub._actions:
            if action.option_strings and action.dest != 'help' and action.default is not None:
                formatter = HelpFormatter(prog=sub.prog, width=400)
                formatter.add_argument(action)
                assert '(default: ' in formatter.format_help(), f'{sub.prog} {action.option_strings[0]}'
        text = ' '.join(sub.format_help().split())
        assert {
            export_cli: "--size SIZE camera frame size WIDTHxHEIGHT (default: the model's input size)",
            bench_cli: '(default: 1024x512,2048x1024)',
        }[module] in text


# --- bench: selection and the interleaved loop ------------------------------------------------------------------


def test_scorer_selection_skips_what_the_model_cannot_run(tiny_model: Path) -> None:
    cfg = load_model_config(tiny_model)
    names, skipped = bench.select_scorers('all', cfg)
    assert 'entropy' in names and 'void' not in names
    reasons = {s.what: s.reason for s in skipped}
    assert set(reasons) == {'scorer flow', 'scorer sml', 'scorer void'}, reasons
    assert 'void' in reasons['scorer void'] and 'void_channel' in reasons['scorer void']
    # the fitted scorers are listed with what is missing, not silently dropped
    assert "fitted artefact 'flow'" in reasons['scorer flow'] and "fitted artefact 'stats'" in reasons['scorer sml']
    assert bench.select_scorers('', cfg) == (['entropy'], [])
    with pytest.raises(ConfigError, match='unknown scorer nope; available: all, entropy'):
        bench.select_scorers('entropy,nope', cfg)


def test_backend_selection_always_runs_the_reference() -> None:
    variants, skipped = bench.select_variants('onnxruntime', 'cpu')
    assert variants == [('torch', 'fp32'), ('onnxruntime', 'fp32')] and skipped == []
    with pytest.raises(ConfigError, match='unknown backend bogus; available: all, torch, onnxruntime, tensorrt'):
        bench.select_variants('torch,bogus', 'cpu')


@pytest.mark.skipif(TRT_REASON is None, reason='TensorRT is available here')
def test_unavailable_backend_is_listed_with_its_reason() -> None:
    variants, skipped = bench.select_variants('all', 'cpu')
    assert ('tensorrt', 'fp16') not in variants
    assert bench.Skipped('backend tensorrt', str(TRT_REASON)) in skipped


class _FakePipe:
    """Returns fixed maps and records the order of calls; `flip` pixels get another label than the reference."""

    def __init__(self, name: str, calls: list[str], flip: int = 0, offset: float = 0.0) -> None:
        self.name, self.calls, self.flip, self.offset = name, calls, flip, offset
        self.backend = object()

    def __call__(self, frame: np.ndarray) -> Result:
        self.calls.append(self.name)
        labels = np.zeros(frame.shape[:2], np.uint8)
        labels.flat[: self.flip] = 1
        score = np.full(frame.shape[:2], 0.5 + self.offset, np.float32)
        return Result(labels, score, (0.0, 1.0), timings={'input': 0.0, 'graph': 1.0, 'total': 1.0})


def test_timed_frames_are_interleaved_and_compared_with_the_reference() -> None:
    calls: list[str] = []
    size = (10, 10)
    ref = bench.Case('torch', 'fp32', 'entropy', size, _FakePipe('ref', calls))  # type: ignore[arg-type]
    ort = bench.Case('onnxruntime', 'fp32', 'entropy', size, _FakePipe('ort', calls, 3, 2e-3))  # type: ignore[arg-type]
    other = bench.Case('x', 'fp16', 'entropy', size, _FakePipe('x', calls))  # type: ignore[arg-type]
    frames = [np.zeros((10, 10, 3), np.uint8)] * 2
    bench._timed_rounds([ref, ort, other], {size: frames}, 4)
    rounds = [calls[i : i + 3] for i in range(0, 12, 3)]
    assert rounds == [['ref', 'ort', 'x'], ['ort', 'x', 'ref'], ['x', 'ref', 'ort'], ['ref', 'ort', 'x']]
    assert all(len(c.times['total']) == 4 for c in (ref, ort, other))
    assert ort.agree_px == 4 * 97 and ort.total_px == 4 * 100 and ort.max_diff == pytest.approx(2e-3, rel=1e-4)
    assert bench.parity_problem(ort.agreement, ort.max_diff) == (
        'labels agree on 97.000 % of pixels (< 99.9 %); scores differ by up to 0.002 (> 0.001)'
    )
    assert other.agreement == 1.0 and other.max_diff == 0.0 and bench.parity_problem(1.0, 0.0) is None
    assert ref.speedup == 1.0 and bench.parity_problem(1.0, float('nan')) is not None


# --- bench: the command ---------------------------------------------------------------------------------------


def test_bench_prints_tables_and_writes_json(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / 'bench.json'
    argv = ['bench', '--model', str(tiny_model), '--sizes', '256x128', '--frames', '2', '--no-ros', '--json', str(out)]
    assert bench_cli.run(_parse(bench_cli, argv)) == 0
    text = capsys.readouterr().out
    assert 'machine: ' in text and 'cores usable' in text and 'torch ' in text and 'onnxruntime ' in text
    assert 'speed-up vs eager torch' in text and 'labels agree' in text
    e2e = [line for line in text.splitlines() if line.startswith('| ') and '256x128' in line]
    torch_row = next(line for line in e2e if line.startswith('| torch fp32 | entropy | 256x128 | '))
    ort_row = next(line for line in e2e if line.startswith('| onnxruntime fp32 | entropy | 256x128 | '))
    assert ' 1.00x | reference |' in torch_row and ' % |' in ort_row
    if TRT_REASON is not None:
        assert f'not run: backend tensorrt: {TRT_REASON}' in text
    figures = json.loads(out.read_text())
    assert figures['reference'] == 'torch fp32' and figures['sizes'] == ['256x128'] and figures['frames'] == 2
    assert figures['machine']['cores_usable'] >= 1 and figures['machine']['onnxruntime']
    rows = {(r['backend'], r['scorer'], r['size']): r for r in figures['results']}
    assert set(rows) == {('torch', 'entropy', '256x128'), ('onnxruntime', 'entropy', '256x128')}
    t, o = rows[('torch', 'entropy', '256x128')], rows[('onnxruntime', 'entropy', '256x128')]
    assert (
        t['reference'] and t['speedup_vs_reference'] == 1.0 and set(t['profiled_stages_ms']) == {'pre', 'net', 'post'}
    )
    assert not o['reference'] and o['profiled_stages_ms'] == {} and o['parity_ok']
    assert o['label_agreement'] >= 0.999 and o['max_score_diff'] <= 1e-3 and o['speedup_vs_reference'] > 0
    for r in (t, o):
        assert set(r['timings_ms']) == {'input', 'graph', 'total'}
        assert set(r['timings_ms']['total']) == {'p50', 'p95', 'p99'} and r['build_ms'] > 0
    if TRT_REASON is not None:
        assert {'what': 'backend tensorrt', 'reason': TRT_REASON} in figures['skipped']
    assert set(figures['data_tools_ms']) == {'synthetic frame', 'blend_sample'}
    with pytest.raises(ConfigError, match='already exists; pass --overwrite'):
        bench_cli.run(_parse(bench_cli, argv))


@pytest.mark.parametrize('text', ['256', '256x128,', '16x16', ''])
def test_bench_sizes_are_checked(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    if text == '256x128,':
        assert _parse(bench_cli, ['bench', '--sizes', text]).sizes == ((256, 128),)
        return
    with pytest.raises(SystemExit):
        _parse(bench_cli, ['bench', '--sizes', text])
    assert '--sizes' in capsys.readouterr().err
