"""benchmarks/gpu_check.py, the prepared accelerator check: its figures from a run's own files,
its report, the summary's "not run" when no GPU has run it, and (slow) the whole script on a
CPU with `--smoke`, NAM's PyTorch WaveNet included (needs .venv-nam)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest
from nam_venv import nam_python_or_skip

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(name: str):
  spec = importlib.util.spec_from_file_location(
    name, os.path.join(REPO, "benchmarks", f"{name}.py")
  )
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.fixture(scope="module")
def gpu_check():
  return _load("gpu_check")


@pytest.fixture(scope="module")
def run_all():
  return _load("run_all")


def _run_dir(tmp_path, snapshots, losses):
  run = tmp_path / "run"
  run.mkdir()
  (run / "snapshots.json").write_text(json.dumps(snapshots))
  (run / "train_log.jsonl").write_text(
    "".join(json.dumps({"step": 10 * (i + 1), "loss": v}) + "\n" for i, v in enumerate(losses))
  )
  return str(run)


def test_steps_per_second_leave_out_everything_before_the_first_snapshot(gpu_check, tmp_path):
  # 40 steps in the first 50 s (compilation), then 300 steps in the next 100 s: 3 steps/s.
  snaps = [
    {"seconds": 50.0, "step": 40, "elapsed": 50.2},
    {"seconds": 150.0, "step": 340, "elapsed": 150.2},
  ]
  run = _run_dir(tmp_path, snaps, [5.0, 7.0, 4.0, 3.0, 2.0, 2.5, 1.5, 2.5])
  f = gpu_check.train_run_figures(run, batch=64, window=8192)
  assert f["steps_per_s"] == pytest.approx(3.0)
  assert f["samples_per_s"] == pytest.approx(3.0 * 64 * 8192)
  # The loss is the mean over the first and last quarter of the log (two records each here).
  assert (f["loss_first"], f["loss_last"], f["steps"]) == (6.0, 2.0, 80)
  assert f["loss_steps"] == [[10, 20], [70, 80]]
  assert f["between_seconds"] == [50.0, 150.0]


def test_a_run_without_two_snapshots_is_an_error_naming_its_folder(gpu_check, tmp_path):
  run = _run_dir(tmp_path, [{"seconds": 20.0, "step": 5, "elapsed": 20.0}], [1.0])
  with pytest.raises(SystemExit, match=r"run: the run wrote 1 time snapshots"):
    gpu_check.train_run_figures(run, batch=2, window=2048)


def _result():
  model = lambda name, sps, device: {  # noqa: E731
    "framework": "x",
    "backend": "gpu",
    "device": device,
    "params": 1000,
    "train_samples_per_s": sps,
    "infer_rtf": 500.0,
  }
  return {
    "command": "python benchmarks/gpu_check.py --out=o",
    "commit": "abc",
    "date": "2026-11-28 15:00 UTC",
    "smoke": False,
    "environment": {
      "python": "3.12.3",
      "cpus": 16,
      "jax": "0.11.2",
      "jax_backend": "gpu",
      "jax_devices": ["NVIDIA H200"],
      "jax_device_count": 1,
      "torch": "2.11.0",
      "torch_device": "NVIDIA H200",
    },
    "train_step": {
      "batch": 64,
      "window": 8192,
      "paper_channels": 64,
      "models": {
        "ours_paper_256": model("ours_paper_256", 2.0e6, "NVIDIA H200"),
        "ours_nam_standard": model("ours_nam_standard", 9.0e6, "NVIDIA H200"),
        "nam_standard": model("nam_standard", 6.0e6, "NVIDIA H200"),
      },
      "summary": {"train_ratio": 1.5, "infer_ratio": 1.0, "paper_train_ratio": 1 / 3},
    },
    "train_run": {
      "command": "python -m ampspace.train --config=configs/wave2wavenet.py ...",
      "devices": 1,
      "budget_seconds": 150.0,
      "wall_seconds": 200.0,
      "steps": 400,
      "steps_per_s": 3.0,
      "samples_per_s": 3.0 * 64 * 8192,
      "between_seconds": [50.0, 150.0],
      "loss_steps": [[10, 100], [310, 400]],
      "loss_first": 30.0,
      "loss_last": 9.0,
    },
  }


def test_report_and_summary_give_the_device_and_every_figure(gpu_check, run_all):
  r = _result()
  md = gpu_check.markdown(r)
  assert "1 × NVIDIA H200 (gpu)" in md
  assert "| ours_paper_256 (64 channels) | x | NVIDIA H200 | 1000 | 2,000,000 | 500.0 |" in md
  assert "3.00 steps/s (1,572,864 samples/s)" in md
  assert "between the 50 s and 150 s snapshots" in md
  assert "mean loss 30.000 over steps 10–100, 9.000 over steps 310–400" in md
  heads = run_all.HEADLINES["gpu_check"](r)
  assert heads[0] == "1 × NVIDIA H200, commit abc"
  assert "ours_paper_256 (64 channels) 2,000,000 samples/s, NAM's WaveNet 6,000,000" in heads[1]
  assert "3.00 steps/s" in heads[2] and "30.000 → 9.000 in 400 steps" in heads[2]


def test_without_results_the_summary_says_the_check_was_not_run(run_all, tmp_path, monkeypatch):
  monkeypatch.setattr(run_all, "RESULTS", str(tmp_path))
  entry = run_all.collect("gpu_check", None)
  assert entry["status"] == "not run" and "needs an NVIDIA GPU" in entry["detail"]
  lines = run_all.summary_lines({"benchmarks": {"gpu_check": entry}})
  assert lines == [f"- **Accelerator check (NVIDIA GPU)**: not run — {entry['detail']}"]
  # With its results there, they are read like any benchmark's.
  (tmp_path / "gpu_check.json").write_text(json.dumps(_result()))
  (tmp_path / "gpu_check.md").write_text("report\n")
  entry = run_all.collect("gpu_check", None, made="2026-11-28T15:00:00")
  assert entry["status"] == "reused" and entry["result"]["commit"] == "abc"
  assert entry["generated"] == "2026-11-28T15:00:00"


def test_without_a_gpu_the_check_refuses_in_one_line(tmp_path):
  if os.environ.get("JAX_PLATFORMS", "cpu") not in ("", "cpu"):
    pytest.skip("JAX may see a GPU here")
  proc = subprocess.run(
    [sys.executable, os.path.join(REPO, "benchmarks", "gpu_check.py"), f"--out={tmp_path}"],
    capture_output=True,
    text=True,
    env={**os.environ, "JAX_PLATFORMS": "cpu"},
    timeout=120,
  )
  assert proc.returncode != 0
  assert proc.stderr.strip().splitlines()[-1] == (
    "JAX's backend is cpu, not gpu: this check needs an NVIDIA GPU (`--smoke` checks the "
    "script on a CPU)"
  )
  assert not os.path.exists(tmp_path / "gpu_check.json")


@pytest.mark.slow
def test_the_whole_check_runs_on_a_cpu_with_smoke_sizes(tmp_path):
  """Both steps for real at smoke sizes: bench_training with NAM's WaveNet (in .venv-nam) and a
  budgeted run through the trainer on amp_space/tiny; about two minutes."""
  python = nam_python_or_skip()
  out = tmp_path / "out"
  proc = subprocess.run(
    [
      sys.executable,
      os.path.join(REPO, "benchmarks", "gpu_check.py"),
      "--smoke",
      f"--out={out}",
      f"--work={tmp_path / 'work'}",
      f"--nam_python={python}",
    ],
    capture_output=True,
    text=True,
    env={**os.environ, "JAX_PLATFORMS": "cpu"},
    timeout=600,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  r = json.loads((out / "gpu_check.json").read_text())
  assert r["smoke"] and r["environment"]["jax_backend"] == "cpu"
  models = r["train_step"]["models"]
  assert set(models) == {"ours_paper_256", "ours_nam_standard", "nam_standard"}
  assert all(m["train_samples_per_s"] > 0 and m["infer_rtf"] > 0 for m in models.values())
  assert models["nam_standard"]["framework"].startswith("torch")
  tr = r["train_run"]
  assert tr["steps"] > 0 and tr["steps_per_s"] > 0 and math.isfinite(tr["loss_last"])
  assert tr["loss_last"] < tr["loss_first"], "the training run's loss did not fall"
  assert sorted(p.name for p in out.iterdir()) == [
    "bench_training.log",
    "gpu_check.json",
    "gpu_check.md",
    "train_run.log",
    "train_step",
  ]
