"""`python -m ampspace.quickstart --workdir=runs/quickstart`: the whole path on a small default.

1. DIs: a few short guitar phrases (FluidSynth when installed, else plucked-string synthesis);
2. render them through the `tube_amp` device over a gain sweep (`ampspace.render`);
3. build `amp_space/synthetic` from that folder with the TFDS builder (ArrayRecord);
4. train Wave2WaveNet with configs/wave2wavenet.py:runlocal for a few minutes on CPU;
5. evaluate on the DI-disjoint test split: metrics JSON/Markdown, listening WAVs and spectrograms.
"""

from __future__ import annotations

import json
import os
import sys
import time

from absl import app, flags, logging

from ampspace import render, trainers
from ampspace.config_files import load_config
from ampspace.di import corpus, fluidsynth_render
from ampspace.errors import AmpSpaceError, report_errors

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defined on demand, so importing this module (tests, notebooks) defines no flags."""
  flags.DEFINE_string("workdir", "runs/quickstart", "Where everything is written.")
  flags.DEFINE_integer("num_dis", 12, "Number of DI phrases.")
  flags.DEFINE_float("di_seconds", 3.0, "Length of each DI phrase in seconds.")
  flags.DEFINE_integer("steps", 400, "Training steps.")
  flags.DEFINE_string(
    "knob_sweep",
    "one_knob:gain=1,3,5,7,9",
    "Sweep spec rendered for every DI (see ampspace.sweeps).",
  )


def stage(title: str) -> None:
  print(f"\n=== {title}", file=sys.stderr, flush=True)


def make_dis(out: str, num: int, seconds: float, seed: int = 0) -> str:
  """Writes `num` DI phrases of `seconds` into `out` with the DI corpus writer (resumable) and
  returns the engine used: FluidSynth guitar programs when installed, else plucked strings."""
  try:
    fluidsynth_render.find_fluidsynth()
    fluidsynth_render.find_soundfont()
    engine = "fluidsynth"
  except AmpSpaceError as e:
    print(f"warning: {e}; using plucked-string DIs instead", file=sys.stderr)
    engine = "karplus"
  corpus.build_corpus(
    out, minutes=num * seconds / 60.0, seconds=seconds, seed=seed, engine=engine, workers=1
  )
  return engine


def quickstart_config(data_dir: str, rendered: str, steps: int):
  """configs/wave2wavenet.py:runlocal pointed at the quickstart's own dataset."""
  config = load_config("wave2wavenet", "runlocal")
  config.dataset.name = "amp_space/synthetic"
  config.dataset.data_dir = data_dir
  config.dataset.manual_dir = rendered
  config.dataset.build_if_missing = True
  config.train.steps = steps
  config.train.checkpoint_every = max(50, steps // 4)
  config.train.eval_every = max(50, steps // 4)
  config.eval.max_examples = 12
  config.eval.write_audio = 3
  return config


def run_quickstart(
  workdir: str, *, num_dis: int, di_seconds: float, steps: int, sweep: str
) -> dict:
  # jax, flax, Grain and TFDS: imported here, so that importing this module stays light
  from ampspace import evaluate
  from ampspace.data import sources

  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise AmpSpaceError(f"--workdir {workdir}: exists and is a file, expected a folder")
  t0 = time.time()
  di_dir, rendered = os.path.join(workdir, "di"), os.path.join(workdir, "rendered")
  data_dir, train_dir = os.path.join(workdir, "tfds"), os.path.join(workdir, "train")

  stage(f"1/5 DIs: {num_dis} phrases of {di_seconds:g} s -> {di_dir}")
  engine = make_dis(di_dir, num_dis, di_seconds)
  stage(f"2/5 render tube_amp over {sweep} -> {rendered}")
  summary = render.render("tube_amp", sweep, di_dir, rendered)
  stage(f"3/5 build amp_space/synthetic (ArrayRecord) -> {data_dir}")
  config = quickstart_config(data_dir, rendered, steps)
  sources.ensure_built(config.dataset)
  stage(f"4/5 train Wave2WaveNet ({steps} steps, configs/wave2wavenet.py:runlocal) -> {train_dir}")
  result = trainers.get_trainer(config.trainer)(config, train_dir)
  stage("5/5 evaluate on the DI-disjoint test split")
  ev = evaluate.evaluate(train_dir, split="test", config=config)
  losses = [h["loss"] for h in result["history"]]
  k = max(1, len(losses) // 10)
  report = {
    "di_engine": engine,
    "clips_rendered": summary["clips"],
    "train_steps": result["steps"],
    "loss_first": sum(losses[:k]) / k if losses else None,
    "loss_last": sum(losses[-k:]) / k if losses else None,
    "test": ev["groups"]["all"],
    "seconds": round(time.time() - t0, 1),
    "listening_samples": os.path.join(train_dir, "eval", "test"),
  }
  with open(os.path.join(workdir, "quickstart.json"), "w") as f:
    json.dump(report, f, indent=2)
  return report


@report_errors
def main(argv):
  del argv
  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  r = run_quickstart(
    FLAGS.workdir,
    num_dis=FLAGS.num_dis,
    di_seconds=FLAGS.di_seconds,
    steps=FLAGS.steps,
    sweep=FLAGS.knob_sweep,
  )
  print(f"\nquickstart finished in {r['seconds']} s")
  if r["loss_first"] is not None:
    print(
      f"  training loss {r['loss_first']:.4f} -> {r['loss_last']:.4f} over {r['train_steps']} steps"
    )
  t = r["test"]
  print(
    f"  test: MSE {t['mse']:.5f}  ESR {t['esr']:.4f}  MR-STFT {t['mr_stft']:.3f} "
    f"({t['clips']} clips)"
  )
  print(
    f"  listening samples (DI / target / prediction WAVs, spectrogram PNGs): "
    f"{r['listening_samples']}"
  )
  print(f"  metrics: {os.path.join(r['listening_samples'], 'metrics.json')}")
  print(f"  TensorBoard: tensorboard --logdir {os.path.join(FLAGS.workdir, 'train', 'tb')}")
  print(f"  summary: {os.path.join(FLAGS.workdir, 'quickstart.json')}")


if __name__ == "__main__":
  define_flags()
  app.run(main)
