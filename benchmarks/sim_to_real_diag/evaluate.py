"""Zero-shot, level, polarity and fine-tuning diagnostics of a sim-to-real workdir (R, default
runs/sim_to_real_local), every run on every test gain of the gain-5 row, through the table's own
evaluation (`sim_to_real.evaluate_run`), one seed.

Default: after `bash benchmarks/sim_to_real_diag/finetune_rate.sh` (one seed of the gain-5
fine-tune at rate LR into OUT), the pretrained checkpoint with no fine-tuning, the table's
fine-tuned and baseline seed-0 runs and the new run.

RUNS='name=DIR name2=DIR2' evaluates those runs instead (`{dev}` in DIR is the device), and
PRETRAIN (default R/pretrain) is the checkpoint whose zero-shot row is printed, read with the
first run's config. The figures go to OUT/eval.json and a table to OUT/eval.md.
"""

import json
import os

from ampspace import checkpoints
from ampspace.experiments import sim_to_real as s2r

R = os.environ.get("R", "runs/sim_to_real_local")
OUT = os.environ.get("OUT", "runs/diag/ft_lr")
PRETRAIN = os.environ.get("PRETRAIN", R + "/pretrain")
RUNS = [item.split("=", 1) for item in os.environ.get("RUNS", "").split()]
DEVICES = [
  d
  for d in (("gx_amp", "gain"), ("gx_bossds1", "drive"))
  if d[0] in os.environ.get("DEVS", "gx_amp gx_bossds1").split()
]


def runs_of(dev: str) -> dict:
  """name -> (checkpoint dir, dir whose config reads the device's data)."""
  if not RUNS:
    return {
      "zero_shot": (PRETRAIN, f"{R}/targets/{dev}/ft_5/pretrained/seed0"),
      "table fine-tuned": (f"{R}/targets/{dev}/ft_5/pretrained/seed0",) * 2,
      "ft at LR": (f"{OUT}/{dev}",) * 2,
      "baseline 650": (f"{R}/targets/{dev}/ft_5/baseline/seed0",) * 2,
    }
  dirs = {name: d.replace("{dev}", dev) for name, d in RUNS}
  return {
    "zero_shot": (PRETRAIN, next(iter(dirs.values()))),
    **{n: (d, d) for n, d in dirs.items()},
  }


p = s2r.Protocol(workdir=R, rows=((5.0,),))
out = {}
for dev, knob in DEVICES:
  for name, (ckpt, cfg_dir) in runs_of(dev).items():
    cfg = checkpoints.load_config(cfg_dir)
    g = s2r.group_metrics(p, s2r.evaluate_run(ckpt, cfg, knob, s2r.test_gains(p)))
    out[f"{dev} {name}"] = g
    print(
      dev,
      name,
      " ".join(
        f"{k}: esr {v['esr']:.3f} inv {v['esr_inverted']:.3f} lvl {v['level_db']:+.1f}"
        for k, v in g.items()
      ),
      flush=True,
    )
os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, "eval.json"), "w") as f:
  json.dump(out, f, indent=1)
groups = list(next(iter(out.values())))
lines = [
  "Pooled test ESR (plain; the level against the target's, dB) of each run at each test gain, "
  f"one seed; written by benchmarks/sim_to_real_diag/evaluate.py (R={R}, PRETRAIN={PRETRAIN}).",
  "",
  "| run | "
  + " | ".join(f"ESR {g}" for g in groups)
  + " | "
  + " | ".join(f"dB {g}" for g in groups)
  + " |",
  "|---|" + "---:|" * (2 * len(groups)),
]
for name, g in out.items():
  esr = " | ".join(f"{g[k]['esr']:.3f}" for k in groups)
  lvl = " | ".join(f"{g[k]['level_db']:+.1f}" for k in groups)
  lines.append(f"| {name} | {esr} | {lvl} |")
with open(os.path.join(OUT, "eval.md"), "w") as f:
  f.write("\n".join(lines) + "\n")
