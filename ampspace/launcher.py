"""Start `python -m ampspace.train` on several processes: local, Slurm multi-GPU, or a TPU VM.

  python -m launch.launcher local --num_processes=2 --devices_per_process=2 -- \
      --config=configs/wave2wavenet.py:runlocal --workdir=runs/w2w_2proc
  python -m launch.launcher slurm --nodes=2 --gpus_per_node=8 --time=24:00:00 -- \
      --config=configs/wave2wavenet.py --workdir=/shared/runs/w2w
  python -m launch.launcher tpu_vm --tpu=my-v4-32 --zone=us-central2-b -- \
      --config=configs/wave2wavenet.py --workdir=gs://bucket/runs/w2w

Everything after `--` goes to `ampspace.train` unchanged. `--dry_run` prints the exact commands
(and the sbatch script) and runs nothing. Every backend runs the same training command on every
process; they differ only in how `jax.distributed` learns the process layout:

  local   one coordinator on localhost: --coordinator_address=localhost:PORT --num_processes=N
          --process_id=i, one process per CPU device group (XLA_FLAGS) or GPU group
          (CUDA_VISIBLE_DEVICES). Logs in WORKDIR/logs/process_i.log; if one process fails the
          others are stopped.
  slurm   one task per GPU (`--ntasks-per-node` = GPUs per node) under `srun`, with
          `--distributed`: JAX's Slurm cluster detection reads SLURM_JOB_ID, SLURM_NTASKS,
          SLURM_PROCID, SLURM_LOCALID and SLURM_STEP_NODELIST (the coordinator is the first
          node; each task takes the GPU of its local id). Tasks must see every GPU of their node,
          so the script asks for `--gpus-per-node`, not `--gpus-per-task`.
  tpu_vm  `gcloud compute tpus tpu-vm ssh NAME --worker=all --command=...`: every worker (host)
          runs the command with `--distributed`, and JAX detects the TPU pod's layout itself.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time

from ampspace.errors import AmpSpaceError
from ampspace.files import atomic_write

TRAIN_MODULE = "ampspace.train"
# The checkout the processes start in (and Slurm's default --repo).
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def quote(parts) -> str:
  return " ".join(shlex.quote(str(p)) for p in parts)


def workdir_of(train_args: list[str]) -> str:
  for i, a in enumerate(train_args):
    if a.startswith("--workdir="):
      return a.split("=", 1)[1]
    if a == "--workdir" and i + 1 < len(train_args):
      return train_args[i + 1]
  raise AmpSpaceError("the training arguments (after --) need --workdir=DIR")


def check_train_args(train_args: list[str]) -> None:
  if not any(a.startswith("--config") for a in train_args):
    raise AmpSpaceError("the training arguments (after --) need --config=FILE[:arg]")
  workdir_of(train_args)
  taken = [
    a
    for a in train_args
    if a.split("=")[0]
    in ("--coordinator_address", "--num_processes", "--process_id", "--distributed")
  ]
  if taken:
    raise AmpSpaceError(f"{taken[0]}: the launcher sets the process layout itself")


def train_command(python: str, train_args: list[str], extra: list[str]) -> list[str]:
  return [python, "-m", TRAIN_MODULE, *train_args, *extra]


# ---------------------------------------------------------------- local
def local_plan(args, train_args) -> list[tuple[dict[str, str], list[str]]]:
  """[(environment additions, argv)] for each local process."""
  n = args.num_processes
  if n < 1:
    raise AmpSpaceError(f"--num_processes={n}: must be >= 1")
  plan = []
  for i in range(n):
    env = {}
    if args.gpus_per_process:
      g = args.gpus_per_process
      env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i * g + k) for k in range(g))
    else:
      env["JAX_PLATFORMS"] = "cpu"
      env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices_per_process}"
    extra = (
      [f"--coordinator_address=localhost:{args.port}", f"--num_processes={n}", f"--process_id={i}"]
      if n > 1
      else []
    )
    plan.append((env, train_command(args.python, train_args, extra)))
  return plan


def local_commands(args, train_args) -> list[str]:
  lines = [
    quote(f"{k}={v}" for k, v in env.items()) + " " + quote(argv)
    for env, argv in local_plan(args, train_args)
  ]
  return [line + " &" for line in lines] + ["wait"] if len(lines) > 1 else lines


def run_local(args, train_args) -> int:
  plan = local_plan(args, train_args)
  logs = os.path.join(workdir_of(train_args), "logs")
  os.makedirs(logs, exist_ok=True)
  procs = []
  for i, (env, argv) in enumerate(plan):
    log = open(os.path.join(logs, f"process_{i}.log"), "w")
    procs.append(
      (
        subprocess.Popen(
          argv,
          env={**os.environ, **env},
          cwd=REPO,
          stdout=log,
          stderr=subprocess.STDOUT,
          start_new_session=True,
        ),
        log,
      )
    )
    print(f"process {i}: pid {procs[-1][0].pid}, log {log.name}", file=sys.stderr)
  status = 0
  try:
    while procs and status == 0:
      for p, log in list(procs):
        rc = p.poll()
        if rc is not None:
          procs.remove((p, log))
          log.close()
          if rc:
            status = rc
            print(f"process pid {p.pid} exited with {rc}; stopping the others", file=sys.stderr)
      time.sleep(0.2)
  finally:
    for p, log in procs:  # only the processes this launcher started
      if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
      p.wait()
      log.close()
  return status


# ---------------------------------------------------------------- slurm
def sbatch_script(args, train_args) -> str:
  workdir = workdir_of(train_args)
  lines = [
    "#!/bin/bash",
    f"#SBATCH --job-name={args.job_name}",
    f"#SBATCH --nodes={args.nodes}",
    f"#SBATCH --ntasks-per-node={args.gpus_per_node}",
    f"#SBATCH --gpus-per-node={args.gpus_per_node}",
    f"#SBATCH --cpus-per-task={args.cpus_per_task}",
    f"#SBATCH --time={args.time}",
    f"#SBATCH --output={os.path.join(workdir, 'slurm-%j.out')}",
  ]
  if args.partition:
    lines.append(f"#SBATCH --partition={args.partition}")
  if args.account:
    lines.append(f"#SBATCH --account={args.account}")
  lines += [
    "set -euo pipefail",
    f"cd {shlex.quote(args.repo)}",
    "srun --kill-on-bad-exit=1 " + quote(train_command(args.python, train_args, ["--distributed"])),
  ]
  return "\n".join(lines) + "\n"


def slurm_script_path(args, train_args) -> str:
  return args.script or os.path.join(workdir_of(train_args), "launch.sbatch")


def slurm_commands(args, train_args) -> list[str]:
  return [quote(["sbatch", slurm_script_path(args, train_args)])]


def run_slurm(args, train_args) -> int:
  path = slurm_script_path(args, train_args)
  atomic_write(path, sbatch_script(args, train_args))
  try:
    return subprocess.call(["sbatch", path])
  except FileNotFoundError:
    raise AmpSpaceError(
      f"sbatch not found: not on a Slurm login node? The script is {path}"
    ) from None


# ---------------------------------------------------------------- tpu vm
def tpu_commands(args, train_args) -> list[str]:
  if not args.tpu or not args.zone:
    raise AmpSpaceError("tpu_vm needs --tpu=NAME and --zone=ZONE")
  where = [f"--zone={args.zone}"] + ([f"--project={args.project}"] if args.project else [])
  cmds = []
  if args.create:
    cmds.append(
      quote(
        [
          "gcloud",
          "compute",
          "tpus",
          "tpu-vm",
          "create",
          args.tpu,
          *where,
          f"--accelerator-type={args.accelerator_type}",
          f"--version={args.version}",
        ]
      )
    )
  ssh = quote(["gcloud", "compute", "tpus", "tpu-vm", "ssh", args.tpu, *where, "--worker=all"])
  cd = f"cd {remote_path(args.repo)}"
  if args.setup:
    cmds.append(f"{ssh} --command={shlex.quote(f'{cd} && {args.setup}')}")
  remote = quote(train_command(args.python, train_args, ["--distributed"]))
  cmds.append(f"{ssh} --command={shlex.quote(f'{cd} && {remote}')}")
  return cmds


def remote_path(path: str) -> str:
  """Quoted for the remote shell, leaving a leading ~/ to it (home differs per machine)."""
  if path == "~" or path.startswith("~/"):
    return "~/" + shlex.quote(path[2:]) if len(path) > 2 else "~"
  return shlex.quote(path)


def run_commands(cmds: list[str]) -> int:
  for c in cmds:
    print(f"+ {c}", file=sys.stderr)
    try:
      rc = subprocess.call(shlex.split(c))
    except FileNotFoundError:
      raise AmpSpaceError(f"{shlex.split(c)[0]} not found (install the Google Cloud CLI)") from None
    if rc:
      return rc
  return 0


# ---------------------------------------------------------------- command line
def parser() -> argparse.ArgumentParser:
  ap = argparse.ArgumentParser(
    prog="python -m launch.launcher", description=__doc__.split("\n\n")[0]
  )
  sub = ap.add_subparsers(dest="backend", required=True)
  common = argparse.ArgumentParser(add_help=False)
  common.add_argument("--dry_run", action="store_true", help="print the commands; run nothing")

  local = sub.add_parser("local", parents=[common], help="N processes on this machine")
  local.add_argument("--num_processes", type=int, default=2)
  local.add_argument("--port", type=int, default=12355, help="coordinator port on localhost")
  local.add_argument(
    "--devices_per_process",
    type=int,
    default=1,
    help="CPU devices per process (XLA_FLAGS); ignored with GPUs",
  )
  local.add_argument(
    "--gpus_per_process",
    type=int,
    default=0,
    help="GPUs per process (CUDA_VISIBLE_DEVICES); 0 runs on CPU",
  )
  local.add_argument("--python", default=sys.executable)

  slurm = sub.add_parser("slurm", parents=[common], help="sbatch + srun, one task per GPU")
  slurm.add_argument("--nodes", type=int, default=1)
  slurm.add_argument("--gpus_per_node", type=int, default=8)
  slurm.add_argument("--cpus_per_task", type=int, default=8)
  slurm.add_argument("--time", default="24:00:00")
  slurm.add_argument("--job_name", default="ampspace")
  slurm.add_argument("--partition", default="")
  slurm.add_argument("--account", default="")
  slurm.add_argument("--repo", default=REPO, help="the checkout on the cluster")
  slurm.add_argument("--script", default="", help="where to write the sbatch script")
  slurm.add_argument("--python", default="python")

  tpu = sub.add_parser("tpu_vm", parents=[common], help="every worker of a TPU VM")
  tpu.add_argument("--tpu", default="", help="TPU VM name")
  tpu.add_argument("--zone", default="")
  tpu.add_argument("--project", default="")
  tpu.add_argument("--repo", default="~/amp-space", help="the checkout on every worker")
  tpu.add_argument(
    "--setup", default="", help="run on every worker first, e.g. 'bash launch/setup.sh'"
  )
  tpu.add_argument("--create", action="store_true", help="create the TPU VM first")
  tpu.add_argument("--accelerator_type", default="v4-8")
  tpu.add_argument("--version", default="tpu-ubuntu2204-base")
  tpu.add_argument("--python", default="python3")
  return ap


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
  if "--" not in argv:
    raise AmpSpaceError("put the training arguments after --, e.g. -- --config=FILE --workdir=DIR")
  i = argv.index("--")
  return argv[:i], argv[i + 1 :]


def plan(argv: list[str]) -> tuple[argparse.Namespace, list[str], list[str]]:
  """(launcher args, training args, the commands a run executes)."""
  own, train_args = split_argv(argv)
  args = parser().parse_args(own)
  check_train_args(train_args)
  commands = {"local": local_commands, "slurm": slurm_commands, "tpu_vm": tpu_commands}
  return args, train_args, commands[args.backend](args, train_args)


def main(argv: list[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  try:
    args, train_args, commands = plan(argv)
    if args.dry_run:
      if args.backend == "slurm":
        print(f"# {slurm_script_path(args, train_args)}")
        print(sbatch_script(args, train_args), end="")
        print("# submit with:")
      print("\n".join(commands))
      return 0
    if args.backend == "local":
      return run_local(args, train_args)
    if args.backend == "slurm":
      return run_slurm(args, train_args)
    return run_commands(commands)
  except AmpSpaceError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
