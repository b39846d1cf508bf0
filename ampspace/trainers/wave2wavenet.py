"""Trainer for the wave-to-wave family (Wave2WaveNet and the recurrent baselines).

Linear, in banner sections: logging -> mesh -> model -> input -> update step -> the shared
loop (ampspace/trainers/loop.py: resuming, preemption, divergence, metrics, validation,
checkpoints, budgets). Resume order: the model/optimizer state and the Grain iterator state
are restored together from the latest checkpoint in `workdir`, so a resumed run sees the same
batches and reproduces the uninterrupted run's losses. `config.init_from` (a workdir or checkpoint folder,
or a neural-amp-modeler `.nam` file for a layer_array_wavenet) initialises the parameters only,
for fine-tuning.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from ampspace import losses, models
from ampspace.audio import spectral
from ampspace.data import pipeline, sources
from ampspace.errors import AmpSpaceError
from ampspace.trainers import common, loop


def loss_and_metrics(model, batch, loss_cfg, weights):
  """(loss, metrics) for one batch; works for 256-way and regression heads."""
  out = model(batch["input"], batch["cond"])
  if out.shape[-1] == 1:
    pred = out[..., 0]
    loss = losses.REGRESSION_LOSSES[loss_cfg.name](pred, batch["target"])
  else:
    loss = losses.CLASSIFICATION_LOSSES[loss_cfg.name](out, batch["classes"], weights)
    pred = losses.DECODERS[loss_cfg.decode](out)
  metrics = {
    "loss": loss,
    "mse": losses.mse_loss(pred, batch["target"]),
    "esr": losses.pooled_esr(pred, batch["target"]),
  }
  return loss, metrics


def prediction(model, batch, loss_cfg):
  out = model(batch["input"], batch["cond"])
  return out[..., 0] if out.shape[-1] == 1 else losses.DECODERS[loss_cfg.decode](out)


POLARITIES = ("keep", "match")


def fixed_windows(
  config, split: str, spec: pipeline.WindowSpec, clips: int, at: tuple[float, ...] = (0.0,)
) -> dict | None:
  """Windows of the first `clips` clips of `split` (the same every call), one starting at each
  fraction `at` of the room a clip has for a window, as one batch; None where the split is
  missing or empty."""
  try:
    source = sources.open_split(config.dataset, split)
  except AmpSpaceError:
    return None
  examples = []
  for i in range(min(len(source), clips)):
    record = source[i]
    last = max(0, len(record["output"]) - spec.window)
    examples += [pipeline.crop_window(record, int(round(last * f)), spec) for f in at]
  if not examples:
    return None
  return {k: jnp.asarray(np.stack([e[k] for e in examples])) for k in examples[0]}


def validation_batch(config, spec: pipeline.WindowSpec) -> dict | None:
  """Fixed windows from the first validation clips (the same every evaluation), or None."""
  n = config.train.get("eval_examples", 8)
  return fixed_windows(config, config.dataset.eval_split, spec, n) if n > 0 else None


def matched_polarity(config, model, spec: pipeline.WindowSpec) -> tuple[object, float]:
  """(model, correlation): an initialised model whose output correlates negatively with the
  training targets (Σ prediction·target < 0 over fixed training windows) comes back with its
  output inverted, so fine-tuning starts from the right polarity.

  A device's polarity is a fact of its circuit (each inverting stage flips it) and of the
  recording chain, not of its tone; a model pretrained on other devices may have learnt the
  opposite one, and a short fine-tune does not undo it. Only training data is read."""
  batch = fixed_windows(
    config, config.dataset.train_split, spec, clips=16, at=(0.125, 0.375, 0.625, 0.875)
  )
  if batch is None:
    raise AmpSpaceError("init_polarity='match' needs training clips; the training split is empty")
  pred = np.asarray(jax.jit(lambda b: prediction(model, b, config.loss))(batch), np.float64)
  target = np.asarray(batch["target"], np.float64)
  corr = float((pred * target).sum() / max(np.sqrt((pred**2).sum() * (target**2).sum()), 1e-30))
  if corr < 0:
    model = models.with_inverted_output(model)
  return model, corr


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  with loop.run_dir(config, workdir) as writer:
    return _train_and_evaluate(config, workdir, writer)


def _train_and_evaluate(config, workdir, writer):
  # ------------------------------------------------------------------ mesh
  replicated, data_sharding, local_batch = common.data_parallel(config)
  n_proc = jax.process_count()

  # ------------------------------------------------------------------ model
  model = common.build_model(config)
  graphdef, params = nnx.split(model)
  context = model.context
  head = "regression" if model.num_classes == 1 else "classification"
  known = losses.REGRESSION_LOSSES if head == "regression" else losses.CLASSIFICATION_LOSSES
  if config.loss.name not in known:
    raise AmpSpaceError(
      f"loss.name {config.loss.name!r} does not fit model.num_classes="
      f"{model.num_classes} ({head} head); use one of {sorted(known)}"
    )
  if (
    head == "classification" and config.loss.get("decode", "expected_value") not in losses.DECODERS
  ):
    raise AmpSpaceError(f"loss.decode {config.loss.decode!r}: use one of {sorted(losses.DECODERS)}")
  spec = pipeline.WindowSpec(config.input.window, *context)
  if config.get("init_from"):
    params, origin = common.init_params_from(config.init_from, config, model)
    print(f"initialised parameters from {config.init_from} ({origin})")
    polarity = config.get("init_polarity", "keep")
    if polarity not in POLARITIES:
      raise AmpSpaceError(f"init_polarity {polarity!r}: use one of {', '.join(POLARITIES)}")
    if polarity == "match":
      if type(model) not in models.INVERTERS:
        raise AmpSpaceError(
          f"init_polarity='match' needs a model whose output can be inverted "
          f"({', '.join(sorted(c.__name__ for c in models.INVERTERS))}); "
          f"model.name is {config.model.name!r}"
        )
      model, corr = matched_polarity(config, nnx.merge(graphdef, params), spec)
      _, params = nnx.split(model)
      print(
        f"init_polarity=match: correlation with the training targets {corr:+.3f}; "
        f"{'inverted the output' if corr < 0 else 'kept the output'}"
      )

  # ------------------------------------------------------------------ input
  train_source = sources.open_split(config.dataset, config.dataset.train_split)
  weights = None
  if config.loss.name in losses.CLASSIFICATION_LOSSES and config.loss.get("sigma", 0.0) > 0:
    weights = jnp.asarray(
      losses.class_weights(pipeline.class_counts(train_source), config.loss.sigma)
    )
  train_ds = pipeline.train_dataset(
    train_source,
    spec,
    batch_size=local_batch,
    seed=config.seed,
    process_index=jax.process_index(),
    process_count=n_proc,
    worker_count=config.input.get("worker_count", 0),
    read_threads=config.input.get("read_threads", 4),
  )
  train_iter = iter(train_ds)
  val_batch = validation_batch(config, spec)

  # ------------------------------------------------------------------ update step
  total_steps = config.train.steps
  tx, schedule = common.make_optimizer(config.optimizer, total_steps)
  if config.get("freeze_knob_conditioning", False):
    if not config.get("init_from"):
      raise AmpSpaceError(
        "freeze_knob_conditioning keeps what a pretrained model learnt the knobs do; "
        "set init_from to its run"
      )
    tx = optax.chain(tx, common.freeze_knob_rows(params))
  params = jax.device_put(params, replicated)
  opt_state = jax.device_put(tx.init(params), replicated)

  def train_step(params, opt_state, batch, step):
    del step  # the same update at every step
    return loop.apply_gradients(
      tx,
      lambda p: loss_and_metrics(nnx.merge(graphdef, p), batch, config.loss, weights),
      params,
      opt_state,
    )

  train_step = jax.jit(
    loop.guarded(train_step),
    in_shardings=(replicated, replicated, data_sharding, replicated),
    out_shardings=(replicated, replicated, replicated),
    donate_argnums=(0, 1),
  )

  eval_step = jax.jit(
    lambda p, b: loss_and_metrics(nnx.merge(graphdef, p), b, config.loss, weights)[1]
  )
  predict = jax.jit(lambda p, b: prediction(nnx.merge(graphdef, p), b, config.loss))

  def validate(params, step: int) -> dict:
    """Metrics on fixed validation windows; TensorBoard scalars, audio and a spectrogram."""
    metrics = {k: float(v) for k, v in eval_step(params, val_batch).items()}
    if writer:
      for k, v in metrics.items():
        writer.add_scalar(f"validation/{k}", v, step)
      pred = np.asarray(predict(params, val_batch))[0]
      di = np.asarray(val_batch["input"])[0, context[0] : context[0] + pred.shape[0], 0]
      target = np.asarray(val_batch["target"])[0]
      for name, x in (("di", di), ("target", target), ("prediction", pred)):
        writer.add_audio(f"validation/{name}", np.clip(x, -1, 1), step, sample_rate=44100)
      writer.add_figure(
        "validation/spectrograms",
        spectral.spectrogram_figure({"DI": di, "target": target, "prediction": pred}),
        step,
      )
    return metrics

  # ------------------------------------------------------------------ loop
  def global_batch(local: dict) -> dict:
    local = dict(local)
    local.pop("start", None)
    return common.global_batch(local, data_sharding)

  return loop.run(
    loop.Loop(
      config,
      workdir,
      train_step,
      global_batch,
      train_iter,
      schedule,
      validate if val_batch is not None else None,
      progress=("loss", "esr"),
      throughput=("samples_per_second", config.input.batch_size * config.input.window),
      writer=writer,
    ),
    params,
    opt_state,
    replicated,
  )
