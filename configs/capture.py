"""One capture of one setting: a device's `input.wav` / `output.wav` pairs to a model.

The guitarist's everyday job, and the race of benchmarks/bench_accuracy.py. The data is an
`amp_space/real` build of a NAM-layout capture folder (`output*.wav` beside their
`input.wav`, a `device.yaml` above naming the device and its knobs; test DIs pinned with
`split: test`). The argument picks the model (and `,runlocal` nothing else: every recipe is
sized for a CPU already):

  nam_layout  LayerArrayWaveNet in NAM's standard layout (16 then 8 channels, dilations
              1..512 twice, tanh), PyTorch's initialisation, batches of 8 x 8192,
              regression with the DC-free head, MSE, and the moving average of the weights
              (optimizer.ema_decay=0.999) as the model;
  paper       the paper's Wave2WaveNet (depth 20, 16 channels, 256 mu-law classes,
              class-weighted squared EMD, expected-value decoding);
  finetune    `paper` initialised from a pretrained checkpoint (`--config.init_from=...`),
              its output inverted first where it correlates negatively with the capture's
              training targets (`init_polarity=match`: a device's polarity is not known);
  lstm        an LSTM of 1 x 24 units with a linear head (the size GuitarML and NAM ship),
              regression, MSE.

The run stops after `train.max_seconds` of wall clock (or `train.steps`), saving snapshots at
`train.snapshot_seconds`.

COMMAND:
  python -m tfds_ampspace.build tfds_ampspace/amp_space --config=real --manual_dir=CAPTURE \
      --data_dir=DATA --file_format=array_record
  python -m ampspace.train --config=configs/capture.py:nam_layout --workdir=runs/capture \
      --config.dataset.data_dir=DATA --config.train.max_seconds=300
EXPECTED: benchmarks/bench_accuracy.py's table (docs/performance.md) gives each recipe's test
ESR at 2, 5 and 10 minutes on the 2-core machine.
"""

from __future__ import annotations

from ampspace.config_files import config_module, load_config

common = config_module("common")

MODELS = ("nam_layout", "paper", "finetune", "lstm")


def get_config(arg: str | None = None):
  # runlocal is accepted and changes nothing: every recipe is CPU-sized.
  which = common.parse_arg(arg, __file__, model=common.one_of(*MODELS), runlocal=False).model
  c = load_config("wave2wavenet", "runlocal")
  c.dataset.name = "amp_space/real"
  c.dataset.build_if_missing = False
  c.input.window = 8192
  c.input.batch_size = 16
  c.input.worker_count = 0
  c.input.read_threads = 2
  c.train.steps = 1_000_000  # the wall clock ends the run
  c.train.max_seconds = 300.0
  c.train.snapshot_seconds = (120.0, 300.0)
  c.train.log_every = 50
  c.train.eval_every = 1_000_000  # no validation in the race: nothing selects on it
  c.train.checkpoint_every = 1_000_000
  c.train.keep_checkpoints = 8
  c.train.tensorboard = False
  c.eval.at_end = False
  c.optimizer.schedule = "exponential"  # wall-clock runs know no step count: decay by steps
  c.optimizer.warmup_steps = 20
  c.optimizer.decay_steps = 1000
  c.optimizer.decay_rate = 0.5
  c.optimizer.grad_clip = 1.0
  c.optimizer.ema_decay = 0.0  # a moving average of the weights: off, but for nam_layout
  if which == "nam_layout":
    # input_mixin: NAM's own layers also see the input audio (its "condition"); ablated in
    # benchmarks/results/accuracy_input_mixin.md
    # init "torch" (PyTorch's uniform ±1/sqrt(fan_in), as NAM's trainer starts) rather than
    # Flax's LeCun-normal: 5x lower test ESR at 5 minutes on the amp capture, lower on the two
    # pedals (benchmarks/results/accuracy_torch_init.md, one seed)
    # batch 8 x 8192 rather than NAM's 16: lower mean test ESR on all three captures at 2 and
    # 5 minutes (a tie on the fuzz at 5), 3 seeds each
    # (benchmarks/results/accuracy_seeds_batch_seeds.md)
    # ema_decay 0.999: the model is the moving average of its weights: at 5 minutes lower test
    # ESR for every seed on all three captures (means 0.74x, 0.94x, 0.88x; 3 seeds each;
    # benchmarks/results/accuracy_seeds_ema.md, accuracy_seeds_ema_pedals.md)
    # dc_free: silence in, silence out. Without it the DI's silences carried the model's
    # constant offset, about -50 dBFS on two of the three captures (all of it DC)
    c.model = {
      "name": "layer_array_wavenet",
      "num_classes": 1,
      "input_mixin": False,
      "init": "torch",
      "dc_free": True,
    }
    c.optimizer.ema_decay = 0.999
    c.loss = {"name": "mse"}
    c.optimizer.learning_rate = 4e-3
    c.input.batch_size = 8
  elif which in ("paper", "finetune"):
    c.model.depth = 20
    c.model.channels = 16
    c.model.cond_init = "normal"  # fine-tuning takes the pretrained run's (zeros)
    c.model.init = "flax"  # "torch" was mixed: worse at 2 min, alike at 5 (same table)
    c.input.window = 2048
    c.input.batch_size = 8
    c.optimizer.learning_rate = 3e-3 if which == "paper" else 1e-3
    c.init_from = ""
    if which == "finetune":
      # Nothing says a user's device inverts as the pretraining devices do (Guitarix's amp is
      # inverted against the native amps; docs/sim_to_real.md, "Polarity").
      c.init_polarity = "match"
  elif which == "lstm":
    c.model = {
      "name": "lstm",
      "hidden": 24,
      "num_layers": 1,
      "warmup": 1024,
      "num_classes": 1,
      "head_channels": 0,
    }
    c.loss = {"name": "mse"}
    c.input.window = 4096
    c.optimizer.learning_rate = 4e-3
  return c
