"""Wave2WaveNet on amp_space: the paper's model (depth 20, kernel 3, dilations 1..512 twice,
receptive field 4093, 256 mu-law classes, class-weighted squared EMD, expected-value decoding).

COMMAND (CPU smoke run, a few minutes on 2 cores; builds amp_space/tiny if missing):
  python -m ampspace.train --config=configs/wave2wavenet.py:runlocal --workdir=runs/w2w_local

COMMAND (paper scale, accelerators; build amp_space/synthetic first):
  python -m ampspace.train --config=configs/wave2wavenet.py --workdir=runs/w2w

EXPECTED (runlocal): the training loss falls within the run (test_end_to_end checks this) and
`python -m ampspace.evaluate --workdir=runs/w2w_local` writes eval/test/metrics.{json,md}.
Paper-scale figures are not claimed here; see the README's results section for measured ones.
"""

from __future__ import annotations

import ml_collections

from ampspace.config_files import config_module

common = config_module("common")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  runlocal = common.parse_arg(arg, __file__, runlocal=False).runlocal
  c = common.experiment("wave2wavenet")
  c.dataset = common.amp_space_dataset(runlocal)
  c.input = common.input_pipeline(
    runlocal, batch_size=8 if runlocal else 64, window=2048 if runlocal else 8192
  )

  c.model = ml_collections.ConfigDict()
  c.model.name = "wave2wavenet"
  c.model.depth = 20
  c.model.channels = 16 if runlocal else 64
  c.model.kernel_size = 3
  c.model.max_dilation = 512
  c.model.num_classes = 256
  c.model.causal = True

  c.loss = ml_collections.ConfigDict()
  c.loss.name = "emd_squared"  # emd_squared | emd | cross_entropy (256-way); mse | esr | mr_stft (num_classes=1)
  c.loss.sigma = 0.5  # class weights w_i ∝ (1/N_i)^σ; 0 disables
  c.loss.decode = "expected_value"  # expected_value | argmax

  c.optimizer = common.adam_cosine(3e-3 if runlocal else 1e-3, 20 if runlocal else 1000)
  c.train = common.train_loop(
    steps=300 if runlocal else 200_000,
    log_every=25 if runlocal else 100,
    eval_every=100 if runlocal else 5000,
    eval_examples=4 if runlocal else 16,
    checkpoint_every=100 if runlocal else 5000,
    keep_checkpoints=3,
  )

  c.eval = ml_collections.ConfigDict()
  c.eval.at_end = True
  c.eval.split = "test"
  c.eval.max_examples = 16 if runlocal else 256
  c.eval.write_audio = 3  # clips written as WAV (DI, target, prediction) + a PNG
  return c
