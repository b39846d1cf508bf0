"""The training loop every trainer shares.

A trainer builds its model, data, jitted update step and validation, then hands them to
`run`, which owns what every run needs the same way:

- resuming: parameters, optimiser state and the Grain iterator state from the latest
  checkpoint, so a resumed run reproduces an uninterrupted one;
- preemption: SIGTERM sets a flag, and the loop saves at the next step boundary and returns
  `preempted` (`python -m ampspace.train` then exits 143);
- divergence: an update whose loss or gradient norm is not finite is not applied (the step
  keeps the previous parameters on the device), and the run stops with an error that names the
  step and the last good checkpoint;
- metrics: they stay on the device and reach the host only on log steps (and before a save,
  a validation or the end), where they are written once: every step's record to
  `train_log.jsonl`, the last one to TensorBoard and the progress line;
- an exponential moving average of the weights (`optimizer.ema_decay`, 0: off), checkpointed
  beside the parameters; validation, the returned `params` and inference use it;
- validation every `train.eval_every` steps, early stopping (`train.early_stopping_patience`),
  checkpoints every `train.checkpoint_every` steps, wall-clock budgets and snapshots
  (`train.max_seconds`, `train.snapshot_seconds`), and the per-process data log
  (`train.log_data`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import shutil
import signal
import tempfile
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ampspace import paths
from ampspace.errors import AmpSpaceError
from ampspace.files import write_json_atomic
from ampspace.trainers import common

LOG_FILE = "train_log.jsonl"
HISTORY_LIMIT = 10_000  # records kept in memory for the returned result (the log has them all)
DATA_LOG_FILE = "data_log.process{}.jsonl"
SNAPSHOT_FILE = "snapshots.json"  # {seconds, step, elapsed} of each train.snapshot_seconds


class Preemption:
  """Turns SIGTERM into a flag the loop checks after each step, so a preempted run saves a
  checkpoint at a step boundary and exits instead of dying mid-step (the previous handler is
  restored on exit)."""

  def __init__(self):
    self.requested = False
    self._previous = None

  def __enter__(self):
    try:
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    except ValueError:  # not the main thread (e.g. a notebook worker): no handler, no flag
      self._previous = None
    return self

  def _handle(self, signum, frame):
    del signum, frame
    self.requested = True

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
    return False


@contextlib.contextmanager
def run_dir(config, workdir: str):
  """Makes `workdir`, writes its config.json, and yields the TensorBoard writer (process 0,
  unless train.tensorboard is false; else None), closed on the way out."""
  paths.makedirs(workdir)
  common.save_config(config, workdir)
  writer = None
  if jax.process_index() == 0 and config.train.get("tensorboard", True):
    writer = tensorboard_writer(paths.join(workdir, "tb"))
  try:
    yield writer
  finally:
    if writer:
      writer.close()


def tensorboard_writer(logdir: str):
  """A tensorboardX SummaryWriter; for a URL (gs://...), one that writes to a local folder and
  uploads its event files whole on every flush and on close (an object store has no append)."""
  from tensorboardX import SummaryWriter

  if not paths.is_url(logdir):
    return SummaryWriter(logdir)

  class UploadingWriter(SummaryWriter):
    def flush(self):
      super().flush()
      paths.upload_folder(self.logdir, logdir)

    def close(self):
      super().close()
      paths.upload_folder(self.logdir, logdir)
      shutil.rmtree(self.logdir, ignore_errors=True)

  return UploadingWriter(tempfile.mkdtemp(prefix="ampspace-tb-"))


def preemption_requested(preemption: Preemption) -> bool:
  """Whether any process got SIGTERM; every process must agree, as saving is collective."""
  if jax.process_count() == 1:
    return preemption.requested
  from jax.experimental import multihost_utils

  flags = multihost_utils.process_allgather(np.int32(preemption.requested))
  return bool(np.max(flags))


def batch_fingerprint(local: dict) -> dict:
  """Which windows this process fed (a digest of its first array and the windows' clip
  offsets, where the pipeline gives them), for logs that show how a global batch was split
  between processes."""
  first = next(k for k in ("input", "mel", *sorted(local)) if k in local and k != "start")
  return {
    "starts": [int(v) for v in np.asarray(local.get("start", []))],
    "digest": hashlib.sha1(np.ascontiguousarray(local[first]).tobytes()).hexdigest()[:16],
  }


def apply_gradients(tx, loss_fn: Callable, params, opt_state):
  """One optimiser update of `params` on `loss_fn(params) -> (loss, metrics)`: (params,
  opt_state, metrics with the gradients' global norm as `grad_norm`)."""
  (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
  updates, opt_state = tx.update(grads, opt_state, params)
  return (
    optax.apply_updates(params, updates),
    opt_state,
    {**metrics, "grad_norm": optax.global_norm(grads)},
  )


def guarded(step_fn: Callable) -> Callable:
  """`step_fn(params, opt_state, batch, step) -> (params, opt_state, metrics)` (metrics with
  `loss` and `grad_norm`) made safe to run without looking at its metrics: where the loss or
  the gradient norm is not finite it returns the previous parameters and optimiser state, and
  `metrics["finite"]` says which."""

  def step(params, opt_state, batch, step_index):
    new_params, new_opt_state, metrics = step_fn(params, opt_state, batch, step_index)
    ok = jnp.isfinite(metrics["loss"]) & jnp.isfinite(metrics["grad_norm"])
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
    return keep(new_params, params), keep(new_opt_state, opt_state), {**metrics, "finite": ok}

  return step


@dataclasses.dataclass
class Loop:
  """What a trainer gives `run`.

  step: the jitted, `guarded` update, `(params, opt_state, global batch, int32 step) ->
    (params, opt_state, metrics)`;
  global_batch: this process's batch (a dict of NumPy arrays) -> the global batch;
  validate: `(params, step) -> metrics` on fixed validation data (and its TensorBoard
    summaries), or None without a validation split;
  progress: the metrics shown on the progress line;
  throughput: (name, units per step), e.g. ("samples_per_second", batch × window).
  """

  config: object
  workdir: str
  step: Callable
  global_batch: Callable[[dict], dict]
  train_iter: object
  schedule: Callable
  validate: Callable[[object, int], dict] | None
  progress: tuple[str, ...]
  throughput: tuple[str, float]
  writer: object = None


def run(loop: Loop, params, opt_state, replicated) -> dict:
  """Trains to `config.train.steps` (resuming from `workdir`'s latest checkpoint) under a
  SIGTERM handler; returns {steps, history, params, preempted, snapshots, train_seconds,
  [best_step], [validation]}."""
  with Preemption() as preemption:
    return _run(loop, params, opt_state, replicated, preemption)


def _run(loop: Loop, params, opt_state, replicated, preemption: Preemption) -> dict:
  config, workdir, t = loop.config, loop.workdir, loop.config.train
  is_chief = jax.process_index() == 0
  total_steps = t.steps
  mngr = common.checkpoint_manager(workdir, config)
  ema_decay = float(config.optimizer.get("ema_decay", 0.0) or 0.0)
  if not 0.0 <= ema_decay < 1.0:
    raise AmpSpaceError(f"optimizer.ema_decay={ema_decay}: use 0 (off) or a decay in (0, 1)")
  ema = jax.tree.map(jnp.copy, params) if ema_decay else None
  params, opt_state, step, ema = common.restore_train_state(
    mngr, params, opt_state, loop.train_iter, replicated, ema
  )
  if step:
    print(f"resumed from {workdir} at step {step}")
  ema_step = jax.jit(lambda e, p, s: common.ema_update(e, p, ema_decay, s), donate_argnums=0)

  def save(step: int, force: bool = False):
    common.save_train_state(mngr, step, params, opt_state, loop.train_iter, force, ema)

  def weights():
    """The weights a run produces: the moving average where there is one."""
    return params if ema is None else ema

  progress = common.ProgressLine(total_steps, step)
  log = paths.open_append(paths.join(workdir, LOG_FILE)) if is_chief else None
  data_log = (
    paths.open_append(paths.join(workdir, DATA_LOG_FILE.format(jax.process_index())))
    if t.get("log_data", False)
    else None
  )
  t_last, s_last = time.time(), step
  history: list[dict] = []
  pending: list[tuple[int, dict]] = []  # (step, metrics still on the device)

  def flush(show: bool) -> None:
    """Brings the pending metrics to the host: stops on a non-finite step, else writes every
    record to the log and (show) the last one to the progress line and TensorBoard."""
    nonlocal t_last, s_last
    if not pending:
      return
    host = jax.device_get([m for _, m in pending])
    records, bad = [], None
    for (s, _), m in zip(pending, host):
      if not bool(m.pop("finite")):
        bad = (s, m)
        break
      records.append(
        {
          "step": s,
          **{k: float(v) for k, v in m.items()},
          "learning_rate": float(loop.schedule(s - 1)),
        }
      )
    pending.clear()
    if log and records:
      log.write("".join(json.dumps(r) + "\n" for r in records))
      log.flush()
    if bad:
      s, m = bad
      mngr.wait_until_finished()
      last = mngr.latest_step()
      where = (
        f"the last good checkpoint is step {last} in {paths.join(workdir, 'checkpoints')}"
        if last is not None
        else "no checkpoint was written before it"
      )
      raise AmpSpaceError(
        f"training diverged: loss {float(m['loss'])}, gradient norm "
        f"{float(m['grad_norm'])} at step {s} (that update was not applied); "
        f"{where}. Lower optimizer.learning_rate or set optimizer.grad_clip"
      )
    history.extend(records)
    if len(history) > HISTORY_LIMIT:
      del history[: len(history) - HISTORY_LIMIT]
    if show and records:
      last = records[-1]
      rate = (last["step"] - s_last) / max(time.time() - t_last, 1e-9)
      t_last, s_last = time.time(), last["step"]
      progress(last["step"], {k: last[k] for k in loop.progress if k in last})
      if loop.writer:
        for k, v in last.items():
          if k != "step":
            loop.writer.add_scalar(f"train/{k}", v, last["step"])
        name, units = loop.throughput
        loop.writer.add_scalar(f"train/{name}", rate * units, last["step"])
        loop.writer.flush()

  preempted = False
  budget = common.WallClockBudget(t.get("max_seconds", 0.0), t.get("snapshot_seconds", ()))
  snapshots = []
  patience = t.get("early_stopping_patience", 0)
  stopper = (
    common.EarlyStopping(patience, t.get("early_stopping_metric", "esr"))
    if patience and loop.validate is not None
    else None
  )
  while step < total_steps:
    local = next(loop.train_iter)
    if data_log:
      data_log.write(json.dumps({"step": step + 1, **batch_fingerprint(local)}) + "\n")
      data_log.flush()
    params, opt_state, metrics = loop.step(
      params, opt_state, loop.global_batch(local), jnp.asarray(step, jnp.int32)
    )
    step += 1
    if ema is not None:
      ema = ema_step(ema, params, jnp.asarray(step, jnp.int32))
    pending.append((step, metrics))
    if budget.limit:  # a wall-clock race: the clock must see finished steps, not queued ones
      jax.block_until_ready(metrics)
    last_step = step == total_steps
    validating = loop.validate is not None and step % t.eval_every == 0 and not last_step
    saving = (not stopper and (step % t.checkpoint_every == 0 or last_step)) or (
      stopper and last_step and stopper.best_step is None
    )
    due = budget.due()
    spent = budget.exhausted()
    sigterm = preemption_requested(preemption) and not last_step
    if step % t.log_every == 0 or last_step or validating or saving or due or spent or sigterm:
      flush(show=step % t.log_every == 0 or last_step)
    if validating:
      val = loop.validate(weights(), step)
      if stopper and stopper.update(step, val):
        save(step, force=True)  # only improvements are saved: the latest is the best
      if stopper and stopper.exhausted:
        print(
          f"early stop at step {step}: validation {stopper.metric} has not improved for "
          f"{stopper.patience} evaluations since step {stopper.best_step}",
          flush=True,
        )
        break
    if saving:
      save(step, force=last_step)
    if due:  # wall-clock snapshots: the parameters as they stand after this many seconds
      with budget.pause():
        if step not in mngr.all_steps():
          save(step, force=True)
        mngr.wait_until_finished()
      snapshots += [
        {"seconds": s, "step": step, "elapsed": round(budget.elapsed(), 2)} for s in due
      ]
      if is_chief:
        write_json_atomic(paths.join(workdir, SNAPSHOT_FILE), snapshots, indent=2)
    if spent:
      print(f"wall-clock budget of {budget.limit:g} s spent at step {step}", flush=True)
      if step not in mngr.all_steps():
        save(step, force=True)
      break
    if sigterm:
      if step not in mngr.all_steps():
        save(step, force=True)
      mngr.wait_until_finished()
      print(
        f"SIGTERM: saved a checkpoint at step {step} in {workdir}; rerun the same command "
        f"to resume",
        flush=True,
      )
      preempted = True
      break
  flush(show=False)
  if data_log:
    data_log.close()
  mngr.wait_until_finished()
  mngr.close()
  if log:
    log.close()

  result = {
    "steps": step,
    "history": history,
    "params": weights(),
    "preempted": preempted,
    "snapshots": snapshots,
    "train_seconds": round(budget.elapsed(), 2),
  }
  if stopper:
    result["best_step"] = stopper.best_step
  if loop.validate is not None and not preempted:
    result["validation"] = loop.validate(weights(), step)
  return result
