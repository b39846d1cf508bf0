#!/usr/bin/env bash
# Sets up Amp-Space on a fresh Debian machine: system packages, a virtualenv in .venv with the
# package installed editable (+ [dev]), and the small LV2 plugin host. Safe to run twice: each
# step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(fluidsynth fluid-soundfont-gm guitarix-lv2 liblilv-dev lv2-dev lilv-utils
              pkg-config gcc sox)
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRAS=${EXTRAS:-dev}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing system packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 11):
  sys.exit(f"[setup] Python >= 3.11 is needed, found {sys.version.split()[0]}")
PY

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV" || { as_root apt-get install -y -qq python3-venv >/dev/null && "$PYTHON" -m venv "$VENV"; }
fi
stamp="$VENV/.ampspace-installed"
want="$(cat setup.py | sha256sum | cut -c1-16)-$EXTRAS"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing Python packages into $VENV (first time: a few minutes)"
  log="$VENV/pip-install.log"
  if ! { "$VENV/bin/pip" install -q --upgrade pip && "$VENV/bin/pip" install -q -e ".[$EXTRAS]"; } >"$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" | tail -n 30 >&2
    echo "[setup] pip install failed; full log: $log" >&2
    exit 1
  fi
  "$VENV/bin/python" -c "import ampspace, jax, flax, grain, orbax.checkpoint, tensorflow_datasets" \
    || { echo "[setup] Python install failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi

if "$VENV/bin/python" -c "import ampspace.devices.lv2host" 2>/dev/null; then
  "$VENV/bin/python" -m ampspace.devices.lv2host --build >/dev/null
fi
"$VENV/bin/python" -m ampspace.runtime.c_runtime --build >/dev/null \
  || echo "[setup] warning: the C runtime (ampspace/runtime/c_runtime/w2w.c) did not build; the NumPy runtime still works" >&2
echo "[setup] ready: $VENV"
