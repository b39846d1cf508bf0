"""The race's fine-tuned contenders as a config file: `--config=benchmarks/capture_finetune_config.py:RECIPE@WORKDIR`.

configs/capture.py's RECIPE (`finetune` for the paper model, `nam_layout` for NAM's layout)
with the model and loss of the pretrained run WORKDIR, initialised from it, exactly as
`python -m ampspace.fit --model=RECIPE --init_from=WORKDIR` trains (ampspace.fit.fit_config).
A config file rather than `--config.model.KEY=VALUE` flags, which cannot add a key the
recipe's model lacks (the sim-to-real pretraining's `model.input_gain`).

COMMAND (benchmarks/bench_accuracy.py runs it for ours_finetune and ours_finetune_nam_layout):
  python -m ampspace.train \\
      --config=benchmarks/capture_finetune_config.py:finetune@runs/sim_to_real_local/pretrain \\
      --workdir=runs/ft --config.dataset.data_dir=DATA --config.train.max_seconds=120
EXPECTED: the fine-tuned rows of benchmarks/results/accuracy.md.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ampspace.errors import AmpSpaceError  # noqa: E402
from ampspace.fit import fit_config  # noqa: E402


def get_config(arg: str | None = None):
  recipe, at, workdir = (arg or "").partition("@")
  if not at or not recipe or not workdir:
    raise AmpSpaceError(
      f"benchmarks/capture_finetune_config.py: argument {arg!r}: expected RECIPE@WORKDIR "
      "(e.g. finetune@runs/sim_to_real_local/pretrain)"
    )
  # the dataset comes from --config.dataset.data_dir, as for configs/capture.py
  return fit_config(recipe, workdir, data_dir="")
