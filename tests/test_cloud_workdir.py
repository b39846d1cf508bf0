"""A workdir on a bucket (`--workdir=gs://bucket/run`) against a local Cloud Storage emulator
(fake-gcs-server, started and stopped here) on the loopback address.

A run on the bucket is interrupted and started again; its losses, step by step, and its final
parameters must equal those of an uninterrupted run in a local folder. The model is then
evaluated and exported straight from the bucket. The slow test does the same through the
command line, killing the process with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

import gcs_emulator
from ampspace import paths
from ampspace.files import atomic_open, atomic_write
from trainer_util import REPO, tiny_config, train_command

BUCKET = "ampspace-test"
STEPS = 24
KILL_AT = 10


@pytest.fixture(scope="module")
def gcs():
  """The emulator's URL, with BUCKET made; the environment points every client at it."""
  with gcs_emulator.running(BUCKET) as url:
    yield url


def _records(text: str) -> list[dict]:
  return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_atomic_writes_and_appends_on_a_bucket(gcs):
  base = f"gs://{BUCKET}/files"
  atomic_write(f"{base}/a.json", '{"x": 1}')
  assert json.loads(paths.read_text(f"{base}/a.json")) == {"x": 1}
  with pytest.raises(RuntimeError):
    with atomic_open(f"{base}/half.txt") as f:
      f.write("half")
      raise RuntimeError("the writer failed")
  assert not paths.exists(f"{base}/half.txt"), "a failed write left an object behind"
  for line in ("one\n", "two\n"):  # a second opening continues the object's text
    with paths.open_append(f"{base}/log.txt") as f:
      f.write(line)
      f.flush()
  assert paths.read_text(f"{base}/log.txt") == "one\ntwo\n"
  assert paths.isdir(base) and paths.isfile(f"{base}/a.json") and not paths.isdir(f"{base}/a.json")


def test_a_dataset_missing_from_the_bucket_is_one_clear_error(gcs, tmp_path, monkeypatch):
  import ml_collections

  from ampspace.data import sources
  from ampspace.errors import AmpSpaceError

  monkeypatch.setenv("AMPSPACE_DATA_CACHE", str(tmp_path))
  config = ml_collections.ConfigDict({"name": "amp_space/tiny", "data_dir": f"gs://{BUCKET}/none"})
  with pytest.raises(AmpSpaceError, match=f"gs://{BUCKET}/none/amp_space/tiny: no built dataset"):
    sources.data_dir_of(config)
  assert not os.listdir(tmp_path)


def _command(data_dir: str, workdir: str) -> list[str]:
  return train_command(
    data_dir,
    workdir,
    **{
      "train.steps": STEPS,
      "train.checkpoint_every": 4,
      "train.log_every": 2,
      "train.async_checkpoints": True,
      "train.tensorboard": True,
    },
  )


def _train(cmd) -> str:
  proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout + proc.stderr


def _train_and_kill(cmd, log_url: str) -> None:
  """Starts training and SIGKILLs it once the bucket's log shows step KILL_AT."""
  proc = subprocess.Popen(
    cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
  )
  deadline = time.time() + 300
  while time.time() < deadline and proc.poll() is None:
    if paths.exists(log_url) and any(
      r["step"] >= KILL_AT for r in _records(paths.read_text(log_url))
    ):
      proc.send_signal(signal.SIGKILL)
      break
    time.sleep(0.1)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == -signal.SIGKILL, f"the run was not killed: {err[-2000:]}"
  assert _records(paths.read_text(log_url))[-1]["step"] < STEPS


class _Crash(Exception):
  pass


def _leaves(params):
  import jax

  return [np.asarray(x) for x in jax.tree.leaves(params)]


def test_a_run_on_a_bucket_resumes_exactly_then_evaluates_and_exports(
  gcs, tiny_data_dir, tiny_reference, tmp_path, monkeypatch
):
  """In-process: a run on the bucket, reading its dataset from the bucket too, crashes at its
  8th batch and is started again; its losses and parameters equal a local uninterrupted run's,
  and the model is evaluated and exported from the bucket, with the same figures and weights
  as the local run's."""
  from ampspace.runtime import export
  from ampspace.trainers import common
  from ampspace.trainers import wave2wavenet as trainer
  from ampspace import evaluate

  local, ref_losses, ref_params = tiny_reference  # the same config, in a local folder
  data = f"gs://{BUCKET}/tfds"  # the dataset too: a local copy is fetched into the cache
  paths.upload_folder(tiny_data_dir, data)
  monkeypatch.setenv("AMPSPACE_DATA_CACHE", str(tmp_path / "cache"))
  config = tiny_config(data, **{"train.tensorboard": True})

  run = f"gs://{BUCKET}/inprocess/w2w"
  real, calls = common.global_batch, {"n": 0}

  def crash_at_8(*args, **kwargs):
    calls["n"] += 1
    if calls["n"] == 8:
      raise _Crash()
    return real(*args, **kwargs)

  with monkeypatch.context() as m, pytest.raises(_Crash):
    m.setattr(common, "global_batch", crash_at_8)
    trainer.train_and_evaluate(config, run)
  assert len(os.listdir(tmp_path / "cache")) == 1, "the dataset was not fetched from the bucket"
  assert paths.isdir(f"{run}/checkpoints/6"), "no checkpoint reached the bucket"
  assert not os.path.exists("gs:") and not os.path.exists(os.path.join(REPO, "gs:"))
  result = trainer.train_and_evaluate(config, run)
  assert result["steps"] == config.train.steps
  got = {r["step"]: r["loss"] for r in _records(paths.read_text(f"{run}/train_log.jsonl"))}
  assert got == ref_losses  # exact, every step; the resumed run's records win for repeats
  for a, b in zip(_leaves(result["params"]), ref_params, strict=True):
    np.testing.assert_array_equal(a, b)
  assert list(paths.epath(f"{run}/tb").glob("events.out.tfevents*")), "no TensorBoard events"

  on_bucket = evaluate.evaluate(run, split="test", max_examples=2, write_audio=1)
  metrics = json.loads(paths.read_text(f"{run}/eval/test/metrics.json"))
  assert metrics["step"] == config.train.steps and metrics["groups"]["all"]["clips"] == 2
  assert paths.isfile(f"{run}/eval/test/clip000_prediction.wav")
  assert paths.isfile(f"{run}/eval/test/clip000_spectrogram.png")
  at_home = evaluate.evaluate(local, split="test", max_examples=2, write_audio=0)
  assert on_bucket["groups"]["all"]["esr"] == at_home["groups"]["all"]["esr"]

  json_path, npz_path = export.export_workdir(run, str(tmp_path / "export" / "bucket"))
  with open(json_path) as f:
    source = json.load(f)["source"]
  assert source["workdir"] == run and source["step"] == config.train.steps
  _, local_npz = export.export_workdir(local, str(tmp_path / "export" / "local"))
  with np.load(npz_path) as w, np.load(local_npz) as v:
    assert sorted(w.files) == sorted(v.files)
    for k in w.files:
      np.testing.assert_array_equal(w[k], v[k], err_msg=k)


@pytest.mark.slow
def test_a_killed_training_command_on_a_bucket_resumes_exactly(gcs, tiny_data_dir, tmp_path):
  """`python -m ampspace.train --workdir=gs://...` SIGKILLed part-way (async checkpoints,
  TensorBoard on) and run again reproduces a local uninterrupted run's losses, step by step,
  and its final parameters."""
  from flax import nnx

  from ampspace import checkpoints

  local = str(tmp_path / "reference")
  _train(_command(tiny_data_dir, local))
  with open(os.path.join(local, "train_log.jsonl")) as f:
    reference = {r["step"]: r["loss"] for r in _records(f.read())}
  assert sorted(reference) == list(range(1, STEPS + 1))

  run = f"gs://{BUCKET}/runs/w2w"
  cmd = _command(tiny_data_dir, run)
  _train_and_kill(cmd, f"{run}/train_log.jsonl")
  output = _train(cmd)
  assert "resumed from gs://" in output, output[-2000:]

  got = {r["step"]: r["loss"] for r in _records(paths.read_text(f"{run}/train_log.jsonl"))}
  assert sorted(got) == list(range(1, STEPS + 1))
  for s in range(1, STEPS + 1):  # the resumed run's records win for repeated steps
    assert got[s] == reference[s], f"step {s}: loss {got[s]} on the bucket, {reference[s]} locally"
  on_bucket, at_home = checkpoints.restore_model(run), checkpoints.restore_model(local)
  assert on_bucket.step == at_home.step == STEPS
  for a, b in zip(
    nnx.to_flat_state(on_bucket.params), nnx.to_flat_state(at_home.params), strict=True
  ):
    np.testing.assert_array_equal(np.asarray(a[1].value), np.asarray(b[1].value), err_msg=a[0])
  assert list(paths.epath(f"{run}/tb").glob("events.out.tfevents*")), "no TensorBoard events"
