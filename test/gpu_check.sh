#!/usr/bin/env bash
# The one prepared GPU check (issue 9): CUDA parity tests and the GPU bench, in one run, on a machine with an
# NVIDIA GPU. CI has no GPU; there these tests skip with the reason. Run from the repository root:
#     bash test/gpu_check.sh [OUT_DIR]
# It needs torch with CUDA and the project installed (pip install -e . --no-deps next to an existing CUDA
# torch; the other requirements as in requirements.txt). It prints the GPU's name first, then the parity
# tests (-rs lists every skip and why: TensorRT, onnxruntime-gpu), then the bench table with ratios to eager
# torch on the CPU. Figures go into OUT_DIR (default: gpu_check_out) as bench.json and pytest.txt.
set -euo pipefail
out="${1:-gpu_check_out}"
mkdir -p "$out"
export ANOMALY_SEG_CACHE="$out/cache"
python - <<'PY'
import torch
assert torch.cuda.is_available(), 'no CUDA device: this script is for a GPU machine'
p = torch.cuda.get_device_properties(0)
print(f'GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB, compute {p.major}.{p.minor}; torch {torch.__version__}')
PY
python -m pytest -q -rs -s test/test_parity.py test/test_tensorrt.py -p no:cacheprovider 2>&1 | tee "$out/pytest.txt"
anomaly-seg bench --backend all --scorer entropy,max_logit --device cuda --sizes 1024x512,2048x1024 \
    --frames 50 --json "$out/bench.json" 2>&1 | tee "$out/bench.txt"
