#!/usr/bin/env bash
# Command (2) of the README: set up, then run the default (fast) test suite.
# Extra arguments go to pytest, e.g. `bash launch/test.sh -m slow` for the opt-in slow tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
# The set-up installed the plugins and FluidSynth, so tests that need them must not skip.
export AMPSPACE_REQUIRE_PLUGINS=1
exec .venv/bin/python -m pytest -q "$@"
