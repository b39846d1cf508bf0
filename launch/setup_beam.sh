#!/usr/bin/env bash
# Creates .venv-beam: the project installed with its [beam] extra, for generating the
# `amp_space/synthetic` dataset through Apache Beam (`tfds build ... --beam_pipeline_options=`).
#
# Why a separate venv: apache-beam pins protobuf < 7 and an older pyarrow, which would
# downgrade packages of the main .venv. Idempotent: reruns only install what is missing.
#
#   bash launch/setup_beam.sh            # then: .venv-beam/bin/pytest -q -m beam tests/test_tfds_beam.py
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON="$(readlink -f .venv/bin/python 2>/dev/null || echo python3)"
if [ ! -x .venv-beam/bin/python ]; then
  "$PYTHON" -m venv .venv-beam
fi
if ! .venv-beam/bin/python -c "import apache_beam, tensorflow_datasets, ampspace, pytest" 2>/dev/null; then
  .venv-beam/bin/pip install --quiet --upgrade pip
  .venv-beam/bin/pip install --quiet -e ".[beam,dev]"
fi
.venv-beam/bin/python -c "import apache_beam; print('apache-beam', apache_beam.__version__, 'ready in .venv-beam')"
