#!/usr/bin/env bash
# Command (1) of the README: set up, then run the main job on the small embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
exec .venv/bin/python -m ampspace.quickstart --workdir="${1:-runs/quickstart}"
