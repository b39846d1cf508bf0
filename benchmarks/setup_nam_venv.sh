#!/usr/bin/env bash
# Creates .venv-nam: a separate virtualenv holding a CPU build of PyTorch and neural-amp-modeler
# (NAM), so that benchmarks/bench_training.py can measure NAM's PyTorch WaveNet in the same run
# as ours, and tests/test_nam_format.py can load our .nam exports in NAM's own package, without
# putting torch into the project's .venv. Safe to run twice. With the local torch wheel it took
# 2 min 14 s on the 2-core development machine (under load) and takes 1.8 GB.
#
#   bash benchmarks/setup_nam_venv.sh          # TORCH_WHEEL=... to point at another CPU wheel
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${NAM_VENV:-.venv-nam}
TORCH_WHEEL=${TORCH_WHEEL:-/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl}
# The CPU wheel index: used only when no local wheel is given, so pip never pulls CUDA torch.
TORCH_INDEX=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import torch, nam.models.wavenet" 2>/dev/null; then
  echo "[nam] ready: $VENV"; exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
if [ -f "$TORCH_WHEEL" ]; then
  "$VENV/bin/pip" install -q "$TORCH_WHEEL"
else
  "$VENV/bin/pip" install -q torch --index-url "$TORCH_INDEX"
fi
# torch is already satisfied, so pip resolves NAM's other dependencies from PyPI only.
"$VENV/bin/pip" install -q neural-amp-modeler
"$VENV/bin/python" -c "import torch, nam.models.wavenet; print('[nam] torch', torch.__version__, 'cuda', torch.version.cuda)"
echo "[nam] ready: $VENV"
