"""Loss ablation on one fixed small task: squared EMD vs EMD vs cross-entropy (256 mu-law classes)
vs MSE (regression head), each decoded by expected value and by argmax (n/a for MSE).

COMMAND (CPU, ~10 minutes on 2 busy cores; builds amp_space/tiny if missing):
  python launch/ablation.py --workdir=runs/ablation
writes runs/ablation/ablation.{md,csv}; the table measured with it is in docs/training.md.

Every variant shares this config (same data, seed, steps, model size, optimizer); only
`loss.name` (and `model.num_classes=1` for MSE) change. A single variant trains with
  python -m ampspace.train --config=configs/ablation_losses.py --workdir=runs/abl_emd \
      --config.loss.name=emd
No argument (`:runlocal` is accepted and changes nothing: the config is CPU-sized).
"""

from __future__ import annotations

from ampspace.config_files import config_module, load_config

common = config_module("common")

VARIANTS = ("emd_squared", "emd", "cross_entropy", "mse")
DECODERS = ("expected_value", "argmax")


def get_config(arg: str | None = None):
  common.parse_arg(arg, __file__, runlocal=False)  # CPU-sized either way
  c = load_config("wave2wavenet", "runlocal")
  c.seed = 0
  c.model.depth, c.model.channels, c.model.max_dilation = 10, 8, 64  # receptive field 269
  c.input.window, c.input.batch_size = 1024, 8
  c.train.steps = 300
  c.train.log_every = 50
  c.train.eval_every = 1000
  c.train.checkpoint_every = 300
  c.train.tensorboard = False
  c.optimizer.learning_rate = 3e-3
  c.optimizer.warmup_steps = 20
  c.loss.sigma = 0.5
  c.eval.at_end = False
  c.eval.split = "test"
  c.eval.write_audio = 1
  return c


def variant(config, loss: str):
  """The config of one ablation variant (a copy)."""
  c = config.copy_and_resolve_references()
  c.loss.name = loss
  if loss == "mse":
    c.model.num_classes = 1
  return c
