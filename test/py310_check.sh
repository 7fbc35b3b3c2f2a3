#!/usr/bin/env bash
# Python 3.10 (what Humble on Ubuntu 22.04 ships): the package, launch files and tests must at least compile
# there. ruff (target-version py310) and mypy (python_version 3.10) already check syntax and the standard
# library API statically; this byte-compiles everything with a real 3.10 interpreter when the machine has one
# (PATH, then pyenv's versions). No 3.10 torch wheel is available offline here, so the suite itself does not
# run on 3.10: README says so. Run from anywhere: bash test/py310_check.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for py in python3.10 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10*/bin/python3.10; do
    if "$py" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
        out="$(mktemp -d)"
        trap 'rm -rf "$out"' EXIT
        # compile into a throwaway prefix: nothing is written beside the sources
        PYTHONPYCACHEPREFIX="$out" "$py" -m compileall -q anomaly_seg_ros launch test
        echo "Python 3.10: every module compiles ($("$py" --version 2>&1), $py)"
        exit 0
    fi
done
echo 'Python 3.10: no interpreter found; checked statically only (ruff target py310, mypy python_version 3.10)'
