"""Which change to the capture recipe bought what: one table from the seeded ablations.

Reads the per-seed races that `benchmarks/accuracy_seeds.py` kept in RESULTS/seeds/ (nothing
is trained here) and writes `accuracy_ablation.md`: for each change kept in
configs/capture.py's `nam_layout` recipe, per capture and wall-clock budget, the mean pooled
test ESR over seeds before and after, their ratio, and whether the 95 % t-intervals of the
means are apart. The single-seed probes (accuracy_input_mixin.md, accuracy_torch_init.md)
are listed, not pooled: one seed is no verdict.

  python benchmarks/accuracy_ablation.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# (short name, what changed, accuracy_seeds tag, variant before, variant after)
ABLATIONS = (
  (
    "init",
    "PyTorch's uniform ±1/sqrt(fan_in) initialisation instead of Flax's LeCun normal",
    "init",
    "flax",
    "torch",
  ),
  ("batch", "batches of 8 × 8192 instead of NAM's 16 × 8192", "batch_seeds", "b16", "b8"),
  (
    "ema",
    "a moving average of the weights (optimizer.ema_decay=0.999), on the amp",
    "ema",
    "off",
    "ema",
  ),
  ("ema", "the same on the two pedals", "ema_pedals", "off", "ema"),
)
PROBES = (
  ("input_mixin: NAM's layers also see the input audio", "accuracy_input_mixin.md"),
  ("the paper's 256-way model with PyTorch's initialisation", "accuracy_torch_init.md"),
)


def runs(seed_dir: str, tag: str, variant: str) -> list[dict]:
  """The bench_accuracy reports of one variant, one per seed, in seed order."""
  prefix = f"accuracy_seeds_{tag}_{variant}_s"
  names = sorted(
    (n for n in os.listdir(seed_dir) if n.startswith(prefix) and n.endswith(".json")),
    key=lambda n: int(n[len(prefix) : -5]),
  )
  out = []
  for n in names:
    with open(os.path.join(seed_dir, n)) as f:
      out.append(json.load(f))
  return out


def table(seed_dir: str) -> str:
  from accuracy_seeds import collect, interval

  lines = [
    f"Made by `python benchmarks/accuracy_ablation.py` on "
    f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} from the seeded races in "
    "`benchmarks/results/seeds/` (each made by `benchmarks/accuracy_seeds.py`, see its "
    "`accuracy_seeds_TAG.md`). Contender: our NAM-layout WaveNet; pooled plain test ESR, mean "
    "over seeds; \"apart\": the 95 % t-intervals of the two means do not overlap. Every "
    "change is kept in configs/capture.py's `nam_layout` recipe, in this order:",
    "",
  ]
  rows = [
    "| change | capture | budget | seeds | before | after | after / before | apart | lower, same seed |",
    "|---|---|---:|---:|---:|---:|---:|:-:|:-:|",
  ]
  for name, what, tag, before, after in ABLATIONS:
    a, b = runs(seed_dir, tag, before), runs(seed_dir, tag, after)
    commits = sorted({r["commit"] for r in a + b})
    lines.append(f"- `{name}`: {what} (`accuracy_seeds_{tag}.md`; commit {', '.join(commits)})")
    if not a or not b:
      rows.append(f"| {name} | (no runs of tag {tag!r}) | | | | | | | |")
      continue
    # accuracy_seeds.collect: {(capture, variant, seconds): [ESR per seed]}
    reports = {(v, i): r for v, rs in ((before, a), (after, b)) for i, r in enumerate(rs)}
    cells = collect(reports, "ours_nam_layout")
    ca = {(c, sec): x for (c, v, sec), x in cells.items() if v == before}
    cb = {(c, sec): x for (c, v, sec), x in cells.items() if v == after}
    for capture, sec in sorted(set(ca) & set(cb)):
      (ma, la, ha), (mb, lb, hb) = interval(ca[(capture, sec)]), interval(cb[(capture, sec)])
      n = min(len(ca[(capture, sec)]), len(cb[(capture, sec)]))
      apart = "—" if n < 2 else ("yes" if hb < la or lb > ha else "no")
      # the same seed is the same initialisation and batch order: a paired comparison
      lower = sum(y < x for x, y in zip(ca[(capture, sec)], cb[(capture, sec)]))
      rows.append(
        f"| {name} | {capture} | {sec:g} s | {n} | {ma:.4f} | {mb:.4f} | {mb / ma:.2f} | {apart} "
        f"| {lower} of {n} |"
      )
  lines += [
    "",
    *rows,
    "",
    "The race (accuracy.md) names the commit it was made at: a change measured here at a "
    "later commit is in the recipe, but not in the race's figures until the race is rerun.",
    "",
    "Single-seed probes (not kept; see each file's before/after table):",
    "",
  ]
  lines += [f"- {what}: [{name}]({name})" for what, name in PROBES]
  return "\n".join(lines) + "\n"


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--results_dir", default=os.path.join(HERE, "results"))
  args = ap.parse_args()
  text = table(os.path.join(args.results_dir, "seeds"))
  from ampspace.files import atomic_write

  atomic_write(os.path.join(args.results_dir, "accuracy_ablation.md"), text)
  print(text)


if __name__ == "__main__":
  sys.path.insert(0, REPO)
  sys.path.insert(0, HERE)
  main()
