"""Sim-to-real baseline (paper Table 3): the same architecture trained from scratch on the
fine-tune data alone (configs/sim_to_real_finetune.py without the pretrained init), with the
pretraining optimiser. The launcher gives it as many steps as pretraining plus fine-tuning
(`baseline`), or up to 1.5 times that with early stopping on validation (`baseline_es`).

Argument: `[runlocal,][paper|nam_layout,]gains=G1+G2` (default paper, gains=5), as for the
fine-tune config.

COMMAND (the whole protocol; this config is two of its models):
  python -m launch.sim_to_real --scale=runlocal --rows=5 --workdir=runs/sim_to_real_local

EXPECTED: worse than the fine-tuned pretrained model, increasingly so away from the fine-tune
gains (paper, fine-tuned on gain 5: 0.05 / 0.33 / 0.81 / 2.10 MSE ×1e-3 at test gains
5 / {4,6} / {3,7} / {2,8}). Measured: docs/results/sim_to_real_table.md.
"""

from __future__ import annotations

import os

import ml_collections

from ampspace.config_files import config_module


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  finetune = config_module(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "sim_to_real_finetune.py")
  )
  pretrain_arg, _ = finetune.parse_arg(arg, __file__)
  c = finetune.get_config(arg)
  pretrain = finetune.load_sibling("sim_to_real_pretrain.py").get_config(pretrain_arg)
  c.init_from = ""
  # From scratch: the pretraining optimiser (rate, warmup), the fine-tune step budget.
  c.optimizer = pretrain.optimizer
  return c
