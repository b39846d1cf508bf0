"""The tiny path end to end: render -> build -> train -> checkpoint -> restore -> evaluate."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quickstart_pipeline_end_to_end(tmp_path):
  from ampspace import quickstart
  from ampspace.trainers import common

  workdir = str(tmp_path / "qs")
  report = quickstart.run_quickstart(
    workdir, num_dis=5, di_seconds=2.0, steps=60, sweep="one_knob:gain=2,8"
  )
  # Rendered release layout and a built ArrayRecord dataset.
  rendered = os.path.join(workdir, "rendered")
  settings = [
    os.path.join(d, f) for d, _, fs in os.walk(rendered) for f in fs if f == "settings.yaml"
  ]
  assert len(settings) == 5
  assert report["di_engine"] in ("fluidsynth", "karplus")
  records = [
    f for d, _, fs in os.walk(os.path.join(workdir, "tfds")) for f in fs if ".array_record-" in f
  ]
  assert records, "no ArrayRecord shards written"
  # Training: loss went down, checkpoint written.
  assert report["train_steps"] == 60
  assert report["loss_last"] < report["loss_first"]
  train_dir = os.path.join(workdir, "train")
  assert os.path.isdir(os.path.join(train_dir, "checkpoints", "60"))
  # Restore gives back the trained parameters (not a fresh init).
  config = common.load_config(train_dir)
  _, params, step = common.restore_params(train_dir, config)
  fresh = common.build_model(config)
  from flax import nnx

  _, fresh_params = nnx.split(fresh)
  diffs = [
    float(np.abs(np.asarray(a) - np.asarray(b)).max())
    for a, b in zip(jax_leaves(params), jax_leaves(fresh_params))
  ]
  assert step == 60 and max(diffs) > 0
  # Evaluation outputs: metrics JSON with finite numbers and listening samples.
  out = os.path.join(train_dir, "eval", "test")
  metrics = json.load(open(os.path.join(out, "metrics.json")))
  assert metrics["groups"]["all"]["clips"] >= 1
  assert all(np.isfinite(metrics["groups"]["all"][m]) for m in ("mse", "esr", "mr_stft"))
  for name in ("di", "target", "prediction"):
    assert os.path.getsize(os.path.join(out, f"clip000_{name}.wav")) > 1000
  assert os.path.getsize(os.path.join(out, "clip000_spectrogram.png")) > 1000
  assert os.path.exists(os.path.join(workdir, "quickstart.json"))


def jax_leaves(tree):
  import jax

  return jax.tree.leaves(tree)


def _run(*args, cwd=REPO):
  return subprocess.run(
    [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120
  )


@pytest.mark.parametrize(
  "args, message",
  [
    (["--config=configs/does_not_exist.py", "--workdir=/tmp/x"], "does_not_exist.py"),
    (
      ["--config=configs/wave2wavenet.py:runlocal", "--workdir=/tmp/x", "--config.train.stepz=3"],
      "stepz",
    ),
  ],
)
def test_train_bad_config_is_one_clear_line(args, message):
  r = _run("-m", "ampspace.train", *args)
  assert r.returncode != 0
  assert message in r.stderr
  assert "Traceback" not in r.stderr


def test_train_workdir_that_is_a_file(tmp_path):
  f = tmp_path / "file"
  f.write_text("x")
  r = _run("-m", "ampspace.train", "--config=configs/wave2wavenet.py:runlocal", f"--workdir={f}")
  assert r.returncode != 0
  assert "is a file" in r.stderr and "Traceback" not in r.stderr


def test_evaluate_missing_workdir_is_one_clear_line(tmp_path):
  r = _run("-m", "ampspace.evaluate", f"--workdir={tmp_path / 'nope'}")
  assert r.returncode != 0
  assert "not a folder" in r.stderr and "Traceback" not in r.stderr
