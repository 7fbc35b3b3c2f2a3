"""launch_ros is not on PyPI, so the launch file is checked statically: it parses, starts the installed
executable with an existing params file, and does not re-declare node parameters."""

import ast
import configparser
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / 'launch' / 'anomaly_seg.launch.py'


def _node_call(tree: ast.AST) -> ast.Call:
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, 'id', '') == 'Node']
    assert len(calls) == 1
    return calls[0]


def _kw(call: ast.Call, name: str) -> ast.expr:
    return next(k.value for k in call.keywords if k.arg == name)


def test_launch_parses_and_names_installed_executable() -> None:
    tree = ast.parse(LAUNCH.read_text())
    node = _node_call(tree)
    assert ast.literal_eval(_kw(node, 'package')) == 'anomaly_seg_ros'
    executable = ast.literal_eval(_kw(node, 'executable'))
    setup = (REPO / 'setup.py').read_text()
    assert re.search(rf"'{executable} = anomaly_seg_ros\.ros\.node:main'", setup)
    # ros2 launch finds executables in lib/<package>: setup.cfg must send scripts there.
    cfg = configparser.ConfigParser()
    cfg.read(REPO / 'setup.cfg')
    assert cfg['install']['install_scripts'] == '$base/lib/anomaly_seg_ros'
    assert any(isinstance(n, ast.FunctionDef) and n.name == 'generate_launch_description' for n in ast.walk(tree))


def test_launch_params_file_exists_and_is_installed() -> None:
    src = LAUNCH.read_text()
    m = re.search(r"get_package_share_directory\('anomaly_seg_ros'\), '(\w+)', '([\w.]+)'", src)
    assert m, 'default params path not found in launch file'
    assert (REPO / m.group(1) / m.group(2)).is_file()
    setup = (REPO / 'setup.py').read_text()
    assert 'share/{PACKAGE}/config' in setup and 'share/{PACKAGE}/launch' in setup


def test_launch_does_not_redeclare_parameters() -> None:
    node = _node_call(ast.parse(LAUNCH.read_text()))
    params = _kw(node, 'parameters')
    assert isinstance(params, ast.List) and len(params.elts) == 1
    assert not isinstance(params.elts[0], ast.Dict)
