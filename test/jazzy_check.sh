#!/usr/bin/env bash
# The test suite on ROS 2 Jazzy (rclpy 7.1, Fast DDS 2.14) with numpy 1.26, the second supported environment
# next to .venv's Kilted + numpy 2. Run from the repository root (no ROS install needed, 2 cores: about 3 min):
#     bash test/jazzy_check.sh [PYTEST_ARGS...]
# It creates .venv-jazzy (JAZZY_VENV overrides) from requirements-jazzy.txt when it is missing or older than
# requirements-jazzy.txt / setup.py (the Makefile's $(BIN)/.installed rule), prints the rclpy distribution and
# numpy it runs, then runs pytest: the whole suite by default (numpy 1.x matters for the core as much as for
# the node), or the given arguments instead (e.g. test/test_node.py). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv="${JAZZY_VENV:-.venv-jazzy}"
bin="$venv/bin"
python="${PYTHON:-python3}"

# A sourced ROS install or a parent process of another venv must not leak in: the ROS wheels' bootstrapper
# re-executes python with its own LD_LIBRARY_PATH unless _ROS_WHEELS_BOOTSTRAP_COMPLETE is already set, and
# ROS_DISTRO would override the distribution the harness reads from the rclpy wheel.
unset PYTHONPATH LD_LIBRARY_PATH _ROS_WHEELS_BOOTSTRAP_COMPLETE ROS_DISTRO ROS_VERSION ROS_PYTHON_VERSION \
    AMENT_PREFIX_PATH CMAKE_PREFIX_PATH COLCON_PREFIX_PATH RMW_IMPLEMENTATION

stamp="$bin/.installed"
if [[ ! -f "$stamp" || requirements-jazzy.txt -nt "$stamp" || setup.py -nt "$stamp" ]]; then
    "$python" -m venv "$venv"
    "$bin/pip" install -q --upgrade pip
    "$bin/pip" install -q torch==2.13.0 # pinned, first: an open torch requirement pulls GBs of CUDA wheels
    "$bin/pip" install -q -r requirements-jazzy.txt
    "$bin/pip" install -q --no-deps -e .
    touch "$stamp"
fi

"$bin/python" - <<'PY'
import importlib.metadata as md

import numpy
import rclpy  # noqa: F401 - fails here, plainly, when the ROS wheels do not load

from anomaly_seg_ros.ros.harness import ros_distro

distro = ros_distro()
print(f'ROS 2 {distro or "unknown"}: rclpy {md.version("ros-rclpy")}, rmw_fastrtps_cpp '
      f'{md.version("ros-rmw-fastrtps-cpp")}; numpy {numpy.__version__}')
assert distro == 'jazzy', f'{distro!r} is not jazzy: is {md.version("ros-rclpy")} the Jazzy rclpy?'
assert numpy.__version__.startswith('1.'), f'numpy {numpy.__version__} is not 1.x'
PY

if [[ $# -eq 0 ]]; then
    set -- test
fi
"$bin/python" -m pytest -q -rs -p no:cacheprovider "$@"
