"""Table 3's cells at each single test gain: pooled ESR per gain (mean ± 95% half-width over
seeds) and the prediction's level against the target's, from the per-clip sums every cell
keeps (`cell.json`), so no model is run again.

Table 3 pools a column's two gains ({2,8}: Σ error² / Σ target² over both), and a louder gain
dominates the pool: `gx_amp` at 8 is about 18 dB louder than at 2, so {2,8} is mostly gain 8.
This shows each gain on its own.

R (default runs/sim_to_real_local), ROW (default 5: the fine-tune gains' label), OUT (default
R/results): writes OUT/per_gain.md and OUT/per_gain.json. Seconds.
"""

import glob
import json
import os

import numpy as np

from ampspace.experiments import sim_to_real as s2r

R = os.environ.get("R", "runs/sim_to_real_local")
ROW = os.environ.get("ROW", "5")
OUT = os.environ.get("OUT", os.path.join(R, "results"))

paths = sorted(glob.glob(os.path.join(R, "targets", "*", f"ft_{ROW}", "*", "seed*", "cell.json")))
if not paths:
  raise SystemExit(f"{R}: no cell.json under targets/*/ft_{ROW}/*/seed*")
per: dict[tuple, dict[float, list]] = {}
for path in paths:
  with open(path) as f:
    cell = json.load(f)
  by_gain: dict[float, list] = {}
  for clip in cell["clips"]:
    by_gain.setdefault(float(clip["gain"]), []).append(clip)
  for gain, clips in by_gain.items():
    sse, sst = sum(c["sse"] for c in clips), sum(c["sst"] for c in clips)
    ssp = sum(c["ssp"] for c in clips)
    per.setdefault((cell["target"], cell["model"]), {}).setdefault(gain, []).append(
      {"esr": sse / sst, "level_db": 10 * np.log10(ssp / sst)}
    )

gains = sorted({g for v in per.values() for g in v})
out, lines = {}, []
for target in sorted({t for t, _ in per}):
  lines += [
    f"**{target}**",
    "",
    "| model | seeds | "
    + " | ".join(f"ESR {g:g}" for g in gains)
    + " | "
    + " | ".join(f"dB {g:g}" for g in gains)
    + " |",
    "|---|---:|" + "---:|" * (2 * len(gains)),
  ]
  for (t, model), at in sorted(per.items()):
    if t != target:
      continue
    esr = {g: s2r.interval([s["esr"] for s in at[g]]) for g in gains if g in at}
    lvl = {g: float(np.mean([s["level_db"] for s in at[g]])) for g in gains if g in at}
    out[f"{target} {model}"] = {
      f"{g:g}": {"esr": esr[g][0], "esr_ci95": esr[g][1], "level_db": lvl[g]} for g in esr
    }
    seeds = max(len(v) for v in at.values())
    lines.append(
      f"| {s2r.MODEL_LABELS.get(model, model)} | {seeds} | "
      + " | ".join(s2r._fmt(*esr[g]) if g in esr else "" for g in gains)
      + " | "
      + " | ".join(f"{lvl[g]:+.1f}" if g in lvl else "" for g in gains)
      + " |"
    )
  lines.append("")
header = (
  f"Pooled test ESR at each single gain of the fine-tune-on-{ROW} row (mean ± 95% half-width "
  "over seeds; the zero-shot row one run), and the prediction's level against the target's "
  f"(dB, mean over seeds); from the cells under {R}, written by "
  "benchmarks/sim_to_real_diag/per_gain.py."
)
os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, "per_gain.json"), "w") as f:
  json.dump(out, f, indent=1)
with open(os.path.join(OUT, "per_gain.md"), "w") as f:
  f.write(header + "\n\n" + "\n".join(lines))
print(header + "\n\n" + "\n".join(lines))
