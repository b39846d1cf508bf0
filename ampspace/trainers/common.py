"""Pieces every trainer shares: mesh, model/optimizer construction, checkpoints, logging."""

from __future__ import annotations

import math
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

# Saving and restoring a workdir's config and parameters live with inference, which needs them
# without the trainers; the trainers reach them through this module too.
from ampspace.checkpoints import (  # noqa: F401
  CONFIG_FILE,
  EMA_ITEM,
  build_model,
  has_ema,
  load_config,
  load_params_into,
  restore_params,
  save_config,
)
from ampspace import conditioning, nam_format, paths
from ampspace.errors import AmpSpaceError


# ---------------------------------------------------------------- mesh
def data_mesh() -> Mesh:
  """All devices (of all processes) on one `data` axis; parameters are replicated over it."""
  return Mesh(np.asarray(jax.devices()), ("data",))


def shardings(mesh: Mesh) -> tuple[NamedSharding, NamedSharding]:
  return NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))


def data_parallel(config) -> tuple[NamedSharding, NamedSharding, int]:
  """(replicated sharding, batch sharding on `data`, this process's share of
  `input.batch_size`) over all devices; a batch the devices cannot split is an error."""
  if config.input.batch_size % jax.device_count():
    raise AmpSpaceError(
      f"input.batch_size={config.input.batch_size} is not divisible by the "
      f"{jax.device_count()} devices"
    )
  replicated, data_sharding = shardings(data_mesh())
  return replicated, data_sharding, config.input.batch_size // jax.process_count()


def global_batch(local_batch: dict, data_sharding: NamedSharding) -> dict:
  """Process-local NumPy batch -> global jax.Array sharded on `data` (works single- or multi-host)."""
  return {
    k: jax.make_array_from_process_local_data(data_sharding, np.asarray(v))
    for k, v in local_batch.items()
  }


# ---------------------------------------------------------------- model and optimizer
SCHEDULES = ("constant", "warmup_constant", "cosine", "linear", "exponential")


def learning_rate_schedule(opt: ml_collections.ConfigDict, total_steps: int):
  """The learning rate as a function of the step, from `optimizer.schedule`.

  constant; warmup_constant (linear warm-up, then flat); cosine (warm-up, cosine decay to
  final_fraction·lr); linear (warm-up, linear decay to final_fraction·lr); exponential
  (warm-up, then ×decay_rate every decay_steps).
  """
  lr, warmup = opt.learning_rate, max(1, opt.get("warmup_steps", 0))
  final = lr * opt.get("final_fraction", 0.05)
  if opt.schedule == "constant":
    return optax.constant_schedule(lr)
  if opt.schedule == "warmup_constant":
    return optax.join_schedules(
      [optax.linear_schedule(0.0, lr, warmup), optax.constant_schedule(lr)], [warmup]
    )
  if opt.schedule == "cosine":
    return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(total_steps, warmup + 1), final)
  if opt.schedule == "linear":
    return optax.join_schedules(
      [
        optax.linear_schedule(0.0, lr, warmup),
        optax.linear_schedule(lr, final, max(1, total_steps - warmup)),
      ],
      [warmup],
    )
  if opt.schedule == "exponential":
    return optax.warmup_exponential_decay_schedule(
      0.0, lr, warmup, max(1, opt.get("decay_steps", 1000)), opt.get("decay_rate", 0.5)
    )
  raise AmpSpaceError(f"unknown optimizer.schedule {opt.schedule!r}; known: {', '.join(SCHEDULES)}")


def make_optimizer(opt: ml_collections.ConfigDict, total_steps: int):
  schedule = learning_rate_schedule(opt, total_steps)
  if opt.name == "adam":
    base = optax.adamw(schedule, weight_decay=opt.weight_decay)
  elif opt.name == "sgd":
    base = optax.sgd(schedule, momentum=0.9)
  else:
    raise AmpSpaceError(f"unknown optimizer.name {opt.name!r}; known: adam, sgd")
  chain = [optax.clip_by_global_norm(opt.grad_clip)] if opt.grad_clip else []
  return optax.chain(*chain, base), schedule


# The layers' projections of the conditioning vector (Wave2WaveNet's `cond`, the NAM layout's
# `mixer`): kernels [cond_dim, width] whose first rows read the knob values.
CONDITIONING_PROJECTIONS = ("cond", "mixer", "input_gain")


def freeze_knob_rows(params, n_knobs: int = len(conditioning.KNOB_VOCAB)):
  """An optax transformation that zeroes the updates (weight decay included, placed last in a
  chain) of the rows of every conditioning projection that read the knob values, the first
  `n_knobs` inputs of `conditioning.conditioning_vector`. Fine-tuning at one knob setting sees
  that knob as a constant, so Adam moves its rows like a bias and, with them, what the
  pretraining learnt the knob does; frozen, the knob's effect stays the pretraining's while the
  device's own rows and every other weight adapt."""

  def mask_of(path, leaf):
    names = [str(getattr(k, "key", getattr(k, "name", k))) for k in path]
    if any(n in CONDITIONING_PROJECTIONS for n in names) and "kernel" in names and leaf.ndim == 2:
      return jnp.ones((leaf.shape[0], 1), leaf.dtype).at[:n_knobs].set(0)
    return jnp.ones((), leaf.dtype)

  mask = jax.tree_util.tree_map_with_path(mask_of, params)
  if not any(m.ndim for m in jax.tree.leaves(mask)):
    raise AmpSpaceError("freeze_knob_conditioning: the model has no conditioning projection")

  def update(updates, state, params=None):
    del params
    return jax.tree.map(lambda u, m: u * m, updates, mask), state

  return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def ema_decay_at(decay: float, step):
  """The averaging weight of an exponential moving average of the weights after `step`
  updates: `decay`, but no more than (1 + step) / (10 + step), so the first steps are not
  dominated by the random initialisation (TensorFlow's ExponentialMovingAverage with
  num_updates)."""
  return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def ema_update(ema, params, decay: float, step):
  """The moving average of the weights after `step` updates, `params` the weights after it:
  d·ema + (1 − d)·params with d = ema_decay_at(decay, step). A pure function of pytrees."""
  d = ema_decay_at(decay, jnp.asarray(step, jnp.float32))
  return jax.tree.map(lambda e, p: (d * e + (1.0 - d) * p).astype(e.dtype), ema, params)


# ---------------------------------------------------------------- checkpoints
def checkpoint_manager(
  workdir: str, config: ml_collections.ConfigDict, read_only: bool = False
) -> ocp.CheckpointManager:
  t = config.train
  options = ocp.CheckpointManagerOptions(
    save_interval_steps=1,  # the loop decides when to save
    preservation_policy=ocp.checkpoint_managers.LatestN(t.get("keep_checkpoints", 3)),
    enable_async_checkpointing=t.get("async_checkpoints", True),
    read_only=read_only,
    create=not read_only,
  )
  return ocp.CheckpointManager(paths.epath(paths.join(workdir, "checkpoints")), options=options)


def restore_train_state(
  mngr: ocp.CheckpointManager, params, opt_state, train_iter, sharding, ema=None
):
  """Resume: parameters, optimizer state, the Grain iterator state and (given `ema`) the
  weights' moving average, together, from the latest checkpoint (so a resumed run sees the same
  batches); (params, opt_state, step, ema), step 0 if none. A checkpoint without a moving
  average (a run that had none) starts it from the restored parameters."""
  import grain

  latest = mngr.latest_step()
  if latest is None:
    return params, opt_state, 0, ema
  items = dict(
    params=ocp.args.StandardRestore(params.to_pure_dict()),
    opt_state=ocp.args.StandardRestore(opt_state),
    data=grain.checkpoint.CheckpointRestore(train_iter),
  )
  with_ema = ema is not None and has_ema(mngr, latest)
  if with_ema:
    items[EMA_ITEM] = ocp.args.StandardRestore(ema.to_pure_dict())
  restored = mngr.restore(latest, args=ocp.args.Composite(**items))
  nnx.replace_by_pure_dict(params, restored["params"])
  params = jax.device_put(params, sharding)
  if ema is not None:
    if with_ema:
      nnx.replace_by_pure_dict(ema, restored[EMA_ITEM])
      ema = jax.device_put(ema, sharding)
    else:
      ema = jax.tree.map(jnp.copy, params)
  return params, jax.device_put(restored["opt_state"], sharding), latest, ema


def save_train_state(
  mngr: ocp.CheckpointManager,
  step: int,
  params,
  opt_state,
  train_iter,
  force: bool = False,
  ema=None,
) -> None:
  import grain

  items = dict(
    params=ocp.args.StandardSave(params.to_pure_dict()),
    opt_state=ocp.args.StandardSave(opt_state),
    data=grain.checkpoint.CheckpointSave(train_iter),
  )
  if ema is not None:
    items[EMA_ITEM] = ocp.args.StandardSave(ema.to_pure_dict())
  mngr.save(step, args=ocp.args.Composite(**items), force=force)


def init_params_from(source: str, config: ml_collections.ConfigDict, model):
  """(parameters to fine-tune from, where they came from): a workdir or checkpoint folder, or a
  neural-amp-modeler `.nam` capture, which loads into a layer_array_wavenet of its layout."""
  if nam_format.is_nam_file(source):
    return nam_format.params_from_nam(nam_format.read_nam(source), model), "a NAM capture"
  _, params, step = restore_params(source, config)
  return params, f"step {step}"


# ---------------------------------------------------------------- logging
class ProgressLine:
  """`step 120/1000  loss 0.0123  4.1 steps/s  ETA 3m34s` on stderr, every `every` steps."""

  def __init__(self, total: int, first_step: int):
    self.total, self.t0, self.s0 = total, time.time(), first_step

  def __call__(self, step: int, metrics: dict) -> float:
    rate = (step - self.s0) / max(time.time() - self.t0, 1e-9)
    eta = (self.total - step) / rate if rate > 0 else math.inf
    eta_s = f"{int(eta // 60)}m{int(eta % 60):02d}s" if math.isfinite(eta) else "?"
    parts = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
    print(
      f"step {step}/{self.total}  {parts}  {rate:.2f} steps/s  ETA {eta_s}",
      file=sys.stderr,
      flush=True,
    )
    return rate


class EarlyStopping:
  """Tracks a validation metric (lower is better); `exhausted` after `patience` evaluations
  without a relative improvement of at least `min_delta`."""

  def __init__(self, patience: int, metric: str = "esr", min_delta: float = 1e-3):
    self.patience, self.metric, self.min_delta = int(patience), metric, min_delta
    self.best, self.best_step, self.waited = float("inf"), None, 0

  def update(self, step: int, metrics: dict) -> bool:
    """Records one evaluation; True when it is the new best."""
    if self.metric not in metrics:
      raise AmpSpaceError(
        f"train.early_stopping_metric {self.metric!r} is not a validation "
        f"metric; use one of {sorted(metrics)}"
      )
    value = float(metrics[self.metric])
    if value < self.best * (1 - self.min_delta):
      self.best, self.best_step, self.waited = value, step, 0
      return True
    self.waited += 1
    return False

  @property
  def exhausted(self) -> bool:
    return self.waited >= self.patience


class WallClockBudget:
  """Training time against `train.max_seconds` and `train.snapshot_seconds` (accuracy races
  at equal wall-clock budgets). The clock starts at construction, right before the loop, so it
  counts compilation, the input pipeline and validation; the time spent saving a snapshot is
  paused out, as a race should not charge a model for being written down.

  `due()` returns the budgets passed since the last call; `exhausted()` whether the largest
  budget (or `max_seconds`) is spent. 0 / empty: no budget, `exhausted()` is always False.
  """

  def __init__(self, max_seconds: float = 0.0, snapshot_seconds=()):
    self.snapshots = sorted(float(s) for s in snapshot_seconds)
    if any(s <= 0 for s in self.snapshots):
      raise AmpSpaceError(f"train.snapshot_seconds must be positive, got {self.snapshots}")
    self.limit = float(max_seconds or (self.snapshots[-1] if self.snapshots else 0.0))
    self.t0, self.paused = time.perf_counter(), 0.0
    self.pending = list(self.snapshots)

  def elapsed(self) -> float:
    return time.perf_counter() - self.t0 - self.paused

  def due(self) -> list[float]:
    now, out = self.elapsed(), []
    while self.pending and now >= self.pending[0]:
      out.append(self.pending.pop(0))
    return out

  def exhausted(self) -> bool:
    return self.limit > 0 and self.elapsed() >= self.limit

  def pause(self):
    budget = self

    class _Paused:
      def __enter__(self):
        self.t = time.perf_counter()

      def __exit__(self, *exc):
        budget.paused += time.perf_counter() - self.t

    return _Paused()
