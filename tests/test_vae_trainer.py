"""The VAE trainer through ampspace.train's registry: checkpoints, TensorBoard, restore, resume."""

from __future__ import annotations

from ampspace.config_files import load_config
import json
import os

import numpy as np
import pytest
from flax import nnx


def get_config(arg: str):
  return load_config("vae", arg)


def small_config(data_dir: str, steps: int):
  c = get_config("runlocal")
  c.dataset.data_dir = data_dir
  c.model.num_frames = 16
  c.model.channels = (16, 16, 32, 32)
  c.model.hidden = 64
  c.input.batch_size = 4
  c.input.read_threads = 1
  c.kl.warmup_steps = 4
  c.train.steps = steps
  c.train.log_every = 2
  c.train.eval_every = 3
  c.train.checkpoint_every = 3
  c.train.eval_examples = 2
  c.train.audio_examples = 1
  c.train.griffin_lim_iters = 2
  c.train.async_checkpoints = False
  return c


def test_train_checkpoint_and_restore(tiny_data_dir, tmp_path):
  from ampspace.trainers import get_trainer
  from ampspace.trainers.vae import build_vae, restore_vae

  train = get_trainer("vae")
  workdir = str(tmp_path / "vae")
  result = train(small_config(tiny_data_dir, 3), workdir)
  assert result["steps"] == 3
  h = result["history"]
  assert [r["beta"] for r in h] == [0.0, 0.25, 0.5]  # KL annealing over 4 steps
  assert all(np.isfinite(r["elbo"]) and r["elbo"] >= r["reconstruction"] for r in h)
  assert os.path.isdir(os.path.join(workdir, "checkpoints", "3"))
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(workdir, "tb")))
  metrics = json.load(open(os.path.join(workdir, "vae_metrics.json")))
  assert metrics["step"] == 3 and np.isfinite(metrics["elbo"])

  model, config, step = restore_vae(workdir)
  assert step == 3 and config.trainer == "vae" and model.num_frames == 16
  fresh = nnx.state(build_vae(config))
  trained = nnx.state(model)
  assert not np.allclose(fresh["mean"]["kernel"][...], trained["mean"]["kernel"][...])


@pytest.mark.slow
def test_resume_matches_an_uninterrupted_run(tiny_data_dir, tmp_path):
  """Resuming at step 3 of 5 sees the same batches and latent samples as a straight run."""
  from ampspace.trainers import get_trainer

  train = get_trainer("vae")
  workdir = str(tmp_path / "vae")
  train(small_config(tiny_data_dir, 3), workdir)
  resumed = train(small_config(tiny_data_dir, 5), workdir)
  straight = train(small_config(tiny_data_dir, 5), str(tmp_path / "straight"))
  assert [r["step"] for r in resumed["history"]] == [4, 5]
  np.testing.assert_allclose(
    [r["loss"] for r in resumed["history"]], [r["loss"] for r in straight["history"][3:]], rtol=2e-4
  )


def test_the_vae_shares_the_loop_sigterm_and_divergence(tiny_data_dir, tmp_path, monkeypatch):
  """The VAE runs the shared loop: SIGTERM saves where it lands and reports `preempted` (so
  `python -m ampspace.train` exits 143), and a non-finite batch stops with the divergence
  error instead of training on."""
  import signal

  from ampspace.errors import AmpSpaceError
  from ampspace.trainers import common, get_trainer

  train, real = get_trainer("vae"), common.global_batch
  calls = {"n": 0}

  def sigterm_at_2(local, sharding):
    calls["n"] += 1
    if calls["n"] == 2:
      os.kill(os.getpid(), signal.SIGTERM)
    return real(local, sharding)

  monkeypatch.setattr(common, "global_batch", sigterm_at_2)
  workdir = str(tmp_path / "preempted")
  result = train(small_config(tiny_data_dir, 5), workdir)
  assert result["preempted"] and result["steps"] == 2
  assert os.path.isdir(os.path.join(workdir, "checkpoints", "2"))
  assert signal.getsignal(signal.SIGTERM) is not None  # the handler was put back

  calls["n"] = 0

  def nan_at_2(local, sharding):
    calls["n"] += 1
    if calls["n"] == 2:
      local = dict(local, mel=np.full_like(local["mel"], np.nan))
    return real(local, sharding)

  monkeypatch.setattr(common, "global_batch", nan_at_2)
  with pytest.raises(AmpSpaceError, match=r"diverged: loss nan.* at step 2 .*no checkpoint"):
    train(small_config(tiny_data_dir, 5), str(tmp_path / "diverged"))
  logged = [json.loads(l)["step"] for l in open(tmp_path / "diverged" / "train_log.jsonl")]
  assert logged == [1]  # the good step before it was written, nothing after
