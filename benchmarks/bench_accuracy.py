"""Accuracy per CPU-minute: our models against neural-amp-modeler's, one capture at a time.

  bash benchmarks/setup_nam_venv.sh             # once: .venv-nam with CPU torch + NAM
  .venv/bin/python benchmarks/bench_accuracy.py --pretrained=runs/sim_to_real_local/pretrain
  .venv/bin/python benchmarks/bench_accuracy.py --budgets=60,150,300   # a half-scale race

Writes benchmarks/results/accuracy.{json,md} and accuracy_esr_vs_time.png; `python
benchmarks/run_all.py --reuse` then puts its headline in docs/performance.md and the README
(`run_all.py --only accuracy` runs this first). A benchmark, not a test: every figure is
measured by this command, at the commit it names.

**Captures.** NAM-style pairs of devices from another implementation (Guitarix LV2 component
models; none is in the native zoo or shares code with our models), each at one setting:
rendered from generated DIs (karplus phrases, each followed by 0.4 s of silence so the DI's
silences can be scored), split by DI: `--train_dis` x `--di_seconds` of training DIs, 2 DIs
of validation (NAM's recipe selects its best epoch on them) and `--test_dis` test DIs. The
pairs are written once as 16-bit WAVs in NAM's layout (test DIs pinned with `split: test`) and
built with `amp_space/real`, so every contender sees the same samples.

**Contenders**, one at a time on the same cores, each on the same wall-clock budgets
(`--budgets`, seconds; the clock counts compilation, the input pipeline and validation, not
imports or the saving of a snapshot):
  - `nam`: NAM's standard WaveNet with NAM's own recipe (Lightning, Adam 4e-3, ExponentialLR,
    MSE + MR-STFT, best epoch by validation ESR), in `.venv-nam` (benchmarks/nam_recipe.py);
  - `ours_nam_layout`: our LayerArrayWaveNet in NAM's standard layout (configs/capture.py);
  - `ours_paper`: the paper's 256-way Wave2WaveNet (depth 20, 16 channels);
  - `ours_finetune`: the paper model fine-tuned from `--pretrained`, a checkpoint pretrained on
    the native zoo (its architecture; the pretraining time is not counted and is stated);
  - `ours_finetune_nam_layout`: the NAM-layout recipe fine-tuned from `--pretrained_nam_layout`,
    a NAM-layout checkpoint pretrained on the same zoo (`configs/sim_to_real_pretrain.py:
    runlocal,model=nam_layout`), its polarity matched to the capture first (FINETUNE_OVERRIDES);
    both fine-tuned models train benchmarks/capture_finetune_config.py (ampspace.fit's config);
  - `ours_lstm`: an LSTM of 1 x 24 units (the size GuitarML and NAM ship).

**Score**, by one evaluation for every model (NAM's snapshots are read through our `.nam`
import, which matches NAM's own package to 1e-5): pooled test ESR over whole test DIs, plain
(as NAM reports it) and pre-emphasised, and the level in the DI's silences: stretches of at
least 100 ms where the DI's 10 ms RMS stays below -60 dBFS and the target's has decayed below
it too, as RMS dBFS of the prediction next to the target's there.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shlex
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from ampspace.files import atomic_write  # noqa: E402
from ampspace.fit import build_dataset, pooled_esr  # noqa: E402  (one build, one pooled ESR)

SR = 44100
NAM_PYTHON = os.path.join(REPO, ".venv-nam", "bin", "python")
OUR_PYTHON = sys.executable
TAIL_SECONDS = 0.4  # silence after each DI: the ring-out, and the DC floor's stretches
SILENCE_DBFS = -60.0
SILENCE_FRAME = 441  # 10 ms
SILENCE_MIN_FRAMES = 10  # 100 ms
# 2: device.yaml gives each knob as its 0..10 dial position (1 wrote the plugin's own values,
# which the builder read as dials: gx_amp's gain of 12 dB became dial 10, its tone stack 0.05)
CAPTURE_FORMAT = 2


@dataclasses.dataclass(frozen=True)
class Capture:
  name: str
  device: str
  knobs: dict
  label: str


CAPTURES = {
  "gx_amp_clean": Capture(
    "gx_amp_clean", "gx_amp", {"gain": -6.0, "drive": 0.1}, "Guitarix amp, clean"
  ),
  "gx_amp_crunch": Capture(
    "gx_amp_crunch", "gx_amp", {"gain": 12.0, "drive": 0.5}, "Guitarix amp, crunch"
  ),
  "gx_bossds1": Capture("gx_bossds1", "gx_bossds1", {"drive": 0.6}, "Guitarix DS-1 (drive)"),
  "gx_fuzzface": Capture("gx_fuzzface", "gx_fuzzface", {"fuzz": 0.7}, "Guitarix Fuzz Face"),
}
CONTENDERS = (
  "nam",
  "ours_nam_layout",
  "ours_paper",
  "ours_finetune",
  "ours_finetune_nam_layout",
  "ours_lstm",
)
# The fine-tuned contenders, each with the flag that names its pretrained run.
FINETUNED = {"ours_finetune": "pretrained", "ours_finetune_nam_layout": "pretrained_nam_layout"}
LABELS = {
  "nam": "NAM standard WaveNet, NAM's recipe (PyTorch)",
  "ours_nam_layout": "ours, NAM-layout WaveNet",
  "ours_paper": "ours, paper 256-way",
  "ours_finetune": "ours, paper model fine-tuned from pretraining",
  "ours_finetune_nam_layout": "ours, NAM-layout WaveNet fine-tuned from pretraining",
  "ours_lstm": "ours, LSTM 1x24",
}
CONFIG_ARG = {
  "ours_nam_layout": "nam_layout",
  "ours_paper": "paper",
  "ours_finetune": "finetune",
  "ours_finetune_nam_layout": "nam_layout",
  "ours_lstm": "lstm",
}
# Fine-tuning the NAM-layout recipe: configs/capture.py:nam_layout from the pretrained run, its
# output inverted first where it anticorrelates with the capture (as configs/capture.py:finetune
# does for the paper model).
FINETUNE_OVERRIDES = {"ours_finetune_nam_layout": ("init_polarity=match",)}
FINETUNE_CONFIG = os.path.join(HERE, "capture_finetune_config.py")


def log(msg: str) -> None:
  print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- captures
def make_dis(n: int, seconds: float, seed: int) -> list[np.ndarray]:
  from ampspace.di import karplus

  tail = np.zeros(int(TAIL_SECONDS * SR))
  return [
    np.concatenate([karplus.phrase(seed + i, seconds), tail]).astype(np.float32) for i in range(n)
  ]


def dial_positions(device, settings: dict) -> dict:
  """Each knob's setting as the 0..10 dial position a guitarist writes in device.yaml (what a
  recording's conditioning reads; ampspace.capture writes Table 3's stand-ins the same way),
  from the plugin's own values (gx_amp's gain in dB, its tone stack in 0..1, ...)."""
  return {
    k.name: round(10.0 * k.normalise(settings[k.name]), 4)
    for k in device.knobs
    if k.maximum > k.minimum
  }


def write_capture(cap: Capture, root: str, dis: dict[str, list[np.ndarray]]) -> dict:
  """The capture folder (NAM layout, 16-bit) and NAM's concatenated train/validation pairs;
  written once (a finished folder has its capture.json); a folder of an older CAPTURE_FORMAT
  is written again."""
  import shutil

  import soundfile as sf
  import yaml

  from ampspace.devices import get_device

  done = os.path.join(root, "capture.json")
  if os.path.exists(done):
    with open(done) as f:
      summary = json.load(f)
    if summary.get("format") == CAPTURE_FORMAT:
      return summary
    shutil.rmtree(root)
  tmp = root + ".partial"
  shutil.rmtree(tmp, ignore_errors=True)
  device = get_device(cap.device)
  settings = {**{k.name: k.default for k in device.knobs}, **cap.knobs}
  dials = dial_positions(device, settings)
  outs = {
    part: [np.asarray(device.process(x, settings), np.float64) for x in xs]
    for part, xs in dis.items()
  }
  peak = max(float(np.max(np.abs(y))) for ys in outs.values() for y in ys)
  trim = 0.7 / max(peak, 1e-9)  # one trim for the session: the loudest take peaks at -3 dBFS
  os.makedirs(tmp)
  with open(os.path.join(tmp, "device.yaml"), "w") as f:
    yaml.safe_dump(
      {
        "device": cap.device,
        "device_type": device.device_type,
        "source": "real",
        "knobs": dials,
      },
      f,
    )
  for part, xs in dis.items():
    os.makedirs(os.path.join(tmp, part))
    with open(os.path.join(tmp, part, "capture.yaml"), "w") as f:
      yaml.safe_dump({"split": part}, f)
    for i, (x, y) in enumerate(zip(xs, outs[part])):
      folder = os.path.join(tmp, part, f"{part}_{i:02d}")
      os.makedirs(folder)
      sf.write(os.path.join(folder, "input.wav"), x, SR, subtype="PCM_16")
      sf.write(os.path.join(folder, "output.wav"), np.clip(trim * y, -1, 1), SR, subtype="PCM_16")
  nam_dir = os.path.join(tmp, "nam")
  os.makedirs(nam_dir)
  for part in ("train", "validation"):  # NAM's trainer reads one pair per split
    for kind in ("input", "output"):
      parts = [
        sf.read(os.path.join(tmp, part, f"{part}_{i:02d}", f"{kind}.wav"), dtype="float64")[0]
        for i in range(len(dis[part]))
      ]
      sf.write(
        os.path.join(nam_dir, f"{part}_{kind}.wav"),
        np.concatenate(parts),
        SR,
        subtype="PCM_16",
        format="WAV",
      )
  summary = {
    "format": CAPTURE_FORMAT,
    "capture": dataclasses.asdict(cap),
    "settings": settings,
    "dials": dials,
    "trim": trim,
    "seconds": {p: round(sum(len(x) for x in xs) / SR, 2) for p, xs in dis.items()},
  }
  with open(os.path.join(tmp, "capture.json"), "w") as f:
    json.dump(summary, f, indent=2)
  os.replace(tmp, root)
  return summary


# ---------------------------------------------------------------- contenders
def run_logged(cmd: list[str], log_path: str, threads: int) -> float:
  env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": REPO}
  env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=true").strip()
  t0 = time.time()
  with open(log_path, "w") as f:
    f.write("$ " + " ".join(shlex.quote(c) for c in cmd) + "\n")
    f.flush()
    proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=REPO, env=env)
  if proc.returncode:
    with open(log_path) as f:
      tail = f.read()[-2000:]
    raise RuntimeError(f"{cmd[:4]}... failed (rc {proc.returncode}); see {log_path}:\n{tail}")
  return time.time() - t0


def train_nam(capture_dir: str, workdir: str, budgets, seed: int, threads: int) -> dict:
  nam = os.path.join(capture_dir, "nam")
  cmd = [
    NAM_PYTHON,
    os.path.join(HERE, "nam_recipe.py"),
    "--train_x",
    os.path.join(nam, "train_input.wav"),
    "--train_y",
    os.path.join(nam, "train_output.wav"),
    "--val_x",
    os.path.join(nam, "validation_input.wav"),
    "--val_y",
    os.path.join(nam, "validation_output.wav"),
    "--budgets",
    ",".join(f"{b:g}" for b in budgets),
    "--out",
    workdir,
    "--seed",
    str(seed),
    "--threads",
    str(threads),
  ]
  os.makedirs(workdir, exist_ok=True)
  wall = run_logged(cmd, os.path.join(workdir, "run.log"), threads)
  with open(os.path.join(workdir, "nam_recipe.json")) as f:
    info = json.load(f)
  snaps = [
    {"seconds": float(b), "step": v["step"], "file": os.path.join(workdir, v["file"])}
    for b, v in info["budgets"].items()
  ]
  return {"wall_seconds": round(wall, 1), "snapshots": snaps, "info": info}


def train_ours(
  which: str,
  data_dir: str,
  workdir: str,
  budgets,
  seed: int,
  threads: int,
  pretrained: str | None,
  extra=(),
) -> dict:
  over = [  # the contender's own overrides first, so that an ablation's (`extra`) win
    *(f"--config.{o}" for o in FINETUNE_OVERRIDES.get(which, ())),
    *(f"--config.{o}" for o in extra),
    f"--config.dataset.data_dir={data_dir}",
    f"--config.seed={seed}",
    f"--config.train.max_seconds={max(budgets):g}",
    "--config.train.snapshot_seconds=(" + ",".join(f"{b:g}" for b in budgets) + ",)",
  ]
  config = f"configs/capture.py:{CONFIG_ARG[which]}"
  if which in FINETUNED:  # the recipe with the pretrained run's model and loss
    config = f"{FINETUNE_CONFIG}:{CONFIG_ARG[which]}@{os.path.abspath(pretrained)}"
  os.makedirs(os.path.dirname(workdir), exist_ok=True)
  cmd = [
    OUR_PYTHON,
    "-m",
    "ampspace.train",
    f"--config={config}",
    f"--workdir={workdir}",
    *over,
  ]
  wall = run_logged(cmd, os.path.join(os.path.dirname(workdir), which + ".log"), threads)
  with open(os.path.join(workdir, "snapshots.json")) as f:
    snaps = json.load(f)
  return {"wall_seconds": round(wall, 1), "snapshots": snaps}


# ---------------------------------------------------------------- evaluation
def test_clips(data_dir: str) -> list[dict]:
  from ampspace.data import pipeline, sources
  import ml_collections

  ds = ml_collections.ConfigDict(
    {
      "name": "amp_space/real",
      "data_dir": data_dir,
      "manual_dir": "",
      "build_if_missing": False,
      "filter": "",
    }
  )
  source = sources.open_split(ds, "test")
  return [
    {
      "di": pipeline.decode_audio(source[i], "di"),
      "target": pipeline.decode_audio(source[i], "output").astype(np.float64),
      "cond": pipeline.conditioning_of(source[i]),
      "clip_id": source[i]["clip_id"].decode(),
    }
    for i in range(len(source))
  ]


def frame_db(x: np.ndarray) -> np.ndarray:
  n = len(x) // SILENCE_FRAME
  f = np.asarray(x[: n * SILENCE_FRAME], np.float64).reshape(n, SILENCE_FRAME)
  return 10 * np.log10(np.mean(f**2, axis=1) + 1e-30)


def silence_mask(di: np.ndarray, target: np.ndarray) -> np.ndarray:
  """Samples in stretches of >= 100 ms where the DI's and the target's 10 ms RMS are both
  below -60 dBFS."""
  quiet = (frame_db(di) < SILENCE_DBFS) & (frame_db(target) < SILENCE_DBFS)
  keep = np.zeros_like(quiet)
  i = 0
  while i < len(quiet):
    if quiet[i]:
      j = i
      while j < len(quiet) and quiet[j]:
        j += 1
      if j - i >= SILENCE_MIN_FRAMES:
        keep[i:j] = True
      i = j
    else:
      i += 1
  mask = np.zeros(len(di), bool)
  mask[: len(keep) * SILENCE_FRAME] = np.repeat(keep, SILENCE_FRAME)
  return mask


def db(power: float) -> float:
  return float(10 * np.log10(max(power, 1e-12)))  # floor -120 dBFS (digital silence)


def score(predict, clips: list[dict]) -> dict:
  """Pooled ESR (ampspace.fit's, plain and pre-emphasised) and the levels in DI silence."""
  pairs, sil_pred, sil_tgt, sil_n = [], 0.0, 0.0, 0
  for c in clips:
    pred, t = predict(c).astype(np.float64), c["target"]
    pairs.append((t, pred))
    m = silence_mask(c["di"], t)
    sil_pred += float(np.sum(pred[m] ** 2))
    sil_tgt += float(np.sum(t[m] ** 2))
    sil_n += int(m.sum())
  esr, esr_pre = pooled_esr(pairs)
  return {
    "esr": esr,
    "esr_pre": esr_pre,
    "silence_seconds": round(sil_n / SR, 2),
    "silence_dbfs": db(sil_pred / max(sil_n, 1)) if sil_n else None,
    "target_silence_dbfs": db(sil_tgt / max(sil_n, 1)) if sil_n else None,
  }


def evaluate_snapshots(contender: str, run: dict, workdir: str, clips: list[dict]) -> list[dict]:
  from flax import nnx

  from ampspace import checkpoints, conditioning as cond
  from ampspace.runtime.inference import make_apply, run_clip

  out = []
  for snap in sorted(run["snapshots"], key=lambda s: s["seconds"]):
    if contender == "nam":
      from ampspace.nam_format import model_from_nam

      model = model_from_nam(snap["file"], cond.conditioning_dim())
      context, decode = model.context, "expected_value"
      graphdef, params = nnx.split(model)
    else:
      r = checkpoints.restore_model(workdir, step=snap["step"])
      graphdef, params, context = r.graphdef, r.params, r.context
      decode = r.config.loss.get("decode", "expected_value")
    apply = make_apply(graphdef, params, decode)
    metrics_ = score(lambda c: run_clip(apply, c["di"], c["cond"], context), clips)
    out.append({"seconds": snap["seconds"], "step": snap["step"], **metrics_})
  return out


# ---------------------------------------------------------------- report
def target_checks(results: dict, race: dict) -> dict:
  """The issue's targets as ratios: our best from scratch at its largest budget against NAM at
  its largest; the paper model against NAM at every budget both reached; the better fine-tuned
  model at its largest budget against NAM at its largest, on at least 2 captures; the DI
  silences."""
  hi, mid, lo = race["nam"][-1], race["from_scratch"][-1], race["finetune"][-1]
  budgets = sorted(set(race["nam"]) & set(race["from_scratch"]))
  at = lambda cap, who, b: next(
    (r["esr"] for r in results[cap].get(who, {}).get("scores", []) if abs(r["seconds"] - b) < 1e-6),
    None,
  )
  checks = {}
  caps = list(results)
  scratch = ("ours_nam_layout", "ours_paper", "ours_lstm")
  rows = []
  for cap in caps:
    nam_hi = at(cap, "nam", hi)
    best = min((at(cap, w, mid) for w in scratch if at(cap, w, mid) is not None), default=None)
    rows.append(
      {
        "capture": cap,
        "ours_best_mid": best,
        "nam_hi": nam_hi,
        "ratio": best / nam_hi if best and nam_hi else None,
      }
    )
  checks["best_from_scratch_at_mid_le_nam_at_max"] = {
    "rows": rows,
    "met": all(r["ratio"] is not None and r["ratio"] <= 1 for r in rows),
  }
  rows = []
  for cap in caps:
    ratios = [
      at(cap, "ours_paper", b) / at(cap, "nam", b)
      for b in budgets
      if at(cap, "ours_paper", b) and at(cap, "nam", b)
    ]
    rows.append({"capture": cap, "worst_ratio": max(ratios) if ratios else None})
  checks["paper_within_1.5x_of_nam_at_equal_time"] = {
    "rows": rows,
    "met": all(r["worst_ratio"] is not None and r["worst_ratio"] <= 1.5 for r in rows),
  }
  rows = []
  for cap in caps:
    tuned = [(at(cap, w, lo), w) for w in FINETUNED if at(cap, w, lo) is not None]
    ft, who = min(tuned, default=(None, None))
    nam_hi = at(cap, "nam", hi)
    rows.append(
      {
        "capture": cap,
        "finetuned": who,
        "finetune_at_min": ft,
        "nam_hi": nam_hi,
        "ratio": ft / nam_hi if ft and nam_hi else None,
      }
    )
  met = sum(1 for r in rows if r["ratio"] is not None and r["ratio"] <= 1)
  checks["finetune_at_min_le_nam_at_max_on_2_of_3"] = {"rows": rows, "met": met >= 2, "count": met}
  rows = []
  for cap in caps:
    for who, r in results[cap].items():
      for s in r.get("scores", []):
        if s["silence_dbfs"] is None:
          continue
        ok = s["silence_dbfs"] <= SILENCE_DBFS or s["silence_dbfs"] <= s["target_silence_dbfs"]
        rows.append(
          {
            "capture": cap,
            "contender": who,
            "seconds": s["seconds"],
            "silence_dbfs": s["silence_dbfs"],
            "ok": ok,
          }
        )
  checks["silence_le_-60_dbfs_or_target"] = {
    "rows": [r for r in rows if not r["ok"]],
    "met": bool(rows) and all(r["ok"] for r in rows),
  }
  if not rows:
    checks["silence_le_-60_dbfs_or_target"]["why"] = "no snapshot was scored"
  return checks


def markdown(report: dict) -> str:
  budgets = report["budgets"]
  mins = lambda b: f"{b:g} s" if b < 60 else f"{b / 60:g} min"
  lines = [
    f"Made by `{report['command']}` at commit {report['commit']} on {report['when']} "
    f"({report['machine']}, {report['threads']} threads; seed {report['seed']}).",
    "",
    "Pooled test ESR (plain, as NAM reports it; pre-emphasised in brackets) after each "
    "wall-clock budget; DI-silence level at the largest budget (target's level there).",
    "",
    "| capture | model | "
    + " | ".join(mins(b) for b in budgets)
    + " | steps | silence dBFS (target) |",
    "|---|---|" + "---:|" * len(budgets) + "---:|---:|",
  ]
  for cap, res in report["results"].items():
    for who in CONTENDERS:
      r = res.get(who)
      if not r:
        continue
      if "error" in r:
        lines.append(
          f"| {cap} | {LABELS[who]} | "
          + " | ".join("—" for _ in budgets)
          + f" | — | {r['error']} |"
        )
        continue
      cells = []
      for b in budgets:
        s = next((s for s in r["scores"] if abs(s["seconds"] - b) < 1e-6), None)
        cells.append(f"{s['esr']:.4f} ({s['esr_pre']:.3f})" if s else "—")
      last = r["scores"][-1]
      sil = (
        f"{last['silence_dbfs']:.1f} ({last['target_silence_dbfs']:.1f})"
        if last["silence_dbfs"] is not None
        else "—"
      )
      lines.append(
        f"| {cap} | {LABELS[who]} | " + " | ".join(cells) + f" | {last['step']} | {sil} |"
      )
  lines += ["", "Targets (ratios on this machine, same run):", ""]
  for name, c in report["checks"].items():
    lines.append(f"- `{name}`: {'met' if c['met'] else 'MISSED'}")
    for r in c["rows"]:
      lines.append(
        "  - "
        + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items())
      )
  for who, flag in FINETUNED.items():
    pre = report.get(flag)
    if pre:
      lines += [
        "",
        f"{LABELS[who]}: fine-tuning starts from `{pre['path']}` ({pre['note']}); that "
        "pretraining time is not counted.",
      ]
  return "\n".join(lines) + "\n"


def comparison(base: dict, report: dict) -> str:
  """Test ESR of the untagged run's cells against this run's, where both measured a cell: the
  ablation table (which change bought what)."""
  over = "; ".join(f"{w}: {', '.join(kv)}" for w, kv in report["overrides"].items()) or "none"
  lines = [
    f"Against `accuracy.json` ({base['command']}, commit {base['commit']}); overrides: {over}.",
    "",
    "| capture | model | budget | before | after | after / before |",
    "|---|---|---:|---:|---:|---:|",
  ]
  for cap, res in report["results"].items():
    for who, r in res.items():
      old = base["results"].get(cap, {}).get(who, {})
      for s in r.get("scores", []):
        b = next(
          (x for x in old.get("scores", []) if abs(x["seconds"] - s["seconds"]) < 1e-6), None
        )
        if b:
          lines.append(
            f"| {cap} | {LABELS[who]} | {s['seconds']:g} s | {b['esr']:.4f} | "
            f"{s['esr']:.4f} | {s['esr'] / b['esr']:.2f} |"
          )
  return "\n".join(lines) + "\n"


def plot_png(report: dict) -> bytes:
  import io

  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  caps = list(report["results"])
  fig, axes = plt.subplots(1, len(caps), figsize=(4.2 * len(caps), 3.6), squeeze=False)
  for ax, cap in zip(axes[0], caps):
    for who in CONTENDERS:
      r = report["results"][cap].get(who)
      if not r or "scores" not in r:
        continue
      ax.plot(
        [s["seconds"] / 60 for s in r["scores"]],
        [s["esr"] for s in r["scores"]],
        "o-",
        label=LABELS[who],
      )
    ax.set_yscale("log")
    ax.set_title(cap)
    ax.set_xlabel("training time (min, 2 cores)")
    ax.set_ylabel("test ESR")
    ax.grid(alpha=0.3, which="both")
  axes[0][0].legend(fontsize=7)
  fig.tight_layout()
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=110)
  plt.close(fig)
  return buf.getvalue()


# ---------------------------------------------------------------- main
def pretraining_note(workdir: str, note: str) -> str:
  """`note` and, where the run recorded it (the sim-to-real protocol's provenance.json), how
  long that pretraining took and when: measured, never typed into the note."""
  note = note or "see its config.json"
  try:
    with open(os.path.join(workdir, "provenance.json")) as f:
      made = json.load(f)
  except (OSError, json.JSONDecodeError):
    return note
  if not made.get("seconds"):
    return note
  return f"{note}; it took {made['seconds'] / 60:.1f} min on this machine ({made.get('made', '?')})"


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--captures", default="gx_amp_crunch,gx_bossds1,gx_fuzzface")
  ap.add_argument("--contenders", default=",".join(CONTENDERS))
  ap.add_argument("--budgets", default="120,300,600", help="NAM's snapshots, in seconds")
  ap.add_argument(
    "--scratch_budgets",
    default="120,300",
    help="our from-scratch models' snapshots (the targets race them at 5 min against NAM at 10)",
  )
  ap.add_argument("--finetune_budgets", default="60,120", help="the fine-tuned model's")
  ap.add_argument(
    "--pretrained",
    default="",
    help="workdir of a run pretrained on the native "
    "zoo (e.g. launch/sim_to_real.py's pretrain); without it no fine-tune row",
  )
  ap.add_argument("--pretrained_note", default="", help="how it was pretrained, for the table")
  ap.add_argument(
    "--pretrained_nam_layout",
    default="",
    help="workdir of a NAM-layout run pretrained on the native zoo (configs/"
    "sim_to_real_pretrain.py:runlocal,model=nam_layout); without it no such fine-tune row",
  )
  ap.add_argument("--pretrained_nam_layout_note", default="", help="how that one was pretrained")
  ap.add_argument("--train_dis", type=int, default=12)
  ap.add_argument("--test_dis", type=int, default=5)
  ap.add_argument("--di_seconds", type=float, default=5.0)
  ap.add_argument(
    "--override",
    action="append",
    default=[],
    help="CONTENDER:KEY=VALUE, a config override of one of our contenders (an "
    "ablation; repeatable), e.g. ours_nam_layout:model.input_mixin=True",
  )
  ap.add_argument(
    "--tag",
    default="",
    help="writes accuracy_TAG.{json,md,png} and compares "
    "with accuracy.json (the untagged run) where both have a cell",
  )
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
  ap.add_argument("--workdir", default=os.path.join(REPO, "runs", "bench_accuracy"))
  ap.add_argument("--results_dir", default=os.path.join(HERE, "results"))
  args = ap.parse_args()
  seconds = lambda text: sorted(float(b) for b in text.split(","))
  budgets = seconds(args.budgets)
  own_budgets = {"nam": budgets, **{w: seconds(args.finetune_budgets) for w in FINETUNED}}
  contenders = [c for c in args.contenders.split(",") if c]
  for c in contenders:
    if c not in CONTENDERS:
      raise SystemExit(f"--contenders: unknown {c!r}; known: {', '.join(CONTENDERS)}")
  if "nam" in contenders and not os.path.exists(NAM_PYTHON):
    raise SystemExit(f"{NAM_PYTHON} not found: run `bash benchmarks/setup_nam_venv.sh` first")
  for who, flag in FINETUNED.items():
    path = getattr(args, flag)
    if who in contenders and not os.path.isfile(os.path.join(path or "-", "config.json")):
      contenders.remove(who)
      log(
        f"--{flag}={path!r} is not a training workdir (pretrain one with "
        f"configs/sim_to_real_pretrain.py): the {who} row is left out"
      )
  overrides: dict[str, list[str]] = {}
  for o in args.override:
    who, _, kv = o.partition(":")
    if who not in CONTENDERS or who == "nam" or "=" not in kv:
      raise SystemExit(
        f"--override {o!r}: expected CONTENDER:KEY=VALUE for one of "
        f"{', '.join(c for c in CONTENDERS if c != 'nam')}"
      )
    overrides.setdefault(who, []).append(kv)
  captures = [CAPTURES[c] for c in args.captures.split(",")]
  commit = subprocess.run(
    ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
  ).stdout.strip()
  dirty = bool(
    subprocess.run(
      ["git", "status", "--porcelain", "--untracked-files=no"],
      capture_output=True,
      text=True,
      cwd=REPO,
    ).stdout.strip()
  )
  # Fresh runs every time: a table is measured by the code at this commit, never reused.
  run_root = os.path.join(args.workdir, time.strftime("%Y%m%d-%H%M%S"))
  dis = {
    "train": make_dis(args.train_dis, args.di_seconds, 1000),
    "validation": make_dis(2, args.di_seconds, 2000),
    "test": make_dis(args.test_dis, args.di_seconds, 3000),
  }
  results = {}
  for cap in captures:
    cap_root = os.path.join(args.workdir, "captures", cap.name)
    log(f"{cap.name}: capture")
    info = write_capture(cap, cap_root, dis)
    # one build per capture format: a capture written again is built again
    data_dir = os.path.join(args.workdir, "tfds", f"{cap.name}_v{CAPTURE_FORMAT}")
    build_dataset(cap_root, data_dir)  # ampspace.fit's: one way to build a capture
    clips = test_clips(data_dir)
    results[cap.name] = {"_capture": info}
    for who in contenders:
      wd = os.path.join(run_root, cap.name, who)
      log(f"{cap.name}: train {who}")
      try:
        if who == "nam":
          run = train_nam(cap_root, wd, budgets, args.seed, args.threads)
        else:
          run = train_ours(
            who,
            data_dir,
            wd,
            own_budgets.get(who, seconds(args.scratch_budgets)),
            args.seed,
            args.threads,
            getattr(args, FINETUNED[who]) if who in FINETUNED else None,
            overrides.get(who, ()),
          )
        scores = evaluate_snapshots(who, run, wd, clips)
      except RuntimeError as e:
        log(f"{cap.name}: {who} failed: {e}")
        results[cap.name][who] = {"error": str(e).splitlines()[0][:200]}
        continue
      results[cap.name][who] = {"wall_seconds": run["wall_seconds"], "scores": scores}
      log(
        f"{cap.name}: {who}: " + ", ".join(f"{s['seconds']:g}s ESR {s['esr']:.4f}" for s in scores)
      )
  captures_info = {c: r.pop("_capture") for c, r in results.items()}
  report = {
    "command": "python benchmarks/bench_accuracy.py " + " ".join(sys.argv[1:]),
    "commit": commit + ("+local changes" if dirty else ""),
    "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores",
    "threads": args.threads,
    "seed": args.seed,
    "budgets": sorted(
      set(budgets) | set(seconds(args.scratch_budgets)) | set(seconds(args.finetune_budgets))
    ),
    "race": {
      "nam": budgets,
      "from_scratch": seconds(args.scratch_budgets),
      "finetune": seconds(args.finetune_budgets),
    },
    "captures": captures_info,
    "results": results,
    **{
      flag: (
        {
          "path": getattr(args, flag),
          "note": pretraining_note(getattr(args, flag), getattr(args, flag + "_note")),
        }
        if who in contenders
        else None
      )
      for who, flag in FINETUNED.items()
    },
  }
  report["checks"] = target_checks(results, report["race"])
  report["overrides"] = overrides
  stem = "accuracy" + (f"_{args.tag}" if args.tag else "")
  text = markdown(report)
  base_path = os.path.join(args.results_dir, "accuracy.json")
  if args.tag and os.path.exists(base_path):
    with open(base_path) as f:
      text += "\n" + comparison(json.load(f), report)
  os.makedirs(args.results_dir, exist_ok=True)
  atomic_write(os.path.join(args.results_dir, f"{stem}.json"), json.dumps(report, indent=2))
  atomic_write(os.path.join(args.results_dir, f"{stem}.md"), text)
  atomic_write(os.path.join(args.results_dir, f"{stem}_esr_vs_time.png"), plot_png(report))
  print(markdown(report))


if __name__ == "__main__":
  main()
