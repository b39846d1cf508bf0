"""Seeds and intervals for one ablation of benchmarks/bench_accuracy.py, or for a race.

One race per (variant, seed), each a plain bench_accuracy run of one contender with its
overrides (its JSON kept in RESULTS/seeds/), then one table, `accuracy_seeds_TAG.md`: per
capture, variant and wall-clock budget the mean pooled test ESR over the seeds, its 95 %
t-interval and every seed's value, and the ratio of the variants' means. The training seed
changes; the captures and their splits do not.

A variant is `NAME:KEY=VALUE[;KEY=VALUE]` (overrides of `--contender`), or
`NAME@CONTENDER[:KEY=VALUE...]` for another contender, NAM's recipe included (`recipe@nam`,
which takes no overrides). `--compare=A@SECONDS/B@SECONDS` adds the ratio of A's mean at one
budget to B's at another, with both intervals (the race's first target: ours at 5 minutes
against NAM at 10).

  python benchmarks/accuracy_seeds.py --tag=init --contender=ours_nam_layout \\
      --variant=flax:model.init=flax --variant=torch:model.init=torch --seeds=0,1,2 \\
      --captures=gx_amp_crunch
  python benchmarks/accuracy_seeds.py --tag=race_amp --variant=recipe@nam \\
      --variant=ours@ours_nam_layout --compare=ours@300/recipe@600 --captures=gx_amp_crunch

Every run is fresh (nothing is reused from an earlier commit); about 5.5 minutes per run
for a from-scratch contender at the default budgets, on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def interval(values, confidence: float = 0.95) -> tuple[float, float, float]:
  """(mean, low, high): the t-interval of the mean of `values` (nan bounds for one value)."""
  import scipy.stats

  x = np.asarray(values, np.float64)
  mean = float(x.mean())
  if len(x) < 2:
    return mean, float("nan"), float("nan")
  half = float(
    scipy.stats.t.ppf((1 + confidence) / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
  )
  return mean, mean - half, mean + half


def parse_variant(text: str, contender: str) -> tuple[str, str, list[str]]:
  """`NAME[@CONTENDER][:KEY=VALUE[;KEY=VALUE]]` -> (name, contender, overrides); without
  `@CONTENDER` the variant is of `contender` and must override something. SystemExit with one
  line on a malformed spec."""
  head, _, kvs = text.partition(":")
  name, at, who = head.partition("@")
  overrides = kvs.split(";") if kvs else []
  if (
    not name
    or (at and not who)
    or any("=" not in kv for kv in overrides)
    or (not at and not overrides)
  ):
    raise SystemExit(
      f"--variant {text!r}: expected NAME:KEY=VALUE[;KEY=VALUE] or NAME@CONTENDER[:KEY=VALUE...]"
    )
  return name, who or contender, overrides


def collect(reports: dict[tuple[str, int], dict], contender: str | dict[str, str]) -> dict:
  """{(capture, variant, seconds): [ESR per seed, in seed order]} from bench JSON reports
  keyed by (variant, seed); `contender` is every variant's, or a {variant: contender} map. A
  failed or missing run is left out of its cell."""
  cells: dict[tuple[str, str, float], list[float]] = {}
  for (variant, _seed), report in sorted(reports.items(), key=lambda kv: kv[0][1]):
    who = contender if isinstance(contender, str) else contender[variant]
    for capture, res in report["results"].items():
      for s in res.get(who, {}).get("scores", []):
        cells.setdefault((capture, variant, float(s["seconds"])), []).append(float(s["esr"]))
  return cells


def markdown(cells: dict, variants: list[str], seeds: list[int], meta: dict) -> str:
  lines = [
    f"Made by `{meta['command']}` at commit {meta['commit']} on {meta['when']} "
    f"({meta['machine']}); contenders {meta['contender']}, seeds "
    f"{', '.join(map(str, seeds))}.",
    "",
    "Pooled test ESR (plain) after each wall-clock budget: mean over seeds, 95 % "
    "t-interval of the mean, and each seed's value.",
    "",
    "| capture | variant | budget | mean ESR | 95 % interval | per seed |",
    "|---|---|---:|---:|---|---|",
  ]
  for capture, variant, sec in sorted(cells, key=lambda k: (k[0], k[2], variants.index(k[1]))):
    xs = cells[(capture, variant, sec)]
    mean, lo, hi = interval(xs)
    lines.append(
      f"| {capture} | {variant} | {sec:g} s | {mean:.4f} | [{lo:.4f}, {hi:.4f}] | "
      + ", ".join(f"{x:.4f}" for x in xs)
      + " |"
    )
  if len(variants) > 1:
    lines += [
      "",
      f"Ratio of means, each variant against {variants[0]}:",
      "",
      "| capture | budget | variant | ratio | intervals overlap |",
      "|---|---:|---|---:|:-:|",
    ]
    for capture, variant, sec in sorted(cells):
      base = cells.get((capture, variants[0], sec))
      if variant == variants[0] or not base:
        continue
      m, lo, hi = interval(cells[(capture, variant, sec)])
      bm, blo, bhi = interval(base)
      if np.isnan([lo, hi, blo, bhi]).any():
        overlap = "—"  # one seed: no interval
      else:
        overlap = "no" if hi < blo or lo > bhi else "yes"
      lines.append(f"| {capture} | {sec:g} s | {variant} | {m / bm:.2f} | {overlap} |")
  return "\n".join(lines) + "\n"


def parse_compare(text: str) -> tuple[tuple[str, float], tuple[str, float]]:
  """`A@SECONDS/B@SECONDS` -> ((A, seconds), (B, seconds)); SystemExit with one line if not."""
  try:
    a, b = text.split("/")
    return tuple((n, float(sec)) for n, sec in (x.rsplit("@", 1) for x in (a, b)))  # type: ignore[return-value]
  except ValueError:
    raise SystemExit(
      f"--compare {text!r}: expected A@SECONDS/B@SECONDS, e.g. ours@300/recipe@600"
    ) from None


def comparison(cells: dict, compares) -> str:
  """Markdown: per capture and `((A, sa), (B, sb))`, the ratio of A's mean ESR at sa to B's at
  sb, both 95 % intervals, and whether they are apart."""
  lines = [
    "| capture | A | B | mean A | mean B | ratio A/B | A's interval | B's interval | apart |",
    "|---|---|---|---:|---:|---:|---|---|:-:|",
  ]
  for capture in sorted({k[0] for k in cells}):
    for (a, sa), (b, sb) in compares:
      xa, xb = cells.get((capture, a, sa)), cells.get((capture, b, sb))
      if not xa or not xb:
        continue
      (ma, la, ha), (mb, lb, hb) = interval(xa), interval(xb)
      apart = "—" if np.isnan([la, ha, lb, hb]).any() else ("yes" if ha < lb or la > hb else "no")
      lines.append(
        f"| {capture} | {a} at {sa:g} s | {b} at {sb:g} s | {ma:.4f} | {mb:.4f} | {ma / mb:.2f} | "
        f"[{la:.4f}, {ha:.4f}] | [{lb:.4f}, {hb:.4f}] | {apart} |"
      )
  return "\n".join(lines) + "\n"


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--tag", required=True)
  ap.add_argument("--contender", default="ours_nam_layout")
  ap.add_argument(
    "--variant",
    action="append",
    required=True,
    help="NAME:KEY=VALUE[;KEY=VALUE] overrides of the contender's config",
  )
  ap.add_argument(
    "--compare",
    action="append",
    default=[],
    help="A@SECONDS/B@SECONDS: the ratio of variant A's mean at one budget to B's at another",
  )
  ap.add_argument("--seeds", default="0,1,2")
  ap.add_argument("--captures", default="gx_amp_crunch,gx_bossds1,gx_fuzzface")
  ap.add_argument("--results_dir", default=os.path.join(HERE, "results"))
  ap.add_argument(
    "--pretrained",
    default="",
    help="bench_accuracy.py's --pretrained: the pretraining run an ours_finetune variant starts from",
  )
  ap.add_argument(
    "--pretrained_nam_layout",
    default="",
    help="bench_accuracy.py's --pretrained_nam_layout (ours_finetune_nam_layout's start)",
  )
  ap.add_argument(
    "--table_only",
    action="store_true",
    help="write the table from the runs already in RESULTS/seeds (no training)",
  )
  args = ap.parse_args()
  seeds = [int(s) for s in args.seeds.split(",")]
  variants = [parse_variant(v, args.contender) for v in args.variant]
  compares = [parse_compare(c) for c in args.compare]
  names = [n for n, _, _ in variants]
  for (a, _), (b, _) in compares:
    if a not in names or b not in names:
      raise SystemExit(f"--compare: {a!r} and {b!r} must both be variants ({', '.join(names)})")
  seed_dir = os.path.join(args.results_dir, "seeds")
  reports = {}
  for seed in seeds:
    for name, who, kvs in variants:
      tag = f"seeds_{args.tag}_{name}_s{seed}"
      cmd = [
        sys.executable,
        os.path.join(HERE, "bench_accuracy.py"),
        f"--contenders={who}",
        f"--captures={args.captures}",
        f"--seed={seed}",
        f"--tag={tag}",
        f"--results_dir={seed_dir}",
        *(f"--override={who}:{kv}" for kv in kvs),
        *(
          f"--{flag}={getattr(args, flag)}"
          for flag in ("pretrained", "pretrained_nam_layout")
          if getattr(args, flag)
        ),
      ]
      if not args.table_only:
        print(f"[{time.strftime('%H:%M:%S')}] {name}, seed {seed}", flush=True)
        subprocess.run(cmd, check=True, cwd=REPO)
      with open(os.path.join(seed_dir, f"accuracy_{tag}.json")) as f:
        reports[(name, seed)] = json.load(f)
  from ampspace.files import atomic_write

  first = next(iter(reports.values()))
  meta = {
    "command": "python benchmarks/accuracy_seeds.py " + " ".join(sys.argv[1:]),
    "commit": first["commit"],
    "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    "machine": first["machine"],
    "contender": (
      variants[0][1]
      if len({w for _, w, _ in variants}) == 1
      else ", ".join(f"{n}: {w}" for n, w, _ in variants)
    ),
  }
  cells = collect(reports, {n: w for n, w, _ in variants})
  text = markdown(cells, names, seeds, meta)
  if compares:
    text += "\nAcross budgets (ratio of the means):\n\n" + comparison(cells, compares)
  atomic_write(os.path.join(args.results_dir, f"accuracy_seeds_{args.tag}.md"), text)
  print(text)


if __name__ == "__main__":
  sys.path.insert(0, REPO)
  main()
