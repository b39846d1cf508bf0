"""Sim-to-real, step 1 (paper Table 3): pretrain Wave2WaveNet on synthetic devices, every
example a random device of the native zoo (amps and drive/fuzz pedals) at random other knobs,
its gain-role knob (gain, drive, fuzz or sustain, sharing the model's gain slot) over 1..10.

The data is made by `launch/sim_to_real.py` (it renders the pretraining devices with the sweep
`one_knob_random:KNOB@N` into a release-layout folder and builds `amp_space/synthetic_lenient`
from it in its own data_dir), so this config does not build on its own.

COMMAND (the whole protocol, CPU scale; the fine-tune-on-5 row takes about an hour on 2 cores):
  python -m launch.sim_to_real --scale=runlocal --rows=5 --workdir=runs/sim_to_real_local

COMMAND (this step alone, after the launcher prepared the data):
  python -m ampspace.train --config=configs/sim_to_real_pretrain.py:runlocal \
      --workdir=runs/sim_to_real_local/pretrain \
      --config.dataset.name=amp_space/synthetic_lenient

EXPECTED: the training loss falls; the pretrained model is the init of
configs/sim_to_real_finetune.py. The measured Table 3 is docs/results/sim_to_real_table.md
(written by the launcher, never typed).
"""

from __future__ import annotations

import ml_collections

# The launcher's default workdirs; it overrides every path below with its own --workdir.
ROOT = {"runlocal": "runs/sim_to_real_local", "": "runs/sim_to_real"}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = arg or ""
  if arg not in ROOT:
    raise ValueError(f"unknown config argument {arg!r}; use :runlocal or nothing")
  runlocal = arg == "runlocal"
  root = ROOT[arg]
  c = ml_collections.ConfigDict()
  c.trainer = "wave2wavenet"
  c.seed = 0
  c.init_from = ""

  c.dataset = ml_collections.ConfigDict()
  c.dataset.name = "amp_space/synthetic"
  c.dataset.data_dir = f"{root}/tfds/pretrain"
  c.dataset.manual_dir = f"{root}/rendered/pretrain"
  c.dataset.build_if_missing = False  # launch/sim_to_real.py renders and builds it
  c.dataset.filter = ""
  c.dataset.train_split = "train"
  c.dataset.eval_split = "validation"

  c.input = ml_collections.ConfigDict()
  c.input.window = 2048 if runlocal else 8192
  c.input.batch_size = 8 if runlocal else 64
  c.input.worker_count = 0 if runlocal else 4
  c.input.read_threads = 2 if runlocal else 8

  # One architecture for pretraining, fine-tuning and the baseline (the other two configs load
  # this one), so that a pretrained checkpoint always fits. runlocal: depth 10 (dilations
  # 1..512 once, receptive field 2047) keeps a CPU step cheap.
  c.model = ml_collections.ConfigDict()
  c.model.name = "wave2wavenet"
  c.model.depth = 10 if runlocal else 20
  c.model.channels = 16 if runlocal else 64
  c.model.kernel_size = 3
  c.model.max_dilation = 512
  c.model.num_classes = 256
  c.model.causal = True
  # model.cond_init="zeros" (inputs pretraining never saw keep a zero weight) was tried against
  # the high first fine-tune loss on gx_amp and did not help: one seed of the gain-5 cell gave
  # test ESR 0.596 (zeros) against 0.508 (normal) and 0.388 from scratch in 150 steps.
  c.model.cond_init = "normal"

  c.loss = ml_collections.ConfigDict()
  c.loss.name = "emd_squared"
  c.loss.sigma = 0.5
  c.loss.decode = "expected_value"

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 3e-3 if runlocal else 1e-3
  c.optimizer.schedule = "cosine"
  c.optimizer.warmup_steps = 20 if runlocal else 1000
  c.optimizer.weight_decay = 0.0
  c.optimizer.grad_clip = 1.0

  c.train = ml_collections.ConfigDict()
  c.train.steps = 500 if runlocal else 200_000
  c.train.log_every = 50 if runlocal else 100
  c.train.eval_every = 200 if runlocal else 5000
  c.train.eval_examples = 4 if runlocal else 16
  c.train.checkpoint_every = 200 if runlocal else 5000
  c.train.keep_checkpoints = 2
  # >0: stop after this many evaluations without a better validation metric, keeping the best
  # checkpoint (the protocol's early-stopping baseline sets it).
  c.train.early_stopping_patience = 0
  c.train.early_stopping_metric = "esr"
  c.train.async_checkpoints = True
  c.train.tensorboard = True

  c.eval = ml_collections.ConfigDict()
  c.eval.at_end = False  # Table 3 evaluates the fine-tuned models, not this one
  c.eval.split = "test"
  c.eval.max_examples = 8 if runlocal else 256
  c.eval.write_audio = 2
  return c
