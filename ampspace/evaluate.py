"""`python -m ampspace.evaluate --workdir=DIR [--split=test]`: metrics tables from a checkpoint.

Runs the model over whole clips of a split, writes MSE, ESR (pre-emphasised) and MR-STFT
overall and per device type as JSON and Markdown, and renders WAVs (DI, target, prediction)
with a spectrogram PNG for the first few clips, into DIR/eval/<split>/.
"""

from __future__ import annotations

import collections
import sys

import numpy as np
from absl import app, flags, logging
from tqdm import tqdm

from ampspace.audio import metrics as audio_metrics
from ampspace.audio.spectral import save_spectrogram_png
from ampspace.audio.wav_io import write_wav
from ampspace.data import pipeline, sources
from ampspace.data.filters import text as _text
from ampspace.errors import AmpSpaceError, report_errors
from ampspace.runtime.inference import make_apply, run_clip
from ampspace import checkpoints, paths
from ampspace.files import atomic_write, write_json_atomic

METRICS = ("mse", "esr", "mr_stft")


def markdown_table(groups: dict[str, dict]) -> str:
  lines = ["| group | clips | MSE ×1e-3 | ESR | MR-STFT |", "|---|---:|---:|---:|---:|"]
  for name, g in groups.items():
    lines.append(
      f"| {name} | {g['clips']} | {1e3 * g['mse']:.3f} | {g['esr']:.4f} | {g['mr_stft']:.3f} |"
    )
  return "\n".join(lines) + "\n"


def evaluate(
  workdir: str,
  split: str = "test",
  config=None,
  *,
  step: int | None = None,
  max_examples: int | None = None,
  write_audio: int | None = None,
  writer=None,
  out_dir: str | None = None,
) -> dict:
  restored = checkpoints.restore_model(workdir, config, step)
  config, step = restored.config, restored.step
  apply = make_apply(
    restored.graphdef, restored.params, config.loss.get("decode", "expected_value")
  )
  source = sources.open_split(config.dataset, split)
  n = (
    len(source)
    if not max_examples and not config.eval.get("max_examples")
    else min(len(source), max_examples or config.eval.max_examples)
  )
  if n == 0:
    raise AmpSpaceError(f"split {split!r} of {config.dataset.name} is empty")
  n_audio = config.eval.get("write_audio", 3) if write_audio is None else write_audio
  out_dir = out_dir or paths.join(workdir, "eval", split)  # local or a bucket, as the workdir
  paths.makedirs(out_dir)

  per_clip = []
  for i in tqdm(range(n), desc=f"evaluate {split}", unit="clip", file=sys.stderr):
    record = source[i]
    di = pipeline.decode_audio(record, "di")
    target = pipeline.decode_audio(record, "output")
    pred = run_clip(apply, di, pipeline.conditioning_of(record), restored.context)
    m = audio_metrics.all_metrics(target, pred)
    clip = {
      "clip_id": _text(record["clip_id"]),
      "device": _text(record["device"]),
      "device_type": _text(record["device_type"]),
      "source": _text(record["source"]),
      **m,
    }
    per_clip.append(clip)
    if i < n_audio:
      stem = paths.join(out_dir, f"clip{i:03d}")
      for name, x in (("di", di), ("target", target), ("prediction", pred)):
        write_wav(f"{stem}_{name}.wav", np.clip(x, -1, 1))
      save_spectrogram_png(
        f"{stem}_spectrogram.png", {"DI": di, "target": target, "prediction": pred}
      )
      if writer:
        for name, x in (("di", di), ("target", target), ("prediction", pred)):
          writer.add_audio(f"{split}/clip{i}/{name}", np.clip(x, -1, 1), step, sample_rate=44100)

  groups = collections.OrderedDict()
  groups["all"] = per_clip
  for key in ("device_type", "device"):
    for value in sorted({c[key] for c in per_clip}):
      groups[f"{key}={value}"] = [c for c in per_clip if c[key] == value]
  summary = {
    name: {"clips": len(cs), **{m: float(np.mean([c[m] for c in cs])) for m in METRICS}}
    for name, cs in groups.items()
  }
  result = {
    "split": split,
    "step": step,
    "dataset": config.dataset.name,
    "groups": summary,
    "clips": per_clip,
  }
  write_json_atomic(paths.join(out_dir, "metrics.json"), result, indent=2)
  atomic_write(
    paths.join(out_dir, "metrics.md"),
    f"# Evaluation of {workdir} at step {step} on {config.dataset.name} [{split}]\n\n"
    + markdown_table(summary),
  )
  if writer:
    for m in METRICS:
      writer.add_scalar(f"{split}/{m}", summary["all"][m], step)
  return result


FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defined on demand, so that importing this module (as train.py does) defines no flags."""
  flags.DEFINE_string("workdir", None, "A training workdir (holds config.json, checkpoints/).")
  flags.DEFINE_string("split", "test", "Dataset split to evaluate.")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: latest).")
  flags.DEFINE_integer("max_examples", None, "Evaluate at most this many clips.")


@report_errors
def main(argv):
  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # Orbax and TFDS are chatty at INFO
  del argv
  if not FLAGS.workdir:
    raise AmpSpaceError("--workdir is required")
  if not paths.isdir(FLAGS.workdir):
    raise AmpSpaceError(f"--workdir {FLAGS.workdir}: not a folder")
  result = evaluate(FLAGS.workdir, FLAGS.split, step=FLAGS.step, max_examples=FLAGS.max_examples)
  print(markdown_table(result["groups"]))
  print(f"wrote {paths.join(FLAGS.workdir, 'eval', FLAGS.split)}")


def run():
  define_flags()
  app.run(main)


if __name__ == "__main__":
  run()
