"""Grain input pipeline throughput against what the Wave2WaveNet train step consumes.

  .venv/bin/python benchmarks/bench_pipeline.py            # writes benchmarks/results/pipeline.{json,md}
  .venv/bin/python benchmarks/bench_pipeline.py --quick    # runlocal sizes only, fewer batches

For each config size (`runlocal`; `paper` unless --quick), with that config's batch size,
window, worker count and read threads: the batches per second `ampspace.data.pipeline.
train_dataset` delivers from amp_space/tiny (built into a temporary folder), and the batches
per second the jitted train step (forward, loss, gradient, Adam update, as the trainer builds
it) consumes on this machine. Headroom = produced / consumed; the target is >= 5x, so the
input pipeline never starves the step. Both sides are timed after warm-up (the first
batches, the compilation).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
TARGET = 5.0


def load_config(arg: str):
  from ampspace.config_files import load_config as load

  return load(os.path.join(ROOT, "configs", "wave2wavenet.py"), arg)


def pipeline_rate(source, spec, config, batches: int) -> float:
  from ampspace.data import pipeline

  ds = pipeline.train_dataset(
    source,
    spec,
    batch_size=config.input.batch_size,
    seed=0,
    worker_count=config.input.worker_count,
    read_threads=config.input.read_threads,
  )
  it = iter(ds)
  for _ in range(3):  # warm-up: worker start, first reads
    next(it)
  t = time.perf_counter()
  for _ in range(batches):
    next(it)
  rate = batches / (time.perf_counter() - t)
  del it
  return rate


def train_step_rate(source, spec, config, steps: int, batch_size: int) -> float:
  import jax
  import jax.numpy as jnp
  import numpy as np
  import optax
  from flax import nnx

  from ampspace.data import pipeline
  from ampspace.trainers import common
  from ampspace.trainers.wave2wavenet import loss_and_metrics

  model = common.build_model(config)
  graphdef, params = nnx.split(model)
  tx, _ = common.make_optimizer(config.optimizer, config.train.steps)
  opt_state = tx.init(params)
  examples = [pipeline.crop_window(source[i % len(source)], 0, spec) for i in range(batch_size)]
  batch = {k: jnp.asarray(np.stack([e[k] for e in examples])) for k in examples[0]}
  weights = jnp.ones(256, jnp.float32)

  @jax.jit
  def step(params, opt_state, batch):
    def loss_fn(p):
      return loss_and_metrics(nnx.merge(graphdef, p), batch, config.loss, weights)

    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  params, opt_state, loss = step(params, opt_state, batch)  # compile
  loss.block_until_ready()
  t = time.perf_counter()
  for _ in range(steps):
    params, opt_state, loss = step(params, opt_state, batch)
  loss.block_until_ready()
  return steps / (time.perf_counter() - t)


def measure(arg: str, data_dir: str, batches: int, steps: int, step_batch: int = 0) -> dict:
  """One config's row; `step_batch` > 0 times the step at that batch and scales to the config's
  (CPU compute is linear in the batch), for sizes whose full step does not fit in memory."""
  import tensorflow_datasets as tfds

  from ampspace.data import pipeline
  from ampspace.trainers import common

  config = load_config(arg)
  config.dataset.name, config.dataset.data_dir = "amp_space/tiny", data_dir
  source = tfds.data_source("amp_space/tiny", data_dir=data_dir, download=False)["train"]
  context = common.build_model(config).context
  spec = pipeline.WindowSpec(config.input.window, *context)
  produced = pipeline_rate(source, spec, config, batches)
  full = config.input.batch_size
  measured_batch = min(step_batch, full) if step_batch else full
  consumed = train_step_rate(source, spec, config, steps, measured_batch) * measured_batch / full
  row = {
    "config": arg or "paper",
    "batch": config.input.batch_size,
    "window": config.input.window,
    "channels": config.model.channels,
    "worker_count": config.input.worker_count,
    "read_threads": config.input.read_threads,
    "pipeline_batches_s": produced,
    "train_steps_s": consumed,
    "step_measured_at_batch": measured_batch,
    "headroom": produced / consumed,
    "pipeline_samples_s": produced * config.input.batch_size * config.input.window,
  }
  print(
    f"  {row['config']}: pipeline {produced:.1f} batches/s, train step {consumed:.2f} steps/s, "
    f"headroom {row['headroom']:.1f}x",
    file=sys.stderr,
    flush=True,
  )
  return row


def markdown(result: dict) -> str:
  lines = [
    "| config | batch × window | channels | workers | pipeline batches/s | "
    "train steps/s | headroom |",
    "|---|---:|---:|---:|---:|---:|---:|",
  ]
  for r in result["rows"]:
    lines.append(
      f"| {r['config']} | {r['batch']} × {r['window']} | {r['channels']} | "
      f"{r['worker_count']} | {r['pipeline_batches_s']:.1f} | {r['train_steps_s']:.3f}"
      f"{' (timed at batch %d, scaled)' % r['step_measured_at_batch'] if r['step_measured_at_batch'] != r['batch'] else ''} | "
      f"{r['headroom']:.1f}× {'✓' if r['headroom'] >= TARGET else '✗'} |"
    )
  lines += ["", f"Target: headroom ≥ {TARGET:.0f}× at the config's default worker count."]
  return "\n".join(lines) + "\n"


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--quick", action="store_true")
  p.add_argument("--batches", type=int, default=50)
  p.add_argument("--steps", type=int, default=5)
  p.add_argument(
    "--paper_step_batch",
    type=int,
    default=8,
    help="batch at which the paper-size step is timed (its full batch 64 does not "
    "fit a small machine's memory); scaled to 64",
  )
  p.add_argument("--out", default=os.path.join(HERE, "results", "pipeline"))
  args = p.parse_args()
  from absl import flags

  flags.FLAGS.mark_as_parsed()  # Grain's multiprocessing workers read absl flags (as under app.run)
  import tensorflow_datasets as tfds

  import tfds_ampspace  # noqa: F401

  with tempfile.TemporaryDirectory() as data_dir:
    tfds.builder(
      "amp_space/tiny", data_dir=data_dir, file_format="array_record"
    ).download_and_prepare()
    configs = ["runlocal"] if args.quick else ["runlocal", ""]
    rows = [
      measure(
        a,
        data_dir,
        10 if args.quick else args.batches,
        2 if args.quick else (args.steps if a else 2),
        0 if a else args.paper_step_batch,
      )
      for a in configs
    ]
  result = {
    "benchmark": "pipeline",
    "quick": args.quick,
    "target_headroom": TARGET,
    "rows": rows,
    "met": all(r["headroom"] >= TARGET for r in rows),
    "machine": {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]},
  }
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out + ".json", "w") as f:
    json.dump(result, f, indent=2)
  with open(args.out + ".md", "w") as f:
    f.write(markdown(result))
  print(markdown(result))


if __name__ == "__main__":
  main()
