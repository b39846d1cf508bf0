"""The one benchmark entry: runs every area benchmark, then writes the summary and the docs page.

  .venv/bin/python benchmarks/run_all.py            # full run (tens of minutes on 2 cores)
  .venv/bin/python benchmarks/run_all.py --quick    # smoke run of every benchmark
  .venv/bin/python benchmarks/run_all.py --only streaming,pipeline
  .venv/bin/python benchmarks/run_all.py --reuse    # no runs: regenerate from results/*.json

Each benchmark runs as its own process (so one may pin itself to a core or set thread counts
before NumPy/JAX load) and writes benchmarks/results/<name>.{json,md}:

  devices    bench_devices.py    device rendering RTF, pedalboard's chain in the same run
  pipeline   bench_pipeline.py   Grain batches/s against the train step's, headroom >= 5x
  training   bench_training.py   training samples/s and inference RTF beside NAM's WaveNet
  streaming  bench_streaming.py  streaming RTF per block size on one core; offline RTF
  accuracy   bench_accuracy.py   test ESR per wall-clock minute against NAM's own recipe on
                                 Guitarix captures (opt-in: `--only accuracy`, ~90 minutes)
  gpu_check  gpu_check.py        paper-scale train step beside NAM's on an NVIDIA GPU and a
                                 short training run there: never run here; its results are
                                 read when present, else the summary says it was not run

This script then writes benchmarks/results/summary.{json,md} and docs/performance.md (the
README's Performance section links it). Every figure there comes from those JSON files; a
benchmark that is absent or fails is listed as such, not filled in.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from ampspace.errors import AmpSpaceError  # noqa: E402
from ampspace.files import atomic_write, replace_between_markers  # noqa: E402

RESULTS = os.path.join(HERE, "results")
DOC = os.path.join(ROOT, "docs", "performance.md")
README = os.path.join(ROOT, "README.md")

# name -> (script, full-run args, quick-run args); outputs land in results/<name>.{json,md}
BENCHMARKS = {
  "devices": (
    "bench_devices.py",
    ["--out", RESULTS],
    ["--out", RESULTS, "--seconds", "2", "--repeats", "1"],
  ),
  "pipeline": ("bench_pipeline.py", [], ["--quick"]),
  "training": ("bench_training.py", ["--out", RESULTS], ["--out", RESULTS, "--quick"]),
  "streaming": ("bench_streaming.py", [], ["--quick"]),
  # Opt-in (`--only accuracy`): a race of wall-clock budgets, about 90 minutes on 2 cores.
  # It fine-tunes from Table 3's pretraining (launch/sim_to_real.py --scale=runlocal makes it);
  # configs/capture.py:finetune reads the capture's polarity first, as sim-to-real does. The
  # NAM-layout fine-tune row needs benchmarks/pretrain_nam_layout.sh's run (left out without it).
  "accuracy": (
    "bench_accuracy.py",
    [
      "--pretrained_nam_layout=runs/pretrain_nam_layout",
      "--pretrained_nam_layout_note=benchmarks/pretrain_nam_layout.sh: 2000 steps of 8 x 4096 "
      "on 13 native amps and pedals",
      "--pretrained=runs/sim_to_real_local/pretrain",
      "--pretrained_note=configs/sim_to_real_pretrain.py:runlocal, Table 3's "
      "pretraining: 500 steps of 8 x 2048 on 13 native amps and pedals, depth 10, "
      "16 channels",
    ],
    [
      "--budgets=20,40",
      "--scratch_budgets=20",
      "--finetune_budgets=10",
      "--captures=gx_bossds1",
      "--train_dis=3",
      "--test_dis=2",
      "--di_seconds=2",
    ],
  ),
}
OPT_IN = {"accuracy"}  # not in a run without --only
# Measured on another machine and never run here: the results are read when present, and the
# summary says "not run" with how to run it when they are not.
DEVICE_ONLY = {
  "gpu_check": "needs an NVIDIA GPU, and none was available for these results: on one, "
  "`bash benchmarks/gpu_check.sh OUT` (after `bash benchmarks/gpu_wheels.sh` here), then copy "
  "OUT/gpu_check.{json,md} into benchmarks/results/",
}
TITLES = {
  "devices": "Device rendering (one core)",
  "pipeline": "Input pipeline headroom",
  "training": "Training and inference against neural-amp-modeler",
  "streaming": "Streaming and offline inference",
  "accuracy": "Accuracy per CPU-minute against neural-amp-modeler",
  "gpu_check": "Accelerator check (NVIDIA GPU)",
}


def run_benchmark(name: str, quick: bool, timeout: float) -> dict:
  script, full, quick_args = BENCHMARKS[name]
  path = os.path.join(HERE, script)
  if not os.path.exists(path):
    return {"status": "missing", "detail": f"benchmarks/{script} does not exist"}
  cmd = [sys.executable, path, *(quick_args if quick else full)]
  print(f"[run_all] {name}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
  t = time.perf_counter()
  try:
    proc = subprocess.run(
      cmd,
      cwd=ROOT,
      capture_output=True,
      text=True,
      timeout=timeout,
      env={**os.environ, "PYTHONPATH": ROOT},
    )
  except subprocess.TimeoutExpired:
    return {
      "status": "failed",
      "detail": f"timed out after {timeout:.0f} s",
      "seconds": time.perf_counter() - t,
    }
  seconds = time.perf_counter() - t
  if proc.returncode != 0:
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    return {
      "status": "failed",
      "detail": f"exit {proc.returncode}: " + " / ".join(tail),
      "seconds": seconds,
    }
  return {"status": "ok", "seconds": seconds}


def previous_dates() -> dict[str, str]:
  """{benchmark: when its results were made}, from the last summary.json."""
  try:
    with open(os.path.join(RESULTS, "summary.json")) as f:
      old = json.load(f).get("benchmarks", {})
  except (OSError, json.JSONDecodeError):
    return {}
  return {k: v["generated"] for k, v in old.items() if isinstance(v, dict) and v.get("generated")}


def collect(name: str, run: dict | None, made: str | None = None) -> dict:
  """One benchmark's entry; `made` dates reused results (a checkout's file times do not)."""
  entry = dict(run or {"status": "reused"})
  json_path, md_path = (os.path.join(RESULTS, f"{name}.{ext}") for ext in ("json", "md"))
  if name in DEVICE_ONLY and not os.path.exists(json_path):
    return {"status": "not run", "detail": DEVICE_ONLY[name]}
  if entry["status"] in ("ok", "reused"):
    if not os.path.exists(json_path):
      return {"status": "missing", "detail": f"{os.path.relpath(json_path, ROOT)} not written"}
    with open(json_path) as f:
      entry["result"] = json.load(f)
    entry["md"] = open(md_path).read() if os.path.exists(md_path) else ""
    entry["generated"] = (
      made
      if entry["status"] == "reused" and made
      else datetime.datetime.fromtimestamp(os.path.getmtime(json_path)).isoformat(
        timespec="seconds"
      )
    )
  return entry


# ---------------------------------------------------------------- headlines
def _devices(r: dict) -> list[str]:
  rows = r.get("rows", [])
  ref = [x for x in rows if x.get("type") == "reference"]
  native = [x for x in rows if x.get("kind") == "native"]
  out = []
  if ref:
    out.append(f"pedalboard built-in chain: {ref[0]['rtf']:.0f}× real time (same run)")
  for label, pick in (
    ("native amps", lambda x: x.get("type") == "amp"),
    ("native pedals", lambda x: x.get("type") != "amp"),
  ):
    picked = [x for x in native if pick(x)]
    vals = sorted(x["rtf"] for x in picked)
    if vals:
      targets = sorted({x["target"] for x in picked if x.get("target")})
      met = all(x.get("rtf_cpu", x["rtf"]) >= x["target"] for x in picked if x.get("target"))
      target = (
        f"; target ≥ {targets[0]:.0f}× on CPU time: {'met' if met else 'not met'}"
        if targets
        else ""
      )
      out.append(
        f"{label}: {vals[0]:.0f}× to {vals[-1]:.0f}× real time "
        f"(median {vals[len(vals) // 2]:.0f}×{target})"
      )
  return out


def _pipeline(r: dict) -> list[str]:
  return [
    f"{x['config']}: pipeline {x['pipeline_batches_s']:.1f} batches/s vs train step "
    f"{x['train_steps_s']:.3f} steps/s → headroom {x['headroom']:.1f}× (target ≥ "
    f"{r.get('target_headroom', 5):.0f}×)"
    for x in r.get("rows", [])
  ]


def _streaming(r: dict) -> list[str]:
  out = []
  for impl in ("c", "lv2", "numpy", "jax"):
    rows = [x for x in r["streaming"]["rows"] if x["impl"] == impl]
    if rows:
      out.append(
        f"streaming, {impl}, one core: "
        + ", ".join(f"{x['block']}: {x['rtf']:.1f}×" for x in rows)
        + " real time (block: RTF)"
      )
  for x in r["offline"]["rows"]:
    out.append(f"offline, {x['impl']}, {r['offline']['cores']} cores: {x['rtf']:.1f}× real time")
  for key, t in r.get("targets", {}).items():
    out.append(
      f"target {key}: ≥ {t['target']:.0f}×, measured {t['measured']:.2f}× — "
      f"{'met' if t['met'] else 'not met'} (needs {t['gflops_needed']:.0f} GFLOP/s)"
    )
  return out


def _training(r: dict) -> list[str]:
  s, m = r["summary"], r["models"]
  out = [
    f"{name}: {m[name]['train_samples_per_s']:,.0f} train samples/s, inference "
    f"{m[name]['infer_rtf']:.1f}× real time"
    for name in m
  ]
  out.append(
    f"like for like (ours as NAM standard / NAM): training {s['train_ratio']:.2f}× "
    f"(target ≥ 1.5×: {'met' if s['train_target_met'] else 'not met'}), inference "
    f"{s['infer_ratio']:.2f}× (target ≥ 1×: {'met' if s['infer_target_met'] else 'not met'})"
  )
  return out


def _accuracy(r: dict) -> list[str]:
  race = r["race"]
  hi, mid = race["nam"][-1], race["from_scratch"][-1]
  esr = lambda res, who, b: next(
    (s["esr"] for s in res.get(who, {}).get("scores", []) if abs(s["seconds"] - b) < 1e-6), None
  )
  out = [
    f"one run (seed {r['seed']}) at commit {r['commit']}: no intervals yet, so ratios "
    f"near 1 are not a verdict"
  ]
  for cap, res in r["results"].items():
    nam = esr(res, "nam", hi)
    ours = {w: esr(res, w, mid) for w in ("ours_nam_layout", "ours_paper", "ours_lstm")}
    best = min(((v, w) for w, v in ours.items() if v is not None), default=None)
    if nam and best:
      out.append(
        f"{cap}: NAM's recipe {nam:.4f} test ESR at {hi / 60:g} min; our best from "
        f"scratch {best[0]:.4f} at {mid / 60:g} min ({best[1]}, {best[0] / nam:.2f}× "
        f"NAM's ESR)"
      )
  for name, c in r["checks"].items():
    out.append(f"target {name}: {'met' if c['met'] else 'not met'}")
  return out


def _gpu_check(r: dict) -> list[str]:
  env, ts, tr = r["environment"], r["train_step"], r["train_run"]
  m, s = ts["models"], ts["summary"]
  device = ", ".join(sorted(set(env["jax_devices"])))
  return [
    f"{'smoke run on a CPU, not figures: ' if r.get('smoke') else ''}{env['jax_device_count']}"
    f" × {device}, commit {r['commit']}",
    f"paper-scale train step (batch {ts['batch']} × {ts['window']}): ours_paper_256 "
    f"({ts['paper_channels']} channels) {m['ours_paper_256']['train_samples_per_s']:,.0f} "
    f"samples/s, NAM's WaveNet {m['nam_standard']['train_samples_per_s']:,.0f} on "
    f"{m['nam_standard'].get('device', '?')}; ours as NAM standard / NAM "
    f"{s['train_ratio']:.2f}×",
    f"training run through the trainer on {tr['devices']} device(s): "
    f"{tr['steps_per_s']:.2f} steps/s ({tr['samples_per_s']:,.0f} samples/s), loss "
    f"{tr['loss_first']:.3f} → {tr['loss_last']:.3f} in {tr['steps']} steps",
  ]


HEADLINES = {
  "devices": _devices,
  "pipeline": _pipeline,
  "streaming": _streaming,
  "training": _training,
  "accuracy": _accuracy,
  "gpu_check": _gpu_check,
}


def summary_lines(summary: dict) -> list[str]:
  """The headline bullets, one block per benchmark (also written into the README)."""
  lines = []
  for name, e in summary["benchmarks"].items():
    if e["status"] in ("ok", "reused"):
      heads = HEADLINES[name](e["result"])
      lines.append(
        f"- **{TITLES[name]}**" + (f" (results of {e['generated']})" if e.get("generated") else "")
      )
      lines += [f"  - {h}" for h in heads]
    else:
      lines.append(f"- **{TITLES[name]}**: {e['status']} — {e.get('detail', '')}")
  return lines


def update_readme(summary: dict, path: str = README) -> None:
  """Replaces the README's text between its performance markers with the headline bullets."""
  begin, end = "<!-- performance:begin -->", "<!-- performance:end -->"
  body = ["<!-- Generated by `python benchmarks/run_all.py`; do not edit by hand. -->", ""]
  try:
    replace_between_markers(path, begin, end, "\n".join(body + summary_lines(summary)))
  except AmpSpaceError:
    return  # a README without the marker lines is left as it is


def markdown(summary: dict, for_docs: bool) -> str:
  m = summary["machine"]
  lines = []
  if for_docs:
    lines += [
      "# Performance",
      "",
      "<!-- Generated by `python benchmarks/run_all.py`; do not edit by hand. -->",
      "",
    ]
  lines += [
    f"{'Measured' if any(e.get('status') == 'ok' for e in summary['benchmarks'].values()) else 'Regenerated from earlier results (each section gives when it was measured)'}"
    f" {summary['date']} on {m['cpus']} CPU cores ({m['processor'] or m['machine']}), "
    f"Python {m['python']}; 1-minute load average at the end {m['load_avg_1m']:.1f}"
    f"{' (a shared machine: CPU-time figures are given where the benchmark records them)' if m['load_avg_1m'] > m['cpus'] else ''}."
    f"{' Quick (smoke) run: small sizes, not for quoting.' if summary['quick'] else ''}",
    "",
    "Rerun: `.venv/bin/python benchmarks/run_all.py` (all) or "
    "`--only NAME`; each benchmark's own command is in its file's docstring.",
    "",
  ]
  lines += ["## Summary", ""] + summary_lines(summary)
  for name, e in summary["benchmarks"].items():
    if e["status"] in ("ok", "reused") and e.get("md"):
      lines += [
        "",
        f"## {TITLES[name]}",
        "",
        f"`benchmarks/results/{name}.json`",
        "",
        e["md"].strip(),
      ]
      extra = os.path.join(RESULTS, f"{name}_ablation.md")  # benchmarks/accuracy_ablation.py
      if os.path.exists(extra):
        with open(extra) as f:
          lines += ["", "### Which change bought what", "", f.read().strip()]
  return "\n".join(lines) + "\n"


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--quick", action="store_true")
  p.add_argument("--only", default="", help="comma-separated subset of " + ",".join(BENCHMARKS))
  p.add_argument("--reuse", action="store_true", help="rerun nothing; summarise results/*.json")
  p.add_argument("--timeout", type=float, default=3600.0, help="seconds per benchmark")
  p.add_argument("--docs", default=DOC)
  args = p.parse_args()
  names = [n for n in args.only.split(",") if n] or [n for n in BENCHMARKS if n not in OPT_IN]
  unknown = sorted(set(names) - set(BENCHMARKS))
  if unknown:
    sys.exit(f"error: --only: unknown benchmark(s) {unknown}; known: {sorted(BENCHMARKS)}")
  benchmarks, made = {}, previous_dates()
  for name in BENCHMARKS:
    run = None if args.reuse or name not in names else run_benchmark(name, args.quick, args.timeout)
    benchmarks[name] = collect(name, run, made.get(name))
  for name in DEVICE_ONLY:
    benchmarks[name] = collect(name, None, made.get(name))
  summary = {
    "date": datetime.datetime.now().isoformat(timespec="seconds"),
    "quick": args.quick,
    "machine": {
      "cpus": os.cpu_count(),
      "machine": platform.machine(),
      "processor": platform.processor(),
      "python": platform.python_version(),
      "load_avg_1m": os.getloadavg()[0],
    },
    "benchmarks": benchmarks,
  }
  atomic_write(
    os.path.join(RESULTS, "summary.json"),
    json.dumps(
      {
        **summary,
        "benchmarks": {
          k: {kk: vv for kk, vv in v.items() if kk != "md"} for k, v in benchmarks.items()
        },
      },
      indent=1,
    )
    + "\n",
  )
  atomic_write(os.path.join(RESULTS, "summary.md"), markdown(summary, for_docs=False))
  if args.docs:
    atomic_write(args.docs, markdown(summary, for_docs=True))
    update_readme(summary)
  print(markdown(summary, for_docs=False))
  if any(e["status"] == "failed" for e in benchmarks.values()):
    sys.exit(1)


if __name__ == "__main__":
  main()
