"""The accelerator check: one short, prepared run for a machine with an NVIDIA GPU.

It measures, on whatever accelerator JAX and PyTorch see:

1. the train step at paper scale: the paper's Wave2WaveNet (depth 20, 64 channels, 256-way,
   class-weighted squared EMD) and our NAM-layout WaveNet beside NAM's own PyTorch WaveNet on
   the same GPU, at the paper's batch of 64 x 8192 (benchmarks/bench_training.py, samples/s
   and inference real-time factor);
2. a short training run through the real trainer (`python -m ampspace.train`, the paper-scale
   config configs/wave2wavenet.py on the embedded `amp_space/tiny` data), data-parallel over
   every device present, for a fixed wall-clock budget: steps/s after compilation (from the
   run's own time snapshots), the loss at the start and the end, and the devices.

On the GPU machine (its image holds JAX with CUDA, PyTorch with CUDA and Flax; what else it
lacks travels as wheels, see benchmarks/gpu_check.sh):

  bash benchmarks/gpu_wheels.sh            # here, where PyPI is reachable: .whl/
  bash benchmarks/gpu_check.sh OUT         # there: installs .whl/ if present, then this script

Then, here: copy OUT/gpu_check.{json,md} into benchmarks/results/ and run
`python benchmarks/run_all.py --reuse`, which puts them in docs/performance.md (which says
"not run" while they are absent). OUT also holds both steps' logs and bench_training's own
files (train_step/).

`--smoke` checks the script itself on a CPU in about two minutes (small sizes, not figures):

  .venv/bin/python benchmarks/gpu_check.py --smoke --out=/tmp/gpu_smoke
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def run_logged(cmd: list[str], log_path: str, env: dict, timeout: float) -> float:
  """Runs `cmd` from the repository root with its output in `log_path`; returns seconds. A
  failure or a run past `timeout` stops the check with the command and its log's end."""
  print("[gpu_check] " + " ".join(cmd), file=sys.stderr, flush=True)
  t = time.perf_counter()
  with open(log_path, "w") as log:
    try:
      rc = subprocess.run(
        cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout
      ).returncode
    except subprocess.TimeoutExpired:
      rc = f"ran past {timeout:.0f} s"
  with open(log_path) as f:
    tail = f.read().strip().splitlines()[-8:]
  print("\n".join(tail), file=sys.stderr, flush=True)
  if rc:
    raise SystemExit(
      f"{' '.join(cmd[:3])} failed ({rc if isinstance(rc, str) else f'exit {rc}'}); the end of {log_path}:\n"
      + "\n".join(tail)
    )
  return time.perf_counter() - t


def environment() -> dict:
  """What this machine is: JAX's devices, PyTorch's CUDA device, versions."""
  import jax

  env = {
    "host": platform.node(),
    "python": platform.python_version(),
    "cpus": os.cpu_count(),
    "jax": jax.__version__,
    "jax_backend": jax.default_backend(),
    "jax_devices": [str(d.device_kind) for d in jax.devices()],
    "jax_device_count": jax.device_count(),
  }
  try:
    import torch

    env["torch"] = torch.__version__
    env["torch_cuda"] = torch.cuda.is_available()
    env["torch_device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
  except ImportError:
    env["torch"] = None
  return env


def train_run_figures(workdir: str, batch: int, window: int) -> dict:
  """Steps/s of a budgeted run from its time snapshots (`snapshots.json`: the step reached at
  each budget), so compilation and the first steps are left out, plus the logged losses."""
  with open(os.path.join(workdir, "snapshots.json")) as f:
    snaps = json.load(f)
  with open(os.path.join(workdir, "train_log.jsonl")) as f:
    log = [json.loads(line) for line in f if line.strip()]
  if len(snaps) < 2 or not log:
    raise SystemExit(
      f"{workdir}: the run wrote {len(snaps)} time snapshots and {len(log)} log lines"
    )
  first, last = snaps[0], snaps[-1]
  seconds = last["elapsed"] - first["elapsed"]
  steps_per_s = (last["step"] - first["step"]) / seconds if seconds > 0 else float("nan")
  # One batch's loss is noisy: the mean over the first and the last quarter of the records.
  q = max(1, len(log) // 4)
  mean = lambda records: sum(r["loss"] for r in records) / len(records)  # noqa: E731
  return {
    "snapshots": snaps,
    "steps": log[-1]["step"],
    "steps_per_s": steps_per_s,
    "samples_per_s": steps_per_s * batch * window,
    "between_seconds": [first["seconds"], last["seconds"]],
    "loss_steps": [[log[0]["step"], log[q - 1]["step"]], [log[-q]["step"], log[-1]["step"]]],
    "loss_first": mean(log[:q]),
    "loss_last": mean(log[-q:]),
  }


def _span(steps) -> str:
  return f"{steps[0]}–{steps[1]}" if steps[0] != steps[1] else f"{steps[0]}"


def markdown(result: dict) -> str:
  env, ts, tr = result["environment"], result["train_step"], result["train_run"]
  m, s = ts["models"], ts["summary"]
  lines = [
    f"Made by `{result['command']}` at commit {result['commit']} on {result['date']}.",
    "",
    f"Machine: JAX {env['jax']} on {env['jax_device_count']} × {', '.join(sorted(set(env['jax_devices'])))}"
    f" ({env['jax_backend']}); "
    + (
      f"PyTorch {env['torch']} on {env['torch_device']}; "
      if env.get("torch")
      else "no PyTorch in this Python (NAM ran in --nam_python); "
    )
    + f"Python {env['python']}, {env['cpus']} CPUs.",
    "",
    f"**Train step** (batch {ts['batch']} × {ts['window']}; `benchmarks/bench_training.py`, "
    "medians of alternated rounds):",
    "",
    "| model | framework | device | params | train samples/s | inference RTF |",
    "|---|---|---|---:|---:|---:|",
  ]
  for name in ("ours_paper_256", "ours_nam_standard", "nam_standard"):
    r = m[name]
    label = f"{name} ({ts['paper_channels']} channels)" if name == "ours_paper_256" else name
    lines.append(
      f"| {label} | {r['framework']} | {r.get('device', r['backend'])} | {r['params']} | "
      f"{r['train_samples_per_s']:,.0f} | {r['infer_rtf']:.1f} |"
    )
  lines += [
    "",
    f"Ours as NAM standard / NAM: training {s['train_ratio']:.2f}×, inference "
    f"{s['infer_ratio']:.2f}×; paper model / NAM: training {s['paper_train_ratio']:.2f}×.",
    "",
    f"**Training run** (`{tr['command']}`): {tr['devices']} device(s), data-parallel, "
    f"{tr['steps']} steps in {tr['budget_seconds']:g} s of training; "
    f"{tr['steps_per_s']:.2f} steps/s ({tr['samples_per_s']:,.0f} samples/s) between the "
    f"{tr['between_seconds'][0]:.0f} s and {tr['between_seconds'][1]:.0f} s snapshots; mean "
    f"loss {tr['loss_first']:.3f} over steps {_span(tr['loss_steps'][0])}, "
    f"{tr['loss_last']:.3f} over steps {_span(tr['loss_steps'][1])}. "
    f"Whole run, data build and compilation included: {tr['wall_seconds']:.0f} s.",
  ]
  return "\n".join(lines) + "\n"


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--out", required=True, help="folder for gpu_check.{json,md} and the logs")
  p.add_argument("--seconds", type=float, default=150.0, help="the training run's budget")
  p.add_argument("--batch", type=int, default=64, help="paper scale: 64 x 8192")
  p.add_argument("--window", type=int, default=8192)
  p.add_argument(
    "--nam_python", default=sys.executable, help="the Python with torch and NAM (default: this)"
  )
  p.add_argument("--work", default="", help="scratch folder for the run (default: a new temp)")
  p.add_argument("--timeout", type=float, default=480.0, help="seconds per step of the check")
  p.add_argument("--smoke", action="store_true", help="a CPU check of the script: small sizes")
  args = p.parse_args()
  sys.path.insert(0, REPO)
  from ampspace.files import atomic_write

  smoke = args.smoke
  out = os.path.abspath(args.out)
  os.makedirs(out, exist_ok=True)
  # The run and its data stay outside OUT, which holds only what is worth bringing back.
  work = os.path.abspath(args.work) if args.work else tempfile.mkdtemp(prefix="gpu_check_")
  os.makedirs(work, exist_ok=True)
  # Each process takes the GPU memory it needs rather than 75 % up front, so JAX and PyTorch
  # can share the device; no downloads (the tiny dataset is rendered here).
  env = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH", "")])),
    "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
    "PYTHONUNBUFFERED": "1",
  }
  os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"  # this process looks at JAX's devices too
  env_info = environment()
  print(f"[gpu_check] {json.dumps(env_info)}", file=sys.stderr, flush=True)
  if not smoke and env_info["jax_backend"] != "gpu":
    raise SystemExit(
      f"JAX's backend is {env_info['jax_backend']}, not gpu: this check needs an NVIDIA GPU "
      "(`--smoke` checks the script on a CPU)"
    )

  # 1. The train step, paper scale, beside NAM's WaveNet on the same device.
  bench = [
    sys.executable,
    os.path.join(HERE, "bench_training.py"),
    f"--out={os.path.join(out, 'train_step')}",
    f"--nam-python={args.nam_python}",
    "--device=" + ("cpu" if smoke else "cuda"),
    "--paper-channels=" + ("16" if smoke else "64"),
  ]
  bench += ["--quick"] if smoke else [f"--batch={args.batch}", f"--window={args.window}"]
  bench += [] if smoke else ["--threads=4", "--steps=10", "--repeats=2"]
  run_logged(bench, os.path.join(out, "bench_training.log"), env, args.timeout)
  with open(os.path.join(out, "train_step", "training.json")) as f:
    train_step = json.load(f)

  # 2. A short paper-scale run through the real trainer, over every device present.
  seconds = 45.0 if smoke else args.seconds
  snaps = (seconds / 3, seconds)
  run_dir = os.path.join(work, "run")
  batch, window = (2, 2048) if smoke else (args.batch, args.window)
  train = [
    sys.executable,
    "-m",
    "ampspace.train",
    "--config=configs/wave2wavenet.py" + (":runlocal" if smoke else ""),
    f"--workdir={run_dir}",
    "--config.dataset.name=amp_space/tiny",
    "--config.dataset.build_if_missing=True",
    f"--config.dataset.data_dir={os.path.join(work, 'tfds')}",
    f"--config.input.batch_size={batch}",
    f"--config.input.window={window}",
    "--config.train.steps=1000000",
    f"--config.train.max_seconds={seconds:g}",
    "--config.train.snapshot_seconds=(" + ",".join(f"{s:g}" for s in snaps) + ",)",
    "--config.train.log_every=" + ("1" if smoke else "10"),
    "--config.train.eval_every=1000000",
    "--config.train.checkpoint_every=1000000",
    "--config.eval.at_end=False",
  ]
  wall = run_logged(train, os.path.join(out, "train_run.log"), env, args.timeout)
  figures = train_run_figures(run_dir, batch, window)
  result = {
    "command": "python benchmarks/gpu_check.py " + " ".join(sys.argv[1:]),
    "commit": subprocess.run(
      ["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    or "unknown",
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "smoke": smoke,
    "environment": env_info,
    "train_step": {
      k: train_step[k] for k in ("batch", "window", "paper_channels", "models", "summary")
    },
    "train_run": {
      "command": "python -m ampspace.train " + " ".join(train[3:5]) + " ...",
      "devices": env_info["jax_device_count"],
      "batch": batch,
      "window": window,
      "budget_seconds": seconds,
      "wall_seconds": wall,
      **figures,
    },
  }
  atomic_write(os.path.join(out, "gpu_check.json"), json.dumps(result, indent=1) + "\n")
  atomic_write(os.path.join(out, "gpu_check.md"), markdown(result))
  print(markdown(result))


if __name__ == "__main__":
  main()
