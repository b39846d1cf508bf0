"""LSTM baseline on amp_space (the paper's architecture search), Wave2WaveNet's data and loss.

COMMAND (CPU smoke run):
  python -m ampspace.train --config=configs/lstm.py:runlocal --workdir=runs/lstm_local
COMMAND (full):
  python -m ampspace.train --config=configs/lstm.py --workdir=runs/lstm

EXPECTED: the training loss falls within the run; no paper-scale figure is claimed.
"""

from __future__ import annotations

from ampspace.config_files import config_module, load_config

common = config_module("common")


def get_config(arg: str | None = None):
  runlocal = common.parse_arg(arg, __file__, runlocal=False).runlocal
  c = load_config("rnn", arg)
  c.model.name = "lstm"
  c.model.hidden = 32 if runlocal else 96
  c.model.num_layers = 1 if runlocal else 2
  return c
