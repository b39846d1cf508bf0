#!/usr/bin/env bash
# The accelerator check, on a machine with an NVIDIA GPU: installs the wheels of .whl/ (made
# by benchmarks/gpu_wheels.sh) where present, then runs benchmarks/gpu_check.py, whose
# docstring says what it measures. Planned for about 6 minutes on one GPU (not yet run on one).
#
#   bash benchmarks/gpu_check.sh OUT [gpu_check.py flags]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: bash benchmarks/gpu_check.sh OUT [gpu_check.py flags]}
shift
PYTHON=${PYTHON:-python3}
if ls .whl/*.whl >/dev/null 2>&1; then
  SITE=${GPU_SITE:-/tmp/ampspace-site}
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" .whl/*.whl
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
exec "$PYTHON" benchmarks/gpu_check.py --out="$OUT" "$@"
