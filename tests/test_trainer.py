"""Trainer: exact resume after an interruption, NaN/Inf stop, init_from, schedules, multi-device."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from ampspace.errors import AmpSpaceError
from ampspace.trainers import common
from ampspace.trainers import wave2wavenet as trainer
from trainer_util import REPO, losses_by_step, read_log, tiny_config


def _leaves(params):
  return [np.asarray(x) for x in jax.tree.leaves(params)]


@pytest.fixture
def reference(tiny_reference):
  """(workdir, losses by step, parameter leaves) of the uninterrupted 12-step run (conftest)."""
  return tiny_reference


def test_loss_falls_and_log_has_all_metrics(reference):
  workdir, losses, _ = reference
  assert sorted(losses) == list(range(1, 13))
  record = read_log(workdir)[0]
  assert {"loss", "mse", "esr", "grad_norm", "learning_rate"} <= set(record)
  assert all(np.isfinite(v) for v in losses.values())


class _Interrupt(Exception):
  pass


def _interrupt_at(monkeypatch, call: int, action):
  """Runs `action` when the trainer fetches its `call`-th batch (an interruption mid-run)."""
  real = common.global_batch
  calls = {"n": 0}

  def wrapped(*args, **kwargs):
    calls["n"] += 1
    if calls["n"] == call:
      action()
    return real(*args, **kwargs)

  monkeypatch.setattr(common, "global_batch", wrapped)


def _raise():
  raise _Interrupt()


@pytest.mark.parametrize("kind, at", [("crash", 8), ("sigterm", 5)])
def test_interrupted_run_resumes_exactly(reference, tiny_data_dir, tmp_path, monkeypatch, kind, at):
  """A crash (no save: resume from step 6) or a SIGTERM (saves at the step it lands in) and a
  rerun give the uninterrupted run's per-step losses bit for bit, and the same parameters."""
  _, ref_losses, ref_params = reference
  workdir = str(tmp_path / kind)
  config = tiny_config(tiny_data_dir)
  action = _raise if kind == "crash" else lambda: os.kill(os.getpid(), signal.SIGTERM)
  _interrupt_at(monkeypatch, at, action)
  if kind == "crash":
    with pytest.raises(_Interrupt):
      trainer.train_and_evaluate(config, workdir)
  else:
    first = trainer.train_and_evaluate(config, workdir)
    assert first["preempted"] and first["steps"] == at
    assert os.path.isdir(os.path.join(workdir, "checkpoints", str(at)))
  monkeypatch.undo()
  result = trainer.train_and_evaluate(config, workdir)
  assert result["steps"] == 12 and not result["preempted"]
  assert losses_by_step(workdir) == ref_losses  # exact float equality, every step
  for a, b in zip(_leaves(result["params"]), ref_params):
    np.testing.assert_array_equal(a, b)


def test_nan_stops_with_clear_message_and_last_good_checkpoint_restores(
  reference, tiny_data_dir, tmp_path, monkeypatch
):
  _, ref_losses, _ = reference
  workdir = str(tmp_path / "nan")
  config = tiny_config(tiny_data_dir)
  real = common.global_batch
  calls = {"n": 0}

  def poisoned(local, sharding):
    calls["n"] += 1
    if calls["n"] == 8:
      local = dict(local, input=np.full_like(local["input"], np.nan))
    return real(local, sharding)

  monkeypatch.setattr(common, "global_batch", poisoned)
  with pytest.raises(AmpSpaceError) as e:
    trainer.train_and_evaluate(config, workdir)
  message = str(e.value)
  assert "diverged" in message and "step 8" in message
  assert "last good checkpoint is step 6" in message and workdir in message
  graphdef, params, step = common.restore_params(workdir, config)
  assert step == 6 and all(np.all(np.isfinite(x)) for x in _leaves(params))
  assert [losses_by_step(workdir)[s] for s in range(1, 8)] == [ref_losses[s] for s in range(1, 8)]


def test_init_from_starts_at_the_checkpoint(reference, tiny_data_dir, tmp_path):
  ref_dir, _, ref_params = reference
  for source in (ref_dir, os.path.join(ref_dir, "checkpoints", "12")):
    config = tiny_config(tiny_data_dir, init_from=source, **{"train.steps": 0})
    result = trainer.train_and_evaluate(config, str(tmp_path / os.path.basename(source)))
    for a, b in zip(_leaves(result["params"]), ref_params):
      np.testing.assert_array_equal(a, b)
  with pytest.raises(AmpSpaceError, match="no such checkpoint"):
    trainer.train_and_evaluate(
      tiny_config(tiny_data_dir, init_from=str(tmp_path / "nope")), str(tmp_path / "bad")
    )


def test_init_polarity_match_lands_on_the_same_model_from_either_polarity(
  reference, tiny_data_dir, tmp_path, monkeypatch
):
  """Fine-tuning from a model and from its inverted twin: `match` starts both from the one
  that correlates positively with the training targets; `keep` leaves them opposite."""
  from flax import nnx

  from ampspace.models.wave2wavenet import with_inverted_output

  ref_dir, _, _ = reference
  real_init = common.init_params_from

  def inverted_init(source, config, model):
    params, origin = real_init(source, config, model)
    graphdef, _ = nnx.split(model)
    return nnx.split(with_inverted_output(nnx.merge(graphdef, params)))[1], origin + ", inverted"

  start = {}
  for polarity in ("keep", "match"):
    for flipped in (False, True):
      monkeypatch.setattr(common, "init_params_from", inverted_init if flipped else real_init)
      config = tiny_config(
        tiny_data_dir, init_from=ref_dir, init_polarity=polarity, **{"train.steps": 0}
      )
      result = trainer.train_and_evaluate(config, str(tmp_path / f"{polarity}{flipped}"))
      start[polarity, flipped] = _leaves(result["params"])
  differ = [not np.array_equal(a, b) for a, b in zip(start["keep", False], start["keep", True])]
  assert any(differ)
  for a, b in zip(start["match", False], start["match", True]):
    np.testing.assert_array_equal(a, b)
  with pytest.raises(AmpSpaceError, match="init_polarity 'flip'"):
    trainer.train_and_evaluate(
      tiny_config(tiny_data_dir, init_from=ref_dir, init_polarity="flip"), str(tmp_path / "bad")
    )


def test_freeze_knob_rows_zeroes_only_the_knob_rows_of_conditioning_projections():
  import optax

  params = {
    "layers": [{"cond": {"kernel": np.ones((6, 3), np.float32)}}],
    "mixer": {"kernel": np.ones((6, 2), np.float32)},
    "head": {"kernel": np.ones((6, 3), np.float32), "bias": np.ones(3, np.float32)},
  }
  tx = optax.chain(optax.adamw(0.1, weight_decay=0.5), common.freeze_knob_rows(params, 2))
  grads = jax.tree.map(np.ones_like, params)
  updates, _ = tx.update(grads, tx.init(params), params)
  for kernel in (updates["layers"][0]["cond"]["kernel"], updates["mixer"]["kernel"]):
    assert np.all(np.asarray(kernel)[:2] == 0) and np.all(np.asarray(kernel)[2:] < 0)
  assert np.all(np.asarray(updates["head"]["kernel"]) < 0)
  with pytest.raises(AmpSpaceError, match="no conditioning projection"):
    common.freeze_knob_rows({"head": params["head"]})


def test_freeze_knob_conditioning_fine_tunes_all_but_the_knob_rows(
  reference, tiny_data_dir, tmp_path
):
  from ampspace import conditioning

  ref_dir, _, ref_params = reference
  overrides = {"train.steps": 4, "optimizer.weight_decay": 1e-2}
  config = tiny_config(tiny_data_dir, init_from=ref_dir, freeze_knob_conditioning=True, **overrides)
  result = trainer.train_and_evaluate(config, str(tmp_path / "ft"))
  n = len(conditioning.KNOB_VOCAB)
  conds, others = 0, 0
  for (path, after), before in zip(
    jax.tree_util.tree_leaves_with_path(result["params"]), ref_params
  ):
    after = np.asarray(after)
    if "cond" in jax.tree_util.keystr(path):
      conds += 1
      np.testing.assert_array_equal(after[:n], before[:n])
      assert not np.array_equal(after[n:], before[n:])
    else:
      others += not np.array_equal(after, before)
  assert conds == config.model.depth and others > 0
  with pytest.raises(AmpSpaceError, match="set init_from"):
    trainer.train_and_evaluate(
      tiny_config(tiny_data_dir, freeze_knob_conditioning=True), str(tmp_path / "bad")
    )


def test_ema_decay_warms_up_then_holds():
  assert float(common.ema_decay_at(0.999, 0)) == pytest.approx(0.1)
  assert float(common.ema_decay_at(0.999, 90)) == pytest.approx(91 / 100)
  assert float(common.ema_decay_at(0.9, 1000)) == pytest.approx(0.9)
  ema = {"w": np.array([1.0, 2.0], np.float32)}
  out = common.ema_update(ema, {"w": np.array([3.0, 4.0], np.float32)}, 0.5, 100)
  np.testing.assert_allclose(out["w"], [2.0, 3.0])  # 0.5·ema + 0.5·params
  assert out["w"].dtype == np.float32


def test_weight_average_is_the_runs_model_and_resumes_exactly(
  reference, tiny_data_dir, tmp_path, monkeypatch
):
  """optimizer.ema_decay: training is the plain run's (the average never feeds back); every
  checkpoint holds the average beside the parameters; it equals the average of the
  parameters after each step computed here; it is what the run returns and what inference
  restores; and a crashed run resumes it exactly."""
  from flax import nnx

  _, ref_losses, ref_params = reference
  keys = {"optimizer.ema_decay": 0.8, "train.checkpoint_every": 1, "train.keep_checkpoints": 20}
  config = tiny_config(tiny_data_dir, **keys)
  workdir = str(tmp_path / "ema")
  result = trainer.train_and_evaluate(config, workdir)
  assert losses_by_step(workdir) == ref_losses
  assert os.path.isdir(os.path.join(workdir, "checkpoints", "12", "ema"))

  _, expected = nnx.split(common.build_model(config))  # the initialisation (same seed)
  expected = _leaves(expected)
  for step in range(1, 13):
    _, params = nnx.split(common.build_model(config))
    mngr = common.checkpoint_manager(workdir, config, read_only=True)
    restored = mngr.restore(
      step,
      args=common.ocp.args.Composite(params=common.ocp.args.StandardRestore(params.to_pure_dict())),
    )
    mngr.close()
    nnx.replace_by_pure_dict(params, restored["params"])
    d = min(0.8, (1 + step) / (10 + step))
    expected = [d * e + (1 - d) * p for e, p in zip(expected, _leaves(params))]
    if step == 12:
      for a, b in zip(_leaves(params), ref_params):  # the trained weights: the plain run's
        np.testing.assert_array_equal(a, b)
  got = _leaves(result["params"])
  assert any(not np.array_equal(a, b) for a, b in zip(got, ref_params))
  for a, b in zip(got, expected):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
  _, restored, step = common.restore_params(workdir, config)
  assert step == 12
  for a, b in zip(_leaves(restored), got):
    np.testing.assert_array_equal(a, b)

  crashed = str(tmp_path / "ema_crash")
  _interrupt_at(monkeypatch, 8, _raise)
  with pytest.raises(_Interrupt):
    trainer.train_and_evaluate(config, crashed)
  monkeypatch.undo()
  resumed = trainer.train_and_evaluate(config, crashed)
  for a, b in zip(_leaves(resumed["params"]), got):
    np.testing.assert_array_equal(a, b)

  with pytest.raises(AmpSpaceError, match=r"optimizer.ema_decay=1.0"):
    trainer.train_and_evaluate(
      tiny_config(tiny_data_dir, **{"optimizer.ema_decay": 1.0}), str(tmp_path / "bad")
    )


@pytest.mark.parametrize("schedule", common.SCHEDULES)
def test_learning_rate_schedules(schedule):
  import ml_collections

  opt = ml_collections.ConfigDict(
    dict(
      learning_rate=1e-2,
      schedule=schedule,
      warmup_steps=10,
      final_fraction=0.1,
      decay_steps=20,
      decay_rate=0.5,
    )
  )
  lr = common.learning_rate_schedule(opt, 100)
  values = np.array([float(lr(s)) for s in range(101)])
  assert values.max() == pytest.approx(1e-2, rel=1e-5)
  if schedule != "constant":
    assert values[0] == 0.0 and values[10] == pytest.approx(1e-2)
  if schedule in ("cosine", "linear"):
    assert values[100] == pytest.approx(1e-3, rel=1e-3)
  if schedule == "exponential":
    assert values[30] == pytest.approx(0.5e-2, rel=1e-3)
  with pytest.raises(AmpSpaceError, match="schedule"):
    common.learning_rate_schedule(
      ml_collections.ConfigDict(dict(learning_rate=1.0, schedule="triangle")), 10
    )


def test_gradient_clipping_bounds_the_update():
  import ml_collections
  import optax

  opt = ml_collections.ConfigDict(
    dict(name="sgd", learning_rate=1.0, schedule="constant", weight_decay=0.0, grad_clip=0.5)
  )
  tx, _ = common.make_optimizer(opt, 10)
  params = {"w": np.zeros(4, np.float32)}
  updates, _ = tx.update({"w": np.full(4, 100.0, np.float32)}, tx.init(params), params)
  assert float(optax.global_norm(updates)) == pytest.approx(0.5, rel=1e-5)


def test_loss_that_does_not_fit_the_head_is_a_clear_error(tiny_data_dir, tmp_path):
  config = tiny_config(tiny_data_dir, **{"model.num_classes": 1})
  with pytest.raises(AmpSpaceError, match="num_classes=1"):
    trainer.train_and_evaluate(config, str(tmp_path / "w"))


def test_regression_head_trains_with_mse_and_writes_tensorboard(tiny_data_dir, tmp_path):
  config = tiny_config(
    tiny_data_dir,
    **{
      "model.num_classes": 1,
      "loss.name": "mse",
      "train.steps": 3,
      "train.log_every": 1,
      "train.eval_every": 2,
      "train.tensorboard": True,
    },
  )
  result = trainer.train_and_evaluate(config, str(tmp_path / "w"))
  assert result["steps"] == 3
  assert all(r["loss"] == pytest.approx(r["mse"]) for r in result["history"])
  assert {"mse", "esr", "loss"} <= set(result["validation"])
  tb = tmp_path / "w" / "tb"
  events = b"".join(f.read_bytes() for f in tb.iterdir())
  for tag in (
    b"train/loss",
    b"train/mse",
    b"train/esr",
    b"train/learning_rate",
    b"train/samples_per_second",
    b"validation/di",
    b"validation/target",
    b"validation/prediction",
    b"validation/spectrograms",
  ):
    assert tag in events, tag


MULTI_DEVICE_SCRIPT = r"""
import json, sys
import jax
from ampspace.trainers import wave2wavenet as trainer
from trainer_util import tiny_config
assert jax.device_count() == 2, jax.devices()
result = trainer.train_and_evaluate(tiny_config(sys.argv[1], **{"train.steps": 4}), sys.argv[2])
print(json.dumps([r["loss"] for r in result["history"]]))
"""


@pytest.mark.slow
def test_two_devices_in_one_process_match_one_device(reference, tiny_data_dir, tmp_path):
  """The batch split over a 2-device `data` axis gives the 1-device losses (to float rounding:
  the gradient all-reduce sums in another order)."""
  _, ref_losses, _ = reference
  env = dict(
    os.environ,
    XLA_FLAGS="--xla_force_host_platform_device_count=2",
    PYTHONPATH=os.pathsep.join([REPO, os.path.join(REPO, "tests")]),
  )
  r = subprocess.run(
    [sys.executable, "-c", MULTI_DEVICE_SCRIPT, tiny_data_dir, str(tmp_path / "w")],
    capture_output=True,
    text=True,
    env=env,
    cwd=REPO,
    timeout=300,
  )
  assert r.returncode == 0, r.stderr[-3000:]
  losses = json.loads(r.stdout.strip().splitlines()[-1])
  np.testing.assert_allclose(losses, [ref_losses[s] for s in range(1, 5)], rtol=2e-4)
