"""ampspace/launcher.py (`python -m launch.launcher`): the exact commands of every backend,
Slurm's layout as JAX detects it, and real two-process CPU training runs: through the local
backend, and through the Slurm backend's own sbatch script on two emulated nodes
(tests/fake_slurm.py's sbatch and srun; the processes learn their layout only from the
SLURM_* variables). The TPU-VM backend's default (`--distributed` on every worker, JAX's own
TPU detection) is checked by its commands only, as that detection needs TPU hardware; with
`--workers=N` it trains for real on two emulated workers (tests/fake_tpu_vm.py's gcloud)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import fake_slurm
import fake_tpu_vm
from ampspace import launcher

TRAIN = ["--config=configs/wave2wavenet.py:runlocal", "--workdir=runs/x"]


def commands(*argv):
  return launcher.plan(list(argv))[2]


def test_local_dry_run_exact_commands_cpu():
  cmds = commands(
    "local",
    "--num_processes=3",
    "--port=23456",
    "--devices_per_process=2",
    "--python=python",
    "--",
    *TRAIN,
  )
  env = "JAX_PLATFORMS=cpu XLA_FLAGS=--xla_force_host_platform_device_count=2"
  assert cmds == [
    f"{env} python -m ampspace.train {' '.join(TRAIN)} --coordinator_address=localhost:23456 "
    f"--num_processes=3 --process_id={i} &"
    for i in range(3)
  ] + ["wait"]


def test_local_dry_run_gpus_and_single_process():
  cmds = commands(
    "local", "--num_processes=2", "--gpus_per_process=2", "--python=python", "--", *TRAIN
  )
  assert cmds[0].startswith("CUDA_VISIBLE_DEVICES=0,1 python -m ampspace.train ")
  assert cmds[1].startswith("CUDA_VISIBLE_DEVICES=2,3 python -m ampspace.train ")
  assert "--process_id=1 &" in cmds[1]
  # One process needs no coordinator at all.
  (single,) = commands("local", "--num_processes=1", "--python=python", "--", *TRAIN)
  assert "--coordinator_address" not in single and "--process_id" not in single


def test_main_dry_run_prints_commands(capsys):
  assert (
    launcher.main(["local", "--num_processes=2", "--python=py", "--dry_run", "--", *TRAIN]) == 0
  )
  out = capsys.readouterr().out.splitlines()
  assert out[-1] == "wait" and out[1].endswith("--process_id=1 &")


def test_slurm_script_and_submit_command(capsys):
  argv = [
    "slurm",
    "--nodes=2",
    "--gpus_per_node=4",
    "--cpus_per_task=6",
    "--time=02:00:00",
    "--partition=gpu",
    "--account=lab",
    "--repo=/home/me/amp space",
    "--dry_run",
    "--",
    "--config=configs/wave2wavenet.py",
    "--workdir=/shared/w2w",
    "--config.train.steps=10",
  ]
  assert launcher.main(argv) == 0
  out = capsys.readouterr().out
  assert (
    out
    == """# /shared/w2w/launch.sbatch
#!/bin/bash
#SBATCH --job-name=ampspace
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=6
#SBATCH --time=02:00:00
#SBATCH --output=/shared/w2w/slurm-%j.out
#SBATCH --partition=gpu
#SBATCH --account=lab
set -euo pipefail
cd '/home/me/amp space'
srun --kill-on-bad-exit=1 python -m ampspace.train --config=configs/wave2wavenet.py \
--workdir=/shared/w2w --config.train.steps=10 --distributed
# submit with:
sbatch /shared/w2w/launch.sbatch
""".replace("\\\n", "")
  )


def test_slurm_layout_as_jax_detects_it(monkeypatch):
  """The script's one-task-per-GPU layout: JAX's Slurm detection gives each task its global
  rank, the world size, the first node as coordinator and the GPU of its local id."""
  from jax._src import clusters

  env = {
    "SLURM_JOB_ID": "4242",
    "SLURM_STEP_NODELIST": "gpu[017-018]",
    "SLURM_NTASKS": "8",
    "SLURM_PROCID": "5",
    "SLURM_LOCALID": "1",
    "SLURM_STEP_NUM_NODES": "2",
  }
  for k, v in env.items():
    monkeypatch.setenv(k, v)
  slurm = clusters.SlurmCluster
  assert slurm.is_env_present()
  assert slurm.get_process_count() == 8 and slurm.get_process_id() == 5
  assert slurm.get_local_process_id() == 1
  assert slurm.get_coordinator_address(None, None).startswith("gpu017:")


def test_a_bucket_workdir_keeps_slurm_files_local(capsys):
  """--workdir=gs://...: the trainer writes there, but sbatch's script and log are local files,
  and a Table 3 sweep (cells on the cluster's shared filesystem) refuses the URL."""
  argv = ["slurm", "--dry_run", "--", "--config=configs/wave2wavenet.py", "--workdir=gs://b/w2w"]
  assert launcher.main(argv) == 0
  out = capsys.readouterr().out
  assert out.startswith("# launch.sbatch\n") and "#SBATCH --output=slurm-%j.out\n" in out
  assert "--workdir=gs://b/w2w --distributed" in out and "sbatch launch.sbatch" in out
  sweep = ["slurm_sweep", "--dry_run", "--", "--scale=runlocal", "--workdir=gs://b/s2r"]
  assert launcher.main(sweep) == 2
  assert "shared filesystem" in capsys.readouterr().err


def test_tpu_vm_commands_run_the_trainer_on_every_worker():
  cmds = commands(
    "tpu_vm",
    "--tpu=pod",
    "--zone=us-central2-b",
    "--project=p",
    "--create",
    "--accelerator_type=v4-32",
    "--setup=bash launch/setup.sh",
    "--",
    *TRAIN,
    "--config.dataset.filter=gain=5;source=real",
  )
  ssh = "gcloud compute tpus tpu-vm ssh pod --zone=us-central2-b --project=p --worker=all"
  assert cmds[0] == (
    "gcloud compute tpus tpu-vm create pod --zone=us-central2-b --project=p "
    "--accelerator-type=v4-32 --version=tpu-ubuntu2204-base"
  )
  assert cmds[1] == f"{ssh} --command='cd ~/amp-space && bash launch/setup.sh'"
  assert cmds[2].startswith(f"{ssh} --command=")
  # What a worker's shell runs: the repo, then the trainer with --distributed.
  remote = shlex.split(cmds[2])[-1].removeprefix("--command=")
  cd, _, train = remote.partition(" && ")
  assert cd == "cd ~/amp-space"
  assert shlex.split(train) == [
    "python3",
    "-m",
    "ampspace.train",
    *TRAIN,
    "--config.dataset.filter=gain=5;source=real",
    "--distributed",
  ]


def test_tpu_vm_workers_get_their_place_in_the_layout(capsys):
  argv = ["tpu_vm", "--tpu=pod", "--zone=z", "--workers=2", "--coordinator=10.0.0.2", "--"]
  cmds = commands(*argv, *TRAIN)
  for i in (0, 1):
    remote = shlex.split(cmds[i].removesuffix(" &"))
    assert remote[:7] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "pod", "--zone=z"]
    assert remote[7] == f"--worker={i}"
    train = shlex.split(remote[8].removeprefix("--command=").split(" && ")[1])
    assert train[-3:] == [
      "--coordinator_address=10.0.0.2:8476",
      "--num_processes=2",
      f"--process_id={i}",
    ]
  assert cmds[2] == "wait"
  asked = commands(*[a for a in argv if not a.startswith("--coordinator")], *TRAIN)
  assert asked[0] == (
    "# WORKER0_IP: gcloud compute tpus tpu-vm describe pod --zone=z "
    "'--format=value(networkEndpoints[0].ipAddress)'"
  )
  assert "--coordinator_address=WORKER0_IP:8476" in asked[1]


@pytest.mark.parametrize(
  "argv, message",
  [
    (["local", "--config=x", "--workdir=y"], "after --"),
    (["local", "--", "--config=x"], "--workdir"),
    (["local", "--", "--workdir=y"], "--config"),
    (["local", "--", *TRAIN, "--process_id=3"], "--process_id"),
    (["tpu_vm", "--zone=z", "--", *TRAIN], "--tpu"),
    (["local", "--num_processes=0", "--", *TRAIN], "--num_processes"),
  ],
)
def test_bad_arguments_are_one_line_errors(argv, message, capsys):
  assert launcher.main(argv) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and message in err and err.count("\n") == 1


TINY_TRAIN = [
  "--config.train.steps=4",
  "--config.model.depth=3",
  "--config.model.channels=4",
  "--config.input.window=256",
  "--config.input.batch_size=4",
  "--config.train.tensorboard=False",
  "--config.eval.at_end=False",
  "--config.train.log_every=2",
]


@pytest.mark.slow
def test_slurm_script_trains_for_real_on_two_emulated_nodes(tmp_path, tiny_data_dir):
  state, workdir = tmp_path / "state", str(tmp_path / "run")
  env = fake_slurm.install(str(tmp_path / "bin"), str(state), first_id=1000 + os.getpid() % 3000)
  argv = [
    sys.executable,
    "-m",
    "launch.launcher",
    "slurm",
    "--nodes=2",
    "--gpus_per_node=1",
    f"--python={sys.executable}",
    "--",
    "--config=configs/wave2wavenet.py:runlocal",
    f"--workdir={workdir}",
    f"--config.dataset.data_dir={tiny_data_dir}",
    *TINY_TRAIN,
  ]
  r = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert r.returncode == 0, r.stdout + r.stderr
  (job,) = fake_slurm.jobs(str(state))
  out = open(state / f"{job['id']}_None.log").read()
  assert job["ok"], out[-3000:]
  logs = [[l[3:] for l in out.splitlines() if l.startswith(f"{rank}: ")] for rank in (0, 1)]
  assert all("done: 4 steps" in "\n".join(log) for log in logs), out[-3000:]
  # one data-parallel job over both "nodes": the same global loss on both processes
  loss = [[l for l in log if l.startswith("step 4/4")][0].split()[3] for log in logs]
  assert loss[0] == loss[1]
  assert os.path.isdir(os.path.join(workdir, "checkpoints", "4"))


@pytest.mark.slow
def test_tpu_vm_trains_for_real_on_two_emulated_workers(tmp_path, tiny_data_dir):
  state, workdir = tmp_path / "state", str(tmp_path / "run")
  env = fake_tpu_vm.install(str(tmp_path / "bin"), str(state), workers=2)
  env["JAX_PLATFORMS"] = "cpu"
  argv = [
    sys.executable,
    "-m",
    "launch.launcher",
    "tpu_vm",
    "--tpu=pod",
    "--zone=z",
    "--workers=2",
    f"--port={20000 + (os.getpid() + 7) % 20000}",
    f"--repo={REPO}",
    f"--python={sys.executable}",
    "--",
    "--config=configs/wave2wavenet.py:runlocal",
    f"--workdir={workdir}",
    f"--config.dataset.data_dir={tiny_data_dir}",
    *TINY_TRAIN,
  ]
  r = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
  verbs = [(c["verb"], c["opts"].get("worker")) for c in fake_tpu_vm.calls(str(state))]
  assert sorted(verbs, key=str) == [("describe", None), ("ssh", "0"), ("ssh", "1")]
  logs = [
    [
      line[len(f"worker {i}: ") :]
      for line in r.stdout.splitlines()
      if line.startswith(f"worker {i}: ")
    ]
    for i in (0, 1)
  ]
  assert all("done: 4 steps" in "\n".join(log) for log in logs), r.stdout[-3000:]
  # one data-parallel job over both workers: the same global loss on both processes
  loss = [[line for line in log if line.startswith("step 4/4")][0].split()[3] for log in logs]
  assert loss[0] == loss[1]
  assert os.path.isdir(os.path.join(workdir, "checkpoints", "4"))


@pytest.mark.slow
def test_local_two_processes_train_for_real(tmp_path, tiny_data_dir):
  workdir = str(tmp_path / "run")
  port = 20000 + os.getpid() % 20000
  r = subprocess.run(
    [
      sys.executable,
      "-m",
      "launch.launcher",
      "local",
      "--num_processes=2",
      f"--port={port}",
      "--",
      "--config=configs/wave2wavenet.py:runlocal",
      f"--workdir={workdir}",
      f"--config.dataset.data_dir={tiny_data_dir}",
      *TINY_TRAIN,
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert r.returncode == 0, r.stderr
  logs = [open(os.path.join(workdir, "logs", f"process_{i}.log")).read() for i in range(2)]
  assert all("done: 4 steps" in log for log in logs)
  # Both processes took part in one global batch: the same loss on both.
  loss = [[l for l in log.splitlines() if l.startswith("step 4/4")][0].split()[3] for log in logs]
  assert loss[0] == loss[1]
  assert os.path.isdir(os.path.join(workdir, "checkpoints", "4"))
  records = [json.loads(l) for l in open(os.path.join(workdir, "train_log.jsonl"))]
  assert [r["step"] for r in records] == [1, 2, 3, 4]  # written by process 0 only
