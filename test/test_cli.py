"""The `anomaly-seg` command line: light `--help`, every default shown and taken from the options dataclasses."""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from anomaly_seg_ros.cli import COMMANDS, build_parser, main
from anomaly_seg_ros.cli.help_format import HelpFormatter
from anomaly_seg_ros.cli.types import (
    FloatRange,
    IntRange,
    NumberList,
    ScaleArg,
    SizeArg,
    finite_float,
    key_value,
    positive_float,
    positive_int,
)

# Builds every parser and formats every help page in a fresh interpreter, then lists the loaded packages.
_LOADED_BY_HELP = """
import argparse, json, sys
from anomaly_seg_ros.cli import build_parser

def walk(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from walk(sub)

for parser in walk(build_parser()):
    parser.format_help()
print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))
"""


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parser and all its subparsers, depth first."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def _options() -> Iterator[tuple[argparse.ArgumentParser, argparse.Action]]:
    for parser in _parsers(build_parser()):
        for action in parser._actions:
            if action.option_strings and action.help is not argparse.SUPPRESS:
                yield parser, action


def _rendered_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help lines of one option, as `--help` prints them (wide, so nothing wraps)."""
    assert parser.formatter_class is HelpFormatter, parser.prog
    formatter = HelpFormatter(prog=parser.prog, width=400)
    formatter.add_argument(action)
    return formatter.format_help()


def _option(prog_suffix: str, option: str) -> str:
    """The rendered help of one option of the (sub)parser whose prog ends with prog_suffix."""
    return next(
        _rendered_help(parser, action)
        for parser, action in _options()
        if parser.prog.endswith(prog_suffix) and option in action.option_strings
    )


def test_help_imports_neither_torch_nor_rclpy() -> None:
    r = subprocess.run([sys.executable, '-c', _LOADED_BY_HELP], capture_output=True, text=True, check=True)
    loaded = set(json.loads(r.stdout))
    assert 'anomaly_seg_ros' in loaded
    assert not loaded & {'torch', 'rclpy', 'onnxruntime', 'tensorrt', 'rosbags'}


def test_python_m_cli_help() -> None:
    r = subprocess.run(
        [sys.executable, '-X', 'importtime', '-m', 'anomaly_seg_ros.cli', '--help'], capture_output=True, text=True
    )
    assert r.returncode == 0
    assert all(name in r.stdout for name in ('node', 'train', 'import-model', 'evaluate', 'bench-metrics', 'demo'))
    imported = {line.rsplit('|', 1)[-1].strip() for line in r.stderr.splitlines() if line.startswith('import time:')}
    assert not {name.split('.')[0] for name in imported} & {'torch', 'rclpy'}


def test_every_option_has_help() -> None:
    silent = [f'{parser.prog} {action.option_strings[0]}' for parser, action in _options() if not action.help]
    assert not silent


def test_every_default_is_shown() -> None:
    checked = 0
    for parser, action in _options():
        if action.default is None or action.default is argparse.SUPPRESS:
            continue
        assert '(default:' in _rendered_help(parser, action), f'{parser.prog} {action.option_strings[0]}'
        checked += 1
    assert checked > 40


def test_defaults_are_spelled_as_typed() -> None:
    assert '(default: 1024x512)' in _option(' evaluate', '--size')
    assert '(default: 65536)' in _option(' evaluate', '--bins')
    assert '(default: 1/255)' in _option(' import-model', '--scale')
    assert '(default: 0.485,0.456,0.406)' in _option(' import-model', '--mean')
    assert '(default: 1,2)' in _option(' blend', '--objects-per-image')
    assert "(default: the model's own)" in _option(' bench', '--scorer')


def test_every_subcommand_module_is_registered() -> None:
    names = set(next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices)
    expected = {
        'node',
        'train',
        'fit',
        'import-model',
        'blend',
        'evaluate',
        'bag',
        'export',
        'build-engine',
        'bench',
        'bench-metrics',
        'bench-obstacles',
        'profile',
        'demo',
    }
    assert names == expected and len(COMMANDS) == len(expected)


def _defaults_of(cls: type) -> dict[str, object]:
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING and f.init}


def test_evaluate_defaults_are_the_options_defaults() -> None:
    from anomaly_seg_ros.evaluate import EvaluateOptions
    from anomaly_seg_ros.metrics.pixel import DEFAULT_BINS

    args = vars(build_parser().parse_args(['evaluate']))
    args['worst_k'] = args.pop('worst')
    expected = _defaults_of(EvaluateOptions)
    shared = set(args) & set(expected)
    assert {'count', 'seed', 'size', 'anomaly_topic', 'labels_topic', 'mode', 'rate_scale', 'bins'} <= shared
    assert {k: args[k] for k in shared} == {k: expected[k] for k in shared}
    assert args['bins'] == DEFAULT_BINS


def test_train_seg_defaults_are_the_config_defaults() -> None:
    from anomaly_seg_ros.train.seg import SegTrainConfig

    args = build_parser().parse_args(['train', 'seg', '--out', 'x'])
    cfg = SegTrainConfig(out=Path('x'))
    assert args.input_size == (cfg.input_width, cfg.input_height)
    assert args.crop == (cfg.crop_width, cfg.crop_height)
    for name in ('width', 'batch', 'iters', 'lr', 'eval_every', 'seed', 'threads'):
        assert getattr(args, name) == getattr(cfg, name), name


def test_import_model_defaults_are_the_options_defaults() -> None:
    from anomaly_seg_ros.importer import ImportOptions

    args = vars(build_parser().parse_args(['import-model', '--onnx', 'x.onnx']))
    expected = _defaults_of(ImportOptions)
    for name in ('classes', 'input_size', 'channel_order', 'scale', 'mean', 'std', 'void_channel', 'scorer'):
        assert args[name] == expected[name], name


def test_blend_defaults_are_the_config_defaults() -> None:
    from anomaly_seg_ros.data.blend import BlendConfig

    args = build_parser().parse_args(['blend', '--images', 'i', '--objects', 'o', '--out', 'x'])
    cfg = BlendConfig()
    assert args.in_dist_prob == cfg.in_distribution_prob
    assert (not args.no_motion_blur, not args.no_depth_blur) == (cfg.motion_blur, cfg.depth_blur)
    for name in ('objects_per_image', 'scale_range', 'horizon', 'glow_prob', 'color_noise', 'seed'):
        assert getattr(args, name) == getattr(cfg, name), name


def test_size_arg() -> None:
    size = SizeArg()
    assert size('1024x512') == (1024, 512) and size('64X32') == (64, 32)
    assert size.show((2048, 1024)) == '2048x1024'
    with pytest.raises(argparse.ArgumentTypeError, match='expected WIDTHxHEIGHT'):
        size('1024')
    with pytest.raises(argparse.ArgumentTypeError, match=r'too small \(min 32x32\)'):
        size('16x512')


def test_number_list() -> None:
    pair = NumberList(float, (0.05, 0.25))
    assert pair('0.1,0.5') == (0.1, 0.5) and NumberList(int, (1, 2))('3,4') == (3, 4)
    for bad in ('0.1', '0.1,0.2,0.3', 'a,b', ''):
        with pytest.raises(
            argparse.ArgumentTypeError, match=f'expected 2 comma-separated numbers like 0.05,0.25, got {bad!r}'
        ):
            pair(bad)
    with pytest.raises(argparse.ArgumentTypeError):
        NumberList(int, (1, 2))('1.5,2')


def test_scale_arg() -> None:
    scale = ScaleArg()
    assert scale('1/255') == pytest.approx(1 / 255) and scale('0.5') == 0.5 and scale('1') == 1.0
    assert (scale.show(1 / 255), scale.show(1.0), scale.show(0.5), scale.show(0.3)) == ('1/255', '1', '1/2', '0.3')
    for bad in ('1/0', 'x', '1/2/3'):
        with pytest.raises(argparse.ArgumentTypeError, match='expected a number like 1 or 1/255'):
            scale(bad)


def test_key_value() -> None:
    assert key_value('width=16') == ('width', 16)
    assert key_value('name=a=b') == ('name', 'a=b')
    with pytest.raises(argparse.ArgumentTypeError, match='expected KEY=VALUE'):
        key_value('width')
    assert key_value('sizes=[1, 2]') == ('sizes', [1, 2]) and key_value('on=true') == ('on', True)
    for bad in (
        'width=!!python/object:os.system',
        'width=!!python/object/apply:os.system ["true"]',
        'w=[1,',
        'd=2020-01-01',
    ):
        with pytest.raises(argparse.ArgumentTypeError, match=r'VALUE must be plain YAML'):
            key_value(bad)
    with pytest.raises(argparse.ArgumentTypeError, match='with a KEY'):
        key_value('=3')


def test_int_range() -> None:
    assert positive_int('1') == 1 and IntRange(2, 4)('4') == 4
    for kind, bad, words in (
        (positive_int, '0', 'a whole number >= 1'),
        (positive_int, '1.5', 'a whole number >= 1'),
        (IntRange(2, 4), '5', r'a whole number in \[2, 4\]'),
        (IntRange(2, 4), '1', r'a whole number in \[2, 4\]'),
    ):
        with pytest.raises(argparse.ArgumentTypeError, match=f"expected {words}, got '{bad}'"):
            kind(bad)


def test_float_range() -> None:
    assert finite_float('-2.5') == -2.5 and positive_float('1e-9') == 1e-9 and FloatRange(1e-3, 1e6)('1e6') == 1e6
    for kind, bad, words in (
        (finite_float, 'nan', 'a finite number'),
        (finite_float, '-inf', 'a finite number'),
        (finite_float, 'x', 'a finite number'),
        (positive_float, '0', 'a finite number > 0'),
        (positive_float, 'NaN', 'a finite number > 0'),
        (FloatRange(1e-3, 1e6), '1e10', r'a finite number in \[0.001, 1e\+06\]'),
        (FloatRange(hi=1.0), '2', 'a finite number <= 1'),
    ):
        with pytest.raises(argparse.ArgumentTypeError, match=f"expected {words}, got '{bad}'"):
            kind(bad)


def test_bad_argument_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(['evaluate', '--size', '10x10'])
    assert exc.value.code == 2 and "size '10x10' too small" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2


def test_ros_args_only_for_node(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(['bench-metrics', '--ros-args', '-p', 'x:=1']) == 2
    assert '--ros-args only applies to `node`, not `bench-metrics`' in capsys.readouterr().err


def test_domain_error_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(['bag', 'from-dataset', '--format', 'cityscapes', '--out', str(tmp_path / 'b')]) == 2
    assert 'anomaly-seg bag: error: bag from-dataset: --format cityscapes needs --root' in capsys.readouterr().err
