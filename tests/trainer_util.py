"""Shared helpers of the trainer tests: a CPU-tiny config and train-log readers."""

from __future__ import annotations

import json
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(data_dir: str, **overrides):
  """configs/wave2wavenet.py:runlocal shrunk to a few-second model (depth 3, 4 channels)."""
  from ampspace.config_files import load_config, set_key

  c = load_config("wave2wavenet", "runlocal")
  c.dataset.data_dir = data_dir
  c.dataset.build_if_missing = False
  c.model.depth, c.model.channels, c.model.max_dilation = 3, 4, 4
  c.input.window, c.input.batch_size, c.input.read_threads = 64, 4, 1
  c.train.steps, c.train.log_every, c.train.checkpoint_every = 12, 4, 3
  c.train.eval_every, c.train.eval_examples, c.train.tensorboard = 1000, 2, False
  c.train.async_checkpoints = False
  c.optimizer.warmup_steps = 2
  c.eval.at_end = False
  for key, value in overrides.items():
    set_key(c, key, value, create=True)
  return c


def cli_overrides(config, keys) -> list[str]:
  """--config.a.b=value flags reproducing `config`'s values at `keys` on the command line."""
  from ampspace.config_files import get_key

  return [f"--config.{key}={get_key(config, key)}" for key in keys]


def read_log(workdir: str) -> list[dict]:
  with open(os.path.join(workdir, "train_log.jsonl")) as f:
    return [json.loads(line) for line in f if line.strip()]


def losses_by_step(workdir: str) -> dict[int, float]:
  """step -> loss, the *last* record of each step winning: the log is appended to, so after a
  resume the steps since the last checkpoint appear twice and the resumed run's come last."""
  return {r["step"]: r["loss"] for r in read_log(workdir)}


# The tiny config's keys, as --config.* flags: a subprocess run of `python -m ampspace.train`
# with the same settings as tiny_config(...).
CLI_KEYS = (
  "dataset.data_dir",
  "dataset.build_if_missing",
  "model.depth",
  "model.channels",
  "model.max_dilation",
  "input.window",
  "input.batch_size",
  "input.read_threads",
  "train.steps",
  "train.log_every",
  "train.checkpoint_every",
  "train.eval_every",
  "train.eval_examples",
  "train.tensorboard",
  "train.async_checkpoints",
  "optimizer.warmup_steps",
  "eval.at_end",
)


def train_command(data_dir: str, workdir: str, **overrides) -> list[str]:
  """`python -m ampspace.train` on tiny_config(data_dir, **overrides) in `workdir`."""
  import sys

  return [
    sys.executable,
    "-m",
    "ampspace.train",
    "--config=configs/wave2wavenet.py:runlocal",
    f"--workdir={workdir}",
    *cli_overrides(tiny_config(data_dir, **overrides), CLI_KEYS),
  ]
