"""Trainer for the wave-to-wave family (Wave2WaveNet and the recurrent baselines).

Linear, in banner sections: logging -> mesh -> input -> model -> update step -> checkpoint ->
loop. Resume order: the model/optimizer state and the Grain iterator state are restored
together from the latest checkpoint in `workdir`, so a resumed run sees the same batches and
reproduces the uninterrupted run's losses. `config.init_from` (a workdir or checkpoint folder,
or a neural-amp-modeler `.nam` file for a layer_array_wavenet) initialises the parameters only,
for fine-tuning.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from ampspace import losses
from ampspace.audio import spectral
from ampspace.data import pipeline, sources
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


def loss_and_metrics(model, batch, loss_cfg, weights):
  """(loss, metrics) for one batch; works for 256-way and regression heads."""
  out = model(batch["input"], batch["cond"])
  if out.shape[-1] == 1:
    pred = out[..., 0]
    loss = losses.REGRESSION_LOSSES[loss_cfg.name](pred, batch["target"])
  else:
    loss = losses.CLASSIFICATION_LOSSES[loss_cfg.name](out, batch["classes"], weights)
    pred = losses.DECODERS[loss_cfg.decode](out)
  metrics = {"loss": loss, "mse": losses.mse_loss(pred, batch["target"]),
             "esr": losses.pooled_esr(pred, batch["target"])}
  return loss, metrics


def prediction(model, batch, loss_cfg):
  out = model(batch["input"], batch["cond"])
  return out[..., 0] if out.shape[-1] == 1 else losses.DECODERS[loss_cfg.decode](out)


def validation_batch(config, spec: pipeline.WindowSpec) -> dict | None:
  """Fixed windows from the first validation clips (the same every evaluation), or None."""
  try:
    source = sources.open_split(config.dataset, config.dataset.eval_split)
  except AmpSpaceError:
    return None
  n = min(len(source), config.train.get("eval_examples", 8))
  if n == 0:
    return None
  examples = [pipeline.crop_window(source[i], 0, spec) for i in range(n)]
  batch = {k: np.stack([e[k] for e in examples[:n]]) for k in examples[0]}
  return {k: jnp.asarray(v) for k, v in batch.items()}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  # ------------------------------------------------------------------ logging
  os.makedirs(workdir, exist_ok=True)
  common.save_config(config, workdir)
  is_chief = jax.process_index() == 0
  preemption = Preemption().__enter__()
  try:
    return _train_and_evaluate(config, workdir, is_chief, preemption)
  finally:
    preemption.__exit__()


def _preemption_requested(preemption: Preemption) -> bool:
  """Whether any process got SIGTERM; every process must agree, as saving is collective."""
  if jax.process_count() == 1:
    return preemption.requested
  from jax.experimental import multihost_utils
  flags = multihost_utils.process_allgather(np.int32(preemption.requested))
  return bool(np.max(flags))


def _batch_fingerprint(local: dict) -> dict:
  """Which windows this process fed (a digest of its inputs and their clip offsets), for logs
  that show how a global batch was split between processes."""
  return {"starts": [int(v) for v in np.asarray(local.get("start", []))],
          "digest": hashlib.sha1(np.ascontiguousarray(local["input"]).tobytes()).hexdigest()[:16]}


def _train_and_evaluate(config, workdir, is_chief, preemption):
  writer = None
  if is_chief and config.train.get("tensorboard", True):
    from tensorboardX import SummaryWriter
    writer = SummaryWriter(os.path.join(workdir, "tb"))

  # ------------------------------------------------------------------ mesh
  mesh = common.data_mesh()
  replicated, data_sharding = common.shardings(mesh)
  n_proc = jax.process_count()
  if config.input.batch_size % jax.device_count():
    raise AmpSpaceError(f"input.batch_size={config.input.batch_size} is not divisible by the "
                        f"{jax.device_count()} devices")
  local_batch = config.input.batch_size // n_proc

  # ------------------------------------------------------------------ model
  model = common.build_model(config)
  graphdef, params = nnx.split(model)
  context = model.context
  head = "regression" if model.num_classes == 1 else "classification"
  known = losses.REGRESSION_LOSSES if head == "regression" else losses.CLASSIFICATION_LOSSES
  if config.loss.name not in known:
    raise AmpSpaceError(f"loss.name {config.loss.name!r} does not fit model.num_classes="
                        f"{model.num_classes} ({head} head); use one of {sorted(known)}")
  if head == "classification" and config.loss.get("decode", "expected_value") not in losses.DECODERS:
    raise AmpSpaceError(f"loss.decode {config.loss.decode!r}: use one of {sorted(losses.DECODERS)}")
  spec = pipeline.WindowSpec(config.input.window, *context)
  if config.get("init_from"):
    params, origin = common.init_params_from(config.init_from, config, model)
    print(f"initialised parameters from {config.init_from} ({origin})")

  # ------------------------------------------------------------------ input
  train_source = sources.open_split(config.dataset, config.dataset.train_split)
  weights = None
  if config.loss.name in losses.CLASSIFICATION_LOSSES and config.loss.get("sigma", 0.0) > 0:
    weights = jnp.asarray(losses.class_weights(pipeline.class_counts(train_source),
                                               config.loss.sigma))
  train_ds = pipeline.train_dataset(
      train_source, spec, batch_size=local_batch, seed=config.seed,
      process_index=jax.process_index(), process_count=n_proc,
      worker_count=config.input.get("worker_count", 0),
      read_threads=config.input.get("read_threads", 4))
  train_iter = iter(train_ds)
  val_batch = validation_batch(config, spec)

  # ------------------------------------------------------------------ update step
  total_steps = config.train.steps
  tx, schedule = common.make_optimizer(config.optimizer, total_steps)
  params = jax.device_put(params, replicated)
  opt_state = jax.device_put(tx.init(params), replicated)

  def train_step(params, opt_state, batch):
    def loss_fn(p):
      return loss_and_metrics(nnx.merge(graphdef, p), batch, config.loss, weights)

    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    metrics["grad_norm"] = optax.global_norm(grads)
    return params, opt_state, metrics

  train_step = jax.jit(train_step, in_shardings=(replicated, replicated, data_sharding),
                       out_shardings=(replicated, replicated, replicated), donate_argnums=(0, 1))

  eval_step = jax.jit(lambda p, b: loss_and_metrics(nnx.merge(graphdef, p), b, config.loss,
                                                    weights)[1])
  predict = jax.jit(lambda p, b: prediction(nnx.merge(graphdef, p), b, config.loss))

  def validate(params, step: int) -> dict:
    """Metrics on fixed validation windows; TensorBoard scalars, audio and a spectrogram."""
    metrics = {k: float(v) for k, v in eval_step(params, val_batch).items()}
    if writer:
      for k, v in metrics.items():
        writer.add_scalar(f"validation/{k}", v, step)
      pred = np.asarray(predict(params, val_batch))[0]
      di = np.asarray(val_batch["input"])[0, context[0]:context[0] + pred.shape[0], 0]
      target = np.asarray(val_batch["target"])[0]
      for name, x in (("di", di), ("target", target), ("prediction", pred)):
        writer.add_audio(f"validation/{name}", np.clip(x, -1, 1), step, sample_rate=44100)
      writer.add_figure("validation/spectrograms", spectral.spectrogram_figure(
          {"DI": di, "target": target, "prediction": pred}), step)
    return metrics

  # ------------------------------------------------------------------ checkpoint
  mngr = common.checkpoint_manager(workdir, config)
  params, opt_state, step = common.restore_train_state(mngr, params, opt_state, train_iter,
                                                       replicated)
  if step:
    print(f"resumed from {workdir} at step {step}")

  def save(step: int, force: bool = False):
    common.save_train_state(mngr, step, params, opt_state, train_iter, force)

  # ------------------------------------------------------------------ loop
  progress = common.ProgressLine(total_steps, step)
  log_path = os.path.join(workdir, LOG_FILE)
  log = open(log_path, "a") if is_chief else None
  t_last, s_last = time.time(), step
  history = []
  data_log = (open(os.path.join(workdir, DATA_LOG_FILE.format(jax.process_index())), "a")
              if config.train.get("log_data", False) else None)
  preempted = False
  budget = common.WallClockBudget(config.train.get("max_seconds", 0.0),
                                  config.train.get("snapshot_seconds", ()))
  snapshots = []
  patience = config.train.get("early_stopping_patience", 0)
  stopper = (common.EarlyStopping(patience, config.train.get("early_stopping_metric", "esr"))
             if patience and val_batch is not None else None)
  while step < total_steps:
    local = next(train_iter)
    if data_log:
      data_log.write(json.dumps({"step": step + 1, **_batch_fingerprint(local)}) + "\n")
      data_log.flush()
    local.pop("start", None)
    batch = common.global_batch(local, data_sharding)
    new_params, new_opt_state, metrics = train_step(params, opt_state, batch)
    loss, grad_norm = float(metrics["loss"]), float(metrics["grad_norm"])
    if not (np.isfinite(loss) and np.isfinite(grad_norm)):
      mngr.wait_until_finished()
      last = mngr.latest_step()
      where = (f"the last good checkpoint is step {last} in {os.path.join(workdir, 'checkpoints')}"
               if last is not None else "no checkpoint was written before it")
      raise AmpSpaceError(f"training diverged: loss {loss}, gradient norm {grad_norm} at step "
                          f"{step + 1} (parameters of step {step} kept); {where}. Lower "
                          f"optimizer.learning_rate or set optimizer.grad_clip")
    params, opt_state = new_params, new_opt_state
    step += 1
    record = {"step": step, **{k: float(v) for k, v in metrics.items()},
              "learning_rate": float(schedule(step - 1))}
    history.append(record)
    if len(history) > HISTORY_LIMIT:
      del history[:len(history) - HISTORY_LIMIT]
    if log:
      log.write(json.dumps(record) + "\n")
      log.flush()
    if step % config.train.log_every == 0 or step == total_steps:
      rate = (step - s_last) / max(time.time() - t_last, 1e-9)
      t_last, s_last = time.time(), step
      progress(step, {"loss": loss, "esr": record["esr"]})
      if writer:
        for k, v in record.items():
          if k != "step":
            writer.add_scalar(f"train/{k}", v, step)
        writer.add_scalar("train/samples_per_second",
                          rate * config.input.batch_size * config.input.window, step)
    if val_batch is not None and step % config.train.eval_every == 0 and step < total_steps:
      val = validate(params, step)
      if stopper and stopper.update(step, val):
        save(step, force=True)  # only improvements are saved: the latest is the best
      if stopper and stopper.exhausted:
        print(f"early stop at step {step}: validation {stopper.metric} has not improved for "
              f"{stopper.patience} evaluations since step {stopper.best_step}", flush=True)
        break
    if not stopper and (step % config.train.checkpoint_every == 0 or step == total_steps):
      save(step, force=step == total_steps)
    if stopper and step == total_steps and stopper.best_step is None:
      save(step, force=True)
    due = budget.due()
    if due:  # wall-clock snapshots: the parameters as they stand after this many seconds
      with budget.pause():
        if step not in mngr.all_steps():
          save(step, force=True)
        mngr.wait_until_finished()
      snapshots += [{"seconds": s, "step": step, "elapsed": round(budget.elapsed(), 2)}
                    for s in due]
      if is_chief:
        write_json_atomic(os.path.join(workdir, SNAPSHOT_FILE), snapshots, indent=2)
    if budget.exhausted():
      print(f"wall-clock budget of {budget.limit:g} s spent at step {step}", flush=True)
      if step not in mngr.all_steps():
        save(step, force=True)
      break
    if _preemption_requested(preemption) and step < total_steps:
      if step not in mngr.all_steps():
        save(step, force=True)
      mngr.wait_until_finished()
      print(f"SIGTERM: saved a checkpoint at step {step} in {workdir}; rerun the same command "
            f"to resume", flush=True)
      preempted = True
      break
  if data_log:
    data_log.close()
  mngr.wait_until_finished()
  mngr.close()
  if log:
    log.close()

  # ------------------------------------------------------------------ evaluation
  result = {"steps": step, "history": history, "params": params, "preempted": preempted,
            "snapshots": snapshots, "train_seconds": round(budget.elapsed(), 2)}
  if stopper:
    result["best_step"] = stopper.best_step
  if val_batch is not None and not preempted:
    result["validation"] = validate(params, step)
  if writer:
    writer.close()
  return result
