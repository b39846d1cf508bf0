"""Zero-shot, level, polarity and fine-tuning-rate diagnostics of a sim-to-real workdir (R, default
runs/sim_to_real_local): after `bash benchmarks/sim_to_real_diag/finetune_rate.sh` (one seed of
the gain-5 fine-tune at rate LR into OUT), evaluates the pretrained checkpoint with no
fine-tuning, the table's fine-tuned and baseline seed-0 runs and the new run on every test gain."""

import json
import os

from ampspace.experiments import sim_to_real as s2r
from ampspace import checkpoints

R = os.environ.get("R", "runs/sim_to_real_local")
OUT = os.environ.get("OUT", "runs/diag/ft_lr")
p = s2r.Protocol(workdir=R, rows=((5.0,),))
out = {}
for dev, knob in (("gx_amp", "gain"), ("gx_bossds1", "drive")):
  runs = {
    "zero_shot": (R + "/pretrain", f"{R}/targets/{dev}/ft_5/pretrained/seed0"),
    "table fine-tuned": (f"{R}/targets/{dev}/ft_5/pretrained/seed0",) * 2,
    "ft at LR": (f"{OUT}/{dev}",) * 2,
    "baseline 650": (f"{R}/targets/{dev}/ft_5/baseline/seed0",) * 2,
  }
  for name, (ckpt, cfg_dir) in runs.items():
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
json.dump(out, open(os.path.join(OUT, "eval.json"), "w"), indent=1)
