"""ampspace.paths: local paths and URLs through one set of helpers (pure; no network)."""

from __future__ import annotations

import os

import pytest

from ampspace import paths


@pytest.mark.parametrize(
  "path, url",
  [
    ("gs://b/run", True),
    ("s3://b/x", True),
    ("file:///tmp/x", True),
    ("runs/x", False),
    ("/abs/x", False),
    ("C:/x", False),
    ("gs:/b/run", False),
  ],
)
def test_is_url(path, url):
  assert paths.is_url(path) is url


def test_absolute_join_basename_dirname_for_both_kinds(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert paths.absolute("runs/x") == os.path.join(str(tmp_path), "runs", "x")
  assert paths.absolute("gs://b/run//") == "gs://b/run"
  assert paths.join("gs://b/run", "checkpoints", "12") == "gs://b/run/checkpoints/12"
  assert paths.join("runs", "tb") == os.path.join("runs", "tb")
  assert paths.basename("gs://b/run/checkpoints/12/") == "12"
  assert paths.dirname("gs://b/run/checkpoints/12") == "gs://b/run/checkpoints"
  assert paths.epath("gs://b/run/").as_posix() == "gs://b/run"


def test_local_open_append_appends(tmp_path):
  log = tmp_path / "log.jsonl"
  for line in ("a\n", "b\n"):
    with paths.open_append(log) as f:
      f.write(line)
      f.flush()
  assert log.read_text() == "a\nb\n"
  paths.makedirs(tmp_path / "x" / "y")
  assert paths.isdir(tmp_path / "x" / "y") and not paths.isfile(tmp_path / "x")
