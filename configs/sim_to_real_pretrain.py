"""Sim-to-real, step 1 (paper Table 3): pretrain Wave2WaveNet on synthetic devices, every
example a random device of the native zoo (amps and drive/fuzz pedals) at random other knobs,
its gain-role knob (gain, drive, fuzz or sustain, sharing the model's gain slot) over 1..10.

The data is made by `python -m launch.sim_to_real` (ampspace/experiments/sim_to_real.py; it renders the pretraining devices with the sweep
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

from ampspace.config_files import config_module, load_config

common = config_module("common")

# The launcher's default workdirs; it overrides every path below with its own --workdir.
ROOT = {"runlocal": "runs/sim_to_real_local", "": "runs/sim_to_real"}


MODELS = ("paper", "nam_layout")


def parse_arg(arg: str | None, config_file: str = __file__, **more) -> ml_collections.ConfigDict:
  """`[runlocal,][paper|nam_layout]`, and `more` for the configs that load this one (their
  errors name `config_file`)."""
  return common.parse_arg(arg, config_file, runlocal=False, model=common.one_of(*MODELS), **more)


def use_nam_layout(c: ml_collections.ConfigDict, runlocal: bool) -> None:
  """The model and loss of configs/capture.py:nam_layout (NAM's standard WaveNet layout,
  regression with the DC-free head, MSE), conditioned on the device and knobs like the paper
  model, at the same batch and a window twice as long (its receptive field is 4093 samples)."""
  c.model = ml_collections.ConfigDict(
    {
      "name": "layer_array_wavenet",
      "num_classes": 1,
      "input_mixin": False,
      "init": "torch",
      "dc_free": True,
    }
  )
  c.loss = ml_collections.ConfigDict({"name": "mse"})
  c.input.window = 4096 if runlocal else 8192


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """configs/wave2wavenet.py's config at the same scale, with the pretraining data, model
  depth, step budget and evaluation."""
  a = parse_arg(arg)
  runlocal = a.runlocal
  root = ROOT["runlocal" if runlocal else ""]
  c = load_config("wave2wavenet", "runlocal" if runlocal else None)

  c.dataset.name = "amp_space/synthetic"
  c.dataset.data_dir = f"{root}/tfds/pretrain"
  c.dataset.manual_dir = f"{root}/rendered/pretrain"
  c.dataset.build_if_missing = False  # the sim-to-real experiment renders and builds it
  c.dataset.filter = ""

  # One architecture for pretraining, fine-tuning and the baseline (the other two configs load
  # this one), so that a pretrained checkpoint always fits. runlocal: depth 10 (dilations
  # 1..512 once, receptive field 2047) keeps a CPU step cheap.
  c.model.depth = 10 if runlocal else 20
  # model.cond_init="zeros" (inputs pretraining never saw keep a zero weight) was tried against
  # the high first fine-tune loss on gx_amp and did not help: one seed of the gain-5 cell gave
  # test ESR 0.596 (zeros) against 0.508 (normal) and 0.388 from scratch in 150 steps.
  c.model.cond_init = "normal"
  # The DI is scaled by exp(w . c) before the first layer (an amp's gain knob acts before its
  # clipping stages; the layers' conditioning is only additive). One seed of the gain-5 row, 650
  # fine-tuning steps (benchmarks/sim_to_real_diag/results/input_gain_README.md): gx_amp test
  # ESR at 5 / {2,8} 0.066 / 0.374 with it against 0.074 / 0.472 without; DS-1 0.010 / 0.031
  # against 0.008 / 0.063. Such a model exports with --fixed only (ampspace.runtime.export).
  c.model.input_gain = True
  if a.model == "nam_layout":
    use_nam_layout(c, runlocal)

  c.train.steps = 500 if runlocal else 200_000
  c.train.log_every = 50 if runlocal else 100
  c.train.eval_every = 200 if runlocal else 5000
  c.train.checkpoint_every = 200 if runlocal else 5000
  c.train.keep_checkpoints = 2
  # >0: stop after this many evaluations without a better validation metric, keeping the best
  # checkpoint (the protocol's early-stopping baseline sets it).
  c.train.early_stopping_patience = 0
  c.train.early_stopping_metric = "esr"

  c.eval.at_end = False  # Table 3 evaluates the fine-tuned models, not this one
  c.eval.max_examples = 8 if runlocal else 256
  c.eval.write_audio = 2
  return c
