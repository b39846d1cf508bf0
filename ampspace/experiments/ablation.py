"""Loss × decoder ablation table: `python launch/ablation.py --workdir=runs/ablation`.

Trains one model per loss of configs/ablation_losses.py (same data, seed, steps and size), then
evaluates each on the test split with each decoder, and writes WORKDIR/ablation.md and .csv
(test MSE, ESR and MR-STFT over whole clips). Rerunning reuses finished variants (a finished
workdir resumes at its last step and trains nothing).
"""

from __future__ import annotations

import argparse
import csv
import os
import time

from ampspace import trainers
from ampspace.config_files import config_module
from ampspace.files import atomic_open, atomic_write


def load_config_module():
  return config_module("ablation_losses")


def markdown(rows: list[dict], config, seconds: float) -> str:
  lines = [
    f"# Loss ablation ({config.dataset.name}, {config.train.steps} steps, seed "
    f"{config.seed}, Wave2WaveNet depth {config.model.depth} × {config.model.channels} ch)",
    "",
    "| loss | decode | test MSE ×1e-3 | test ESR | test MR-STFT | final train loss |",
    "|---|---|---:|---:|---:|---:|",
  ]
  for r in rows:
    lines.append(
      f"| {r['loss']} | {r['decode']} | {1e3 * r['mse']:.3f} | {r['esr']:.4f} | "
      f"{r['mr_stft']:.3f} | {r['final_train_loss']:.4g} |"
    )
  lines += [
    "",
    f"Wall time {seconds / 60:.1f} min. Command: `python launch/ablation.py --workdir=...`",
    "",
  ]
  return "\n".join(lines)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--workdir", required=True)
  p.add_argument("--data_dir", default="", help="TFDS data dir (default: the TFDS default)")
  p.add_argument("--steps", type=int, default=None, help="override train.steps (smoke runs)")
  p.add_argument("--max_examples", type=int, default=None, help="test clips to evaluate")
  args = p.parse_args(argv)
  from ampspace import evaluate  # jax, flax, TFDS: after the arguments, so --help stays fast

  module = load_config_module()
  base = module.get_config()
  if args.data_dir:
    base.dataset.data_dir = args.data_dir
  if args.steps:
    base.train.steps = args.steps
    base.train.checkpoint_every = args.steps
  os.makedirs(args.workdir, exist_ok=True)
  t0 = time.time()
  rows = []
  for i, loss in enumerate(module.VARIANTS):
    config = module.variant(base, loss)
    workdir = os.path.join(args.workdir, loss)
    print(f"[ablation] {i + 1}/{len(module.VARIANTS)} train {loss} -> {workdir}", flush=True)
    result = trainers.get_trainer(config.trainer)(config, workdir)
    final = result["history"][-1]["loss"] if result["history"] else float("nan")
    decoders = module.DECODERS if loss != "mse" else ("n/a",)
    for decode in decoders:
      c = config.copy_and_resolve_references()
      if decode != "n/a":
        c.loss.decode = decode
      ev = evaluate.evaluate(
        workdir,
        split=c.eval.split,
        config=c,
        max_examples=args.max_examples,
        out_dir=os.path.join(workdir, "eval", decode),
      )
      g = ev["groups"]["all"]
      rows.append(
        {
          "loss": loss,
          "decode": decode,
          "mse": g["mse"],
          "esr": g["esr"],
          "mr_stft": g["mr_stft"],
          "clips": g["clips"],
          "final_train_loss": final,
          "steps": result["steps"],
        }
      )
      print(f"[ablation] {loss}/{decode}: MSE {g['mse']:.3g} ESR {g['esr']:.3g}", flush=True)
  with atomic_open(os.path.join(args.workdir, "ablation.csv"), newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
  text = markdown(rows, base, time.time() - t0)
  atomic_write(os.path.join(args.workdir, "ablation.md"), text)
  print(text)
