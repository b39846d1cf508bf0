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


@pytest.fixture(scope="session")
def tiny_reference(tiny_data_dir, tmp_path_factory):
  """An uninterrupted 12-step run of the tiny trainer config, made once per session: (workdir,
  losses by step, parameter leaves). Every interrupted, resumed or relocated (bucket) run of
  the same config must reproduce it exactly."""
  import jax
  import numpy as np

  from ampspace.trainers import wave2wavenet as trainer
  from trainer_util import losses_by_step, tiny_config

  workdir = str(tmp_path_factory.mktemp("reference"))
  result = trainer.train_and_evaluate(tiny_config(tiny_data_dir), workdir)
  leaves = [np.asarray(x) for x in jax.tree.leaves(result["params"])]
  return workdir, losses_by_step(workdir), leaves
