"""Shared pytest set-up: quiet logs, a session-wide tiny dataset, plugin requirement switch."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def require_or_skip(available: bool, reason: str) -> None:
  """Skips when a system dependency is missing, unless AMPSPACE_REQUIRE_PLUGINS=1 (the test
  command installs them, so there a missing one is a failure, not a skip)."""
  if available:
    return
  if os.environ.get("AMPSPACE_REQUIRE_PLUGINS") == "1":
    pytest.fail(f"required system dependency missing: {reason}")
  pytest.skip(reason)


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> str:
  """amp_space/tiny built once per test session (a few seconds)."""
  import tensorflow_datasets as tfds
  import tfds_ampspace  # noqa: F401

  data_dir = str(tmp_path_factory.mktemp("tfds"))
  tfds.builder(
    "amp_space/tiny", data_dir=data_dir, file_format="array_record"
  ).download_and_prepare()
  return data_dir
