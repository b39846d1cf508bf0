"""Trainer for the mel-spectrogram VAE (`config.trainer = "vae"`).

Linear, in banner sections like the wave-to-wave trainer: logging -> mesh -> input -> model ->
update step -> the shared loop (ampspace/trainers/loop.py: resuming, SIGTERM, divergence,
metrics on log steps, validation, early stopping, checkpoints, budgets, the data log). Resume order: parameters, optimizer state and the Grain
iterator state come back together from the latest checkpoint in `workdir`, and the sampling
key of step s is fold_in(seed key, s), so a resumed run sees the same batches and draws the
same latent samples as an uninterrupted one. `config.init_from` (a VAE workdir) initialises
the parameters only.

TensorBoard: train/{loss, elbo, reconstruction, kl, beta, mel_l1, grad_norm, learning_rate},
validation/* on fixed windows, Griffin-Lim audio of the targets and reconstructions, and a
figure of their log-mels.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from ampspace import paths
from ampspace.audio import griffin_lim
from ampspace.checkpoints import build_vae, restore_vae
from ampspace.data import mel_pipeline, sources
from ampspace.errors import AmpSpaceError
from ampspace.files import write_json_atomic
from ampspace.models import vae as vae_lib
from ampspace.trainers import common, loop

METRICS_FILE = "vae_metrics.json"


# ------------------------------------------------------------------ model helpers
def mel_spec_of(config: ml_collections.ConfigDict) -> mel_pipeline.MelSpec:
  return mel_pipeline.MelSpec(num_frames=config.model.num_frames, n_mels=config.model.n_mels)


def beta_at(config: ml_collections.ConfigDict, step):
  return vae_lib.kl_beta(
    step,
    beta=config.kl.beta,
    warmup_steps=config.kl.warmup_steps,
    beta_start=config.kl.get("beta_start", 0.0),
  )


def mel_figure(target: np.ndarray, recon: np.ndarray):
  """Target and reconstruction log-mels ([T, mels] each) side by side."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, axes = plt.subplots(1, 2, figsize=(8, 3), sharey=True)
  vmax = float(max(target.max(), recon.max(), 1e-3))
  for ax, (name, m) in zip(axes, (("target", target), ("reconstruction", recon))):
    ax.imshow(m.T, origin="lower", aspect="auto", vmin=0.0, vmax=vmax)
    ax.set_title(name)
    ax.set_xlabel("frame")
  axes[0].set_ylabel("mel band")
  fig.tight_layout()
  return fig


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  with loop.run_dir(config, workdir) as writer:
    return _train_and_evaluate(config, workdir, writer)


def _train_and_evaluate(config, workdir, writer):
  # ------------------------------------------------------------------ mesh
  replicated, data_sharding, local_batch = common.data_parallel(config)
  n_proc = jax.process_count()

  # ------------------------------------------------------------------ input
  spec = mel_spec_of(config)
  train_source = sources.open_split(config.dataset, config.dataset.train_split)
  train_iter = iter(
    mel_pipeline.train_dataset(
      train_source,
      spec,
      batch_size=local_batch,
      seed=config.seed,
      process_index=jax.process_index(),
      process_count=n_proc,
      worker_count=config.input.get("worker_count", 0),
      read_threads=config.input.get("read_threads", 4),
    )
  )
  try:
    val_source = sources.open_split(config.dataset, config.dataset.eval_split)
  except AmpSpaceError:
    val_source = None
  val_np = (
    mel_pipeline.fixed_batch(val_source, spec, config.train.get("eval_examples", 8))
    if val_source is not None
    else None
  )
  val_batch = {"mel": jnp.asarray(val_np["mel"])} if val_np is not None else None

  # ------------------------------------------------------------------ model
  model = build_vae(config)
  graphdef, params = nnx.split(model)
  if config.get("init_from"):
    init_model, _, init_step = restore_vae(config.init_from)
    params = nnx.state(init_model)
    print(f"initialised parameters from {config.init_from} (step {init_step})")

  # ------------------------------------------------------------------ update step
  total_steps = config.train.steps
  tx, schedule = common.make_optimizer(config.optimizer, total_steps)
  params = jax.device_put(params, replicated)
  opt_state = jax.device_put(tx.init(params), replicated)
  base_key = jax.random.key(config.seed)

  def train_step(params, opt_state, batch, step):
    key = jax.random.fold_in(base_key, step)
    beta = beta_at(config, step)
    return loop.apply_gradients(
      tx,
      lambda p: vae_lib.elbo_terms(nnx.merge(graphdef, p), batch["mel"], key, beta),
      params,
      opt_state,
    )

  train_step = jax.jit(
    loop.guarded(train_step),
    in_shardings=(replicated, replicated, data_sharding, replicated),
    out_shardings=(replicated, replicated, replicated),
    donate_argnums=(0, 1),
  )

  eval_key = jax.random.key(config.seed + 1)
  eval_step = jax.jit(
    lambda p, mel, beta: vae_lib.elbo_terms(nnx.merge(graphdef, p), mel, eval_key, beta)[1]
  )
  reconstruct = jax.jit(lambda p, mel: nnx.merge(graphdef, p)(mel)[0])  # from the mean

  def validate(params, step: int) -> dict:
    """Metrics on fixed validation windows; scalars, Griffin-Lim audio and a mel figure."""
    metrics = {
      k: float(v) for k, v in eval_step(params, val_batch["mel"], beta_at(config, step)).items()
    }
    if writer:
      for k, v in metrics.items():
        writer.add_scalar(f"validation/{k}", v, step)
      recon = np.asarray(reconstruct(params, val_batch["mel"]))
      target = np.asarray(val_batch["mel"])
      for i in range(min(config.train.get("audio_examples", 2), len(target))):
        for name, m in (("target", target[i]), ("reconstruction", recon[i])):
          audio = griffin_lim.log_mel_to_audio(
            m.T, n_iter=config.train.get("griffin_lim_iters", 32), method="pinv", seed=i
          )
          writer.add_audio(
            f"validation/{name}_{i}", np.clip(audio, -1, 1), step, sample_rate=spec.sample_rate
          )
      writer.add_figure("validation/log_mel", mel_figure(target[0], recon[0]), step)
    return metrics

  # ------------------------------------------------------------------ loop
  result = loop.run(
    loop.Loop(
      config,
      workdir,
      train_step,
      lambda local: common.global_batch({"mel": local["mel"]}, data_sharding),
      train_iter,
      schedule,
      validate if val_batch is not None else None,
      progress=("elbo", "kl", "beta"),
      throughput=("windows_per_second", config.input.batch_size),
      writer=writer,
    ),
    params,
    opt_state,
    replicated,
  )
  if "validation" in result and jax.process_index() == 0:
    write_json_atomic(
      paths.join(workdir, METRICS_FILE),
      {"step": result["steps"], "split": config.dataset.eval_split, **result["validation"]},
      indent=2,
    )
  return result
