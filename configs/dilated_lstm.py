"""Dilated LSTM baseline (Chang et al. 2017's dilated RNN with LSTM cells; layer k recurs from
t - 2^k to t), the paper's architecture search, with Wave2WaveNet's data and loss.

COMMAND (CPU smoke run):
  python -m ampspace.train --config=configs/dilated_lstm.py:runlocal --workdir=runs/dlstm_local
COMMAND (full):
  python -m ampspace.train --config=configs/dilated_lstm.py --workdir=runs/dlstm

EXPECTED: the training loss falls within the run; no paper-scale figure is claimed.
"""

from __future__ import annotations

from ampspace.config_files import config_module, load_config

common = config_module("common")


def get_config(arg: str | None = None):
  runlocal = common.parse_arg(arg, __file__, runlocal=False).runlocal
  c = load_config("rnn", arg)
  c.model.name = "dilated_lstm"
  c.model.hidden = 24 if runlocal else 64
  c.model.num_layers = 3 if runlocal else 6
  c.model.dilations = tuple(2**i for i in range(c.model.num_layers))
  return c
