"""The tree passes the project's linter and formatter (ruff.toml), as CI checks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _ruff() -> str:
  """The ruff beside this Python (launch/setup.sh installs it with [dev]) or on PATH; the
  test is skipped without one."""
  beside = os.path.join(os.path.dirname(sys.executable), "ruff")
  ruff = beside if os.path.exists(beside) else shutil.which("ruff")
  if ruff is None:
    pytest.skip("ruff is not installed (launch/setup.sh installs it with the [dev] extras)")
  return ruff


def test_ruff_check_is_clean():
  ruff = _ruff()
  out = subprocess.run(
    [ruff, "check", "--output-format=concise", "."], cwd=REPO, capture_output=True, text=True
  )
  assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_format_leaves_the_tree_unchanged():
  ruff = _ruff()
  out = subprocess.run([ruff, "format", "--check", "."], cwd=REPO, capture_output=True, text=True)
  assert out.returncode == 0, out.stdout + out.stderr + "\nrun `ruff format .` to fix"


def test_ruff_format_config_reformats_a_badly_laid_out_file(tmp_path):
  ruff = _ruff()
  bad = tmp_path / "bad.py"
  bad.write_text("def f( x ):\n    return [ x,x ]\n")
  out = subprocess.run(
    [ruff, "format", "--config", os.path.join(REPO, "ruff.toml"), "--diff", str(bad)],
    capture_output=True,
    text=True,
  )
  assert out.returncode == 1 and "+  return [x, x]" in out.stdout, out.stdout + out.stderr


def test_ruff_config_catches_an_undefined_name(tmp_path):
  ruff = _ruff()
  bad = tmp_path / "bad.py"
  bad.write_text("def f():\n  return undefined_name\n")
  out = subprocess.run(
    [ruff, "check", "--config", os.path.join(REPO, "ruff.toml"), str(bad)],
    capture_output=True,
    text=True,
  )
  assert out.returncode == 1 and "F821" in out.stdout
