#!/usr/bin/env bash
# The Python packages that benchmarks/gpu_check.py needs and the GPU image lacks (its image
# holds JAX with CUDA, PyTorch with CUDA, Flax, Optax, Orbax, etils, SciPy, numba, Lightning,
# transformers...; nothing can be fetched there). Run here, where PyPI is reachable: it puts
# wheels for the image's Python (3.12, x86-64 Linux) into .whl/ (git-ignored), which travels
# with the check and which benchmarks/gpu_check.sh installs with --no-deps. Versions are the
# ones .venv and .venv-nam hold. The list was checked here, without a GPU, by hiding every
# package the image lacks and running `gpu_check.py --smoke` (benchmarks/gpu_image_sim/).
#
#   bash benchmarks/gpu_wheels.sh                       # .whl/ for Python 3.12
#   GPU_PYTHON_VERSION=3.11 WHEEL_DIR=/tmp/w bash benchmarks/gpu_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYV=${GPU_PYTHON_VERSION:-3.12}
DEST=${WHEEL_DIR:-.whl}
PIP=${PIP:-python3 -m pip}
mkdir -p "$DEST"

# Compiled: the wheel for that Python and manylinux.
COMPILED=(
  array-record==0.8.6 grain==0.2.18 dm-tree==0.1.10 soxr==1.1.0 cffi==2.1.1
  pydantic-core==2.50.5 soundfile==0.14.0
)
# Pure Python (py3-none-any).
PURE=(
  tensorflow-datasets==4.9.10 tensorflow-metadata==1.21.0 immutabledict==4.3.1 toml==0.10.2
  simple-parsing==0.1.9 docstring-parser==0.18.0 termcolor==3.3.0 more-itertools==11.2.1
  ml-collections==1.1.0 portpicker==1.6.0 tensorboardX==2.6.5 importlib-resources
  librosa==0.11.0 audioread==3.1.0 pooch==1.9.0 decorator==5.3.1 pycparser==3.12
  neural-amp-modeler==0.13.0 pydantic==2.14.4 annotated-types==0.8.0 typing-inspection==0.4.5
  wavio==0.0.9 platformdirs==4.14.8
)
PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
  manylinux_2_24_x86_64 manylinux_2_31_x86_64 manylinux1_x86_64; do
  PLATFORMS+=(--platform "$p")
done
$PIP download -q --no-deps --only-binary=:all: --python-version "$PYV" --implementation cp \
  "${PLATFORMS[@]}" -d "$DEST" "${COMPILED[@]}"
$PIP download -q --no-deps --only-binary=:all: --python-version "$PYV" --implementation py \
  --platform any -d "$DEST" "${PURE[@]}"
# promise (TFDS needs it) is published as a source archive only: build its pure-Python wheel.
ls "$DEST"/promise-*.whl >/dev/null 2>&1 || $PIP wheel -q --no-deps -w "$DEST" promise==2.3
echo "[gpu_wheels] $(ls "$DEST"/*.whl | wc -l) wheels, $(du -sh "$DEST" | cut -f1) in $DEST"
