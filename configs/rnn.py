"""Elman RNN baseline (tanh cell) on amp_space: the paper's architecture-search baseline, trained
with Wave2WaveNet's data, loss (class-weighted squared EMD, 256 mu-law classes) and optimizer.

COMMAND (CPU smoke run):
  python -m ampspace.train --config=configs/rnn.py:runlocal --workdir=runs/rnn_local
COMMAND (full):
  python -m ampspace.train --config=configs/rnn.py --workdir=runs/rnn

A recurrent net has no receptive field; its first `model.warmup` outputs of every window are
discarded (they are the model's `context`), so windows are built exactly as for Wave2WaveNet.
EXPECTED: the training loss falls within the run; no paper-scale figure is claimed.
"""

from __future__ import annotations

from ampspace.config_files import config_module, load_config

common = config_module("common")


def base_config(arg):
  """configs/wave2wavenet.py's get_config(arg): the shared data, loss, optimizer and schedule."""
  return load_config("wave2wavenet", arg)


def get_config(arg: str | None = None):
  runlocal = common.parse_arg(arg, __file__, runlocal=False).runlocal
  c = base_config(arg)
  c.model = {
    "name": "rnn",
    "hidden": 32 if runlocal else 128,
    "num_layers": 1,
    "warmup": 256 if runlocal else 2048,
    "num_classes": 256,
    "head_channels": 0,
  }
  if runlocal:
    c.input.window = 1024
  return c
