"""Table 3 over the workers of a TPU VM pod slice: `python -m launch.launcher tpu_sweep` and
the protocol's `--stage=worker`.

Fast: which worker trains which cell; the launcher's commands (one ssh per worker, the
stage and index given to each); a worker that fails stops the others' waiting; bad input.
Slow: the whole sweep at the tiny scale of tests/test_sim_to_real.py on three workers, each a
local process started by tests/fake_tpu_vm.py's `gcloud`; then one cell is deleted, as an
interrupted sweep would leave it, and the same command trains that cell alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

import fake_tpu_vm
from ampspace import launcher
from ampspace.errors import AmpSpaceError
from ampspace.experiments import sim_to_real as s2r
from test_sim_to_real import TINY
from test_slurm_sweep import tiny_protocol_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_worker_assignment_keeps_worker_0_free_for_the_pretraining(tmp_path):
  p = s2r.Protocol(workdir=str(tmp_path), **TINY)
  keys = s2r.cell_keys(p)  # 4 from scratch, then 2 fine-tuned and the zero-shot row
  assert s2r.worker_assignment(p, 3) == [[4], [0, 2, 5], [1, 3, 6]]
  assert s2r.worker_assignment(p, 1) == [list(range(len(keys)))]
  for n in (2, 3, 5, 9):
    cells = sorted(i for w in s2r.worker_assignment(p, n) for i in w)
    assert cells == list(range(len(keys)))  # every cell once
    assert all(keys[i].needs_pretraining for i in s2r.worker_assignment(p, n)[0])
  with pytest.raises(AmpSpaceError, match="--workers=0"):
    s2r.worker_assignment(p, 0)


def test_a_failed_worker_stops_the_others_waiting(tmp_path):
  p = s2r.Protocol(workdir=str(tmp_path), **TINY)
  since = time.time()
  failed = tmp_path / s2r.WORKER_FAILED_FILE
  # a failure recorded before this worker started is an earlier run's: it keeps waiting
  s2r.write_json(str(failed), {"worker": 0, "stage": "data", "error": "old", "time": since - 5})
  with pytest.raises(
    AmpSpaceError, match=r"waited [0-9.e-]+ h for the data in .*every worker running"
  ):
    s2r.wait_until(p, lambda: False, "the data", since, timeout=0.3, poll=0.05)
  s2r.write_json(
    str(failed), {"worker": 0, "stage": "pretrain", "error": "boom", "time": time.time()}
  )
  with pytest.raises(s2r.OtherWorkerFailed, match=r"worker 0 failed \(pretrain: boom\)"):
    s2r.wait_until(p, lambda: False, "the pretraining", since, timeout=60, poll=0.05)
  s2r.wait_until(p, lambda: True, "nothing", since, timeout=0)  # ready: no wait, no error


def test_a_worker_records_its_own_failure(tmp_path):
  p = s2r.Protocol(workdir=str(tmp_path / "w"), **{**TINY, "overrides": ("model.nope=1",)})
  with pytest.raises(AmpSpaceError):
    s2r.run_worker(p, 1, 3, timeout=1, poll=0.05)
  record = json.loads((tmp_path / "w" / s2r.WORKER_FAILED_FILE).read_text())
  assert (record["worker"], record["stage"]) == (1, "data") and "model.nope" in record["error"]
  with pytest.raises(AmpSpaceError, match=r"--worker=3: the pod slice has workers 0..2"):
    s2r.run_worker(p, 3, 3)


def test_tpu_sweep_commands(tmp_path, capsys):
  protocol = tiny_protocol_file(tmp_path)
  argv = [
    "tpu_sweep",
    "--tpu=pod",
    "--zone=us-central2-b",
    "--workers=2",
    "--setup=bash launch/setup.sh",
    "--host_env=A=1",
    "--dry_run",
    "--",
    "--workdir=/mnt/shared/s2r",
    f"--protocol={protocol}",
  ]
  assert launcher.main(argv) == 0
  lines = capsys.readouterr().out.splitlines()
  ssh = "gcloud compute tpus tpu-vm ssh pod --zone=us-central2-b"
  assert lines[0] == f"{ssh} --worker=all --command='cd ~/amp-space && bash launch/setup.sh'"
  for i in (0, 1):
    assert lines[1 + i] == (
      f"{ssh} --worker={i} --command='cd ~/amp-space && A=1 python3 -m launch.sim_to_real "
      f"--workdir=/mnt/shared/s2r --protocol={protocol} --stage=worker --worker={i} "
      "--num_workers=2' &"
    )
  assert lines[3] == "wait"
  assert not os.path.exists("/mnt/shared/s2r")


@pytest.mark.parametrize(
  "argv, message",
  [
    (["tpu_sweep", "--tpu=p", "--zone=z", "--", "--workdir=/w"], "--workers=0"),
    (["tpu_sweep", "--zone=z", "--workers=2", "--", "--workdir=/w"], "tpu_sweep needs --tpu"),
    (["tpu_sweep", "--tpu=p", "--zone=z", "--workers=2", "--", "--workdir=gs://b/w"], "mounts"),
    (
      ["tpu_sweep", "--tpu=p", "--zone=z", "--workers=2", "--", "--workdir=/w", "--stage=cell"],
      "--stage=cell: the launcher gives",
    ),
    (["tpu_sweep", "--tpu=p", "--zone=z", "--workers=2", "--"], "need --workdir"),
  ],
)
def test_tpu_sweep_bad_input_is_one_line(argv, message, capsys):
  assert launcher.main(argv[:1] + ["--dry_run"] + argv[1:]) == 2
  err = capsys.readouterr().err.strip()
  assert message in err and len(err.splitlines()) == 1, err


@pytest.mark.slow
def test_sweep_runs_on_three_emulated_workers_then_resumes_one_lost_cell(tmp_path):
  state, work = tmp_path / "tpu_state", tmp_path / "w"
  env = fake_tpu_vm.install(str(tmp_path / "bin"), str(state), workers=3)
  argv = [
    sys.executable,
    "-m",
    "launch.launcher",
    "tpu_sweep",
    "--tpu=pod",
    "--zone=z",
    "--workers=3",
    f"--repo={REPO}",
    f"--python={sys.executable}",
    "--",
    f"--workdir={work}",
    f"--protocol={tiny_protocol_file(tmp_path)}",
    "--poll_seconds=1",
  ]
  out = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)
  assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
  calls = fake_tpu_vm.calls(str(state))
  assert sorted(c["opts"]["worker"] for c in calls) == ["0", "1", "2"]
  assert all(c["verb"] == "ssh" and c["codes"] == [0] for c in calls)
  p = s2r.Protocol(workdir=str(work), **TINY)
  keys = s2r.cell_keys(p)
  for worker, cells in enumerate(s2r.worker_assignment(p, 3)):
    for i in cells:
      assert (
        f"worker {worker}: worker {worker}: cell {i}: {keys[i].label()} (trained)" in out.stdout
      )
  manifest = json.load(open(work / "results" / "protocol.json"))
  assert [i["stage"] for i in manifest["invocations"]] == ["worker x3"]
  assert len(manifest["cells"]) == len(keys)
  # the same quality bar as the single-process run: every trained cell beats silence
  for k in keys:
    if k.model != s2r.ZERO_SHOT:
      path = os.path.join(
        s2r.Paths(p.workdir).run(k.target, k.gains, k.model, k.seed), s2r.CELL_FILE
      )
      groups = json.load(open(path))["groups"]
      assert all(0 < g["esr"] < 1.0 for g in groups.values()), (k, groups)

  # An interrupted sweep: worker 2's cell 1 lost. The same command trains it alone.
  lost = os.path.join(
    s2r.Paths(p.workdir).run(keys[1].target, keys[1].gains, keys[1].model, keys[1].seed)
  )
  shutil.rmtree(lost)
  again = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)
  assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
  assert again.stdout.count("(trained)") == 1
  assert f"worker 2: worker 2: cell 1: {keys[1].label()} (trained)" in again.stdout
  assert again.stdout.count("(reused)") == len(keys) - 1
  manifest = json.load(open(work / "results" / "protocol.json"))
  assert [i["stage"] for i in manifest["invocations"]] == ["worker x3", "worker x3"]
