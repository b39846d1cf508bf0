#!/usr/bin/env bash
# Command (2) of the README: set up, then run the default (fast) test suite and, in its own
# environment, the Apache Beam build of the dataset (apache-beam pins protobuf and pyarrow below
# what .venv holds; launch/setup_beam.sh makes .venv-beam).
# Extra arguments go to pytest (and skip the Beam step), e.g. `bash launch/test.sh -m slow`
# for the opt-in slow tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
# The set-up installed the plugins and FluidSynth, so tests that need them must not skip.
export AMPSPACE_REQUIRE_PLUGINS=1
if [ $# -gt 0 ]; then
  exec .venv/bin/python -m pytest -q "$@"
fi
.venv/bin/python -m pytest -q
bash launch/setup_beam.sh
AMPSPACE_REQUIRE_BEAM=1 exec .venv-beam/bin/python -m pytest -q -m beam tests/test_tfds_beam.py
