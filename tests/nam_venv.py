"""The interpreter of .venv-nam (`bash benchmarks/setup_nam_venv.sh`), which holds PyTorch and
neural-amp-modeler, for the tests that run NAM's own code."""

from __future__ import annotations

import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAM_VENV = os.environ.get("NAM_VENV", os.path.join(REPO, ".venv-nam"))


def nam_python_or_skip() -> str:
  """.venv-nam's python; skips the test (fails it with AMPSPACE_REQUIRE_NAM=1) when absent."""
  python = os.path.join(NAM_VENV, "bin", "python")
  if not os.path.exists(python):
    reason = f"{NAM_VENV} not found; create it with `bash benchmarks/setup_nam_venv.sh`"
    if os.environ.get("AMPSPACE_REQUIRE_NAM") == "1":
      pytest.fail(reason)
    pytest.skip(reason)
  return python
