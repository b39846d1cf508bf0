"""SampleRNN-style hierarchical baseline (frame tiers of 16 and 4 DI samples over a sample-level
MLP; the paper's architecture search), with Wave2WaveNet's data and loss.

COMMAND (CPU smoke run):
  python -m ampspace.train --config=configs/sample_rnn.py:runlocal --workdir=runs/srnn_local
COMMAND (full):
  python -m ampspace.train --config=configs/sample_rnn.py --workdir=runs/srnn

EXPECTED: the training loss falls within the run; no paper-scale figure is claimed.
"""

from __future__ import annotations

from ampspace.config_files import config_module, load_config

common = config_module("common")


def get_config(arg: str | None = None):
  runlocal = common.parse_arg(arg, __file__, runlocal=False).runlocal
  c = load_config("rnn", arg)
  c.model = {
    "name": "sample_rnn",
    "frame_sizes": (16, 4),
    "hidden": 32 if runlocal else 128,
    "mlp_channels": 32 if runlocal else 128,
    "warmup": 256 if runlocal else 2048,
    "num_classes": 256,
  }
  return c
