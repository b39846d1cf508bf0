"""`python -m ampspace.train` killed at an arbitrary step (SIGTERM, SIGKILL) and restarted
reproduces the uninterrupted run's per-step losses exactly (subprocesses; slow)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from trainer_util import REPO, losses_by_step, read_log, train_command

STEPS = 30


def _command(data_dir: str, workdir: str) -> list[str]:
  return train_command(
    data_dir,
    workdir,
    **{"train.steps": STEPS, "train.async_checkpoints": True, "train.checkpoint_every": 4},
  )


def _run(cmd, **kwargs):
  return subprocess.Popen(
    cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
  )


def _kill_at(cmd, workdir: str, step: int, sig) -> int:
  """Starts training and sends `sig` once the log shows `step`; returns the process's code."""
  proc = _run(cmd)
  log = os.path.join(workdir, "train_log.jsonl")
  deadline = time.time() + 300
  while time.time() < deadline and proc.poll() is None:
    if os.path.exists(log) and any(r["step"] >= step for r in read_log(workdir)):
      proc.send_signal(sig)
      break
    time.sleep(0.05)
  out, err = proc.communicate(timeout=300)
  assert read_log(workdir)[-1]["step"] < STEPS, "the run finished before it was killed"
  return proc.returncode, out + err


@pytest.mark.slow
def test_killed_runs_resume_exactly(tiny_data_dir, tmp_path):
  ref_dir = str(tmp_path / "reference")
  ref = _run(_command(tiny_data_dir, ref_dir))
  _, err = ref.communicate(timeout=600)
  assert ref.returncode == 0, err[-3000:]
  reference = losses_by_step(ref_dir)
  assert sorted(reference) == list(range(1, STEPS + 1))

  for sig, step in ((signal.SIGTERM, 11), (signal.SIGKILL, 17)):
    workdir = str(tmp_path / sig.name)
    cmd = _command(tiny_data_dir, workdir)
    code, output = _kill_at(cmd, workdir, step, sig)
    if sig == signal.SIGTERM:  # preemption-friendly: saved a checkpoint where it stopped
      assert code == 143, output[-3000:]
      assert "SIGTERM: saved a checkpoint at step" in output
    else:
      assert code == -signal.SIGKILL
    resumed = _run(cmd)
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    assert "resumed from" in _ + err
    got = losses_by_step(workdir)  # the resumed run's records win for repeated steps
    assert sorted(got) == list(range(1, STEPS + 1))
    for s in range(1, STEPS + 1):
      assert got[s] == reference[s], f"{sig.name}: step {s} loss {got[s]} != {reference[s]}"
