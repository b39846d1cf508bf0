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
          With `--workers=N`, one ssh per worker instead, started together, each with
          --coordinator_address=WORKER0:PORT --num_processes=N --process_id=I (worker 0's
          address from `--coordinator` or `gcloud compute tpus tpu-vm describe`).

A sweep of many small runs goes to Slurm as job arrays instead:

  python -m launch.launcher slurm_sweep --partition=gpu --max_parallel=16 [--submit] -- \
      --scale=paper --workdir=/shared/runs/sim_to_real
  python -m launch.launcher slurm_sweep --experiment=search --workers=16 [--submit] -- \
      --workdir=/shared/runs/search --storage=postgresql://USER@HOST/optuna --n_trials=200

write WORKDIR/slurm/STAGE.sbatch and submit.sh, which submits them with `sbatch --parsable`
and chains them with `--dependency=afterok:`. Table 3: the data job; then the pretraining
and, beside it, an array of the from-scratch cells (both after the data); then an array of
the cells that start from the pretrained checkpoint (after the pretraining); then the report
(after both arrays). Each array task is one cell (`--stage=cell`, its index from
SLURM_ARRAY_TASK_ID). Search: the study is created, then an array of workers shares it
through Optuna's RDB storage, then the results are exported. Every stage reuses what the
same code and config finished, so running submit.sh again resumes an interrupted sweep.

Table 3 over the workers (hosts) of a TPU VM pod slice, one process each:

  python -m launch.launcher tpu_sweep --tpu=my-v4-32 --zone=us-central2-b --workers=4 -- \
      --scale=paper --workdir=/mnt/shared/runs/sim_to_real

runs `launch.sim_to_real ... --stage=worker --worker=I --num_workers=N` on every worker at
once (one `gcloud ... ssh --worker=I` each). They share WORKDIR, a folder every worker mounts:
worker 0 prepares the data and pretrains, the others start the from-scratch cells, every
worker then trains its fine-tuned cells, and worker 0 writes the report. Rerunning resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from ampspace import paths
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
  workdir = workdir_of(train_args)
  remote = paths.is_url(workdir)  # gs://...: the logs are written here, then uploaded
  logs = tempfile.mkdtemp(prefix="ampspace-logs-") if remote else os.path.join(workdir, "logs")
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
    if remote:
      for name in sorted(os.listdir(logs)):
        paths.upload(os.path.join(logs, name), paths.join(workdir, "logs", name))
      shutil.rmtree(logs, ignore_errors=True)
      print(f"process logs uploaded to {paths.join(workdir, 'logs')}", file=sys.stderr)
  return status


# ---------------------------------------------------------------- slurm
def sbatch_script(args, train_args) -> str:
  workdir = workdir_of(train_args)
  layout = {
    "job-name": args.job_name,
    "nodes": args.nodes,
    "ntasks-per-node": args.gpus_per_node,
    "gpus-per-node": args.gpus_per_node,
  }
  command = train_command(args.python, train_args, ["--distributed"])
  return sbatch_text(
    args,
    layout,
    "slurm-%j.out" if paths.is_url(workdir) else os.path.join(workdir, "slurm-%j.out"),
    "srun --kill-on-bad-exit=1 " + quote(command),
  )


def sbatch_text(args, options: dict, output: str, command: str) -> str:
  """An sbatch script: `options` then the shared ones (cpus, time, output, partition,
  account) as #SBATCH lines, then `command` run in the checkout."""
  options = {**options, "cpus-per-task": args.cpus_per_task, "time": args.time, "output": output}
  options.update({k: getattr(args, k) for k in ("partition", "account") if getattr(args, k)})
  lines = ["#!/bin/bash", *(f"#SBATCH --{k}={v}" for k, v in options.items())]
  lines += ["set -euo pipefail", f"cd {shlex.quote(args.repo)}", command]
  return "\n".join(lines) + "\n"


def slurm_script_path(args, train_args) -> str:
  """--script, else launch.sbatch in the workdir, or in the current folder when the workdir is
  a bucket (sbatch reads a local file; the run itself writes to the bucket)."""
  workdir = workdir_of(train_args)
  return args.script or (
    "launch.sbatch" if paths.is_url(workdir) else os.path.join(workdir, "launch.sbatch")
  )


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


# ---------------------------------------------------------------- slurm sweeps (job arrays)
# Experiments with stages (`--stage=...`) that a sweep submits as chained jobs.
SWEEPS = {"sim_to_real": "launch.sim_to_real", "search": "launch.search"}


@dataclasses.dataclass(frozen=True)
class SweepJob:
  """One `sbatch` of submit.sh: its id goes to shell variable `var`; it waits for the jobs in
  `after` (afterok); `array` is an inclusive task range, or None."""

  var: str
  stage: str
  after: tuple[str, ...] = ()
  array: tuple[int, int] | None = None


def sweep_plan(args, exp_args) -> dict:
  """The experiment's cells, from its own `--stage=plan` (run here, on the submit host)."""
  cmd = [sys.executable, "-m", SWEEPS[args.experiment], *exp_args, "--stage=plan"]
  out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
  if out.returncode:
    lines = (out.stderr or out.stdout).strip().splitlines() or ["(no output)"]
    raise AmpSpaceError(f"{quote(cmd[1:])}: {lines[-1]}")
  return json.loads(out.stdout.strip().splitlines()[-1])


def sweep_jobs(args, exp_args) -> tuple[list[SweepJob], str]:
  """The jobs of a sweep in submission order, and a one-line summary."""
  if args.experiment == "search":
    # Optuna's shared storage (--storage, an RDB URL every node reaches) coordinates the
    # workers; each array task is one worker, its sampler seeded by its task id.
    n = args.workers
    jobs = [
      SweepJob("create", "create"),
      SweepJob("workers", "worker", ("create",), (0, n - 1)),
      SweepJob("export", "export", ("workers",)),
    ]
    return jobs, f"{n} search workers"
  plan = sweep_plan(args, exp_args)
  n, scratch = plan["cells"], plan["scratch"]
  jobs = [SweepJob("data", "data"), SweepJob("pre", "pretrain", ("data",))]
  if scratch:  # from scratch: they need only the data, so they run beside the pretraining
    jobs.append(SweepJob("scratch", "cell", ("data",), (0, scratch - 1)))
  if n > scratch:
    jobs.append(SweepJob("tuned", "cell", ("pre",), (scratch, n - 1)))
  cells = tuple(j.var for j in jobs if j.stage == "cell") or ("pre",)
  jobs.append(SweepJob("report", "report", cells))
  return jobs, f"{n} cells ({scratch} from scratch)"


def sweep_dir(exp_args) -> str:
  workdir = workdir_of(exp_args)
  if paths.is_url(workdir):
    raise AmpSpaceError(
      f"--workdir={workdir}: a Slurm sweep keeps its cells on the cluster's shared filesystem; "
      "give a path there"
    )
  return os.path.join(os.path.abspath(workdir), "slurm")


def sweep_scripts(args, exp_args, jobs: list[SweepJob], summary: str) -> dict[str, str]:
  """{file name: text}: one sbatch script per stage, and submit.sh, which chains them."""
  logs = os.path.join(sweep_dir(exp_args), "logs")
  base = [args.python, "-m", SWEEPS[args.experiment], *exp_args]
  light = {"data", "report", "create", "export"}  # no accelerator needed

  def script(stage: str, array: bool) -> str:
    log = os.path.join(logs, f"{stage}-%A_%a.out" if array else f"{stage}-%j.out")
    options = {"job-name": f"{args.job_name}-{stage}", "ntasks": 1}
    if args.gpus_per_task and stage not in light:
      options["gpus-per-task"] = args.gpus_per_task
    return sbatch_text(args, options, log, quote(base + [f"--stage={stage}"]))

  throttle = f"%{args.max_parallel}" if args.max_parallel else ""
  submit = [
    "#!/bin/bash",
    "# Submits the sweep; run it again to resume (finished stages and cells are reused).",
    "set -euo pipefail",
    'cd "$(dirname "$0")"',
    'job() { local out; out=$(sbatch --parsable "$@"); echo "${out%%;*}"; }',
  ]
  scripts = {}
  for j in jobs:
    name = f"{j.stage}.sbatch"
    scripts.setdefault(name, script(j.stage, j.array is not None))
    opts = []
    if j.after:
      opts.append("--dependency=afterok:" + ":".join(f"${v}" for v in j.after))
    if j.array:
      opts.append(f"--array={j.array[0]}-{j.array[1]}{throttle}")
    submit.append(f"{j.var}=$(job {' '.join(opts + [name])})")
  ids = ", ".join(f"{j.var} ${j.var}" for j in jobs)
  submit.append(f'echo "submitted {summary}: {ids}"')
  return {**scripts, "submit.sh": "\n".join(submit) + "\n"}


def run_slurm_sweep(args, exp_args) -> int:
  jobs, summary = sweep_jobs(args, exp_args)
  scripts = sweep_scripts(args, exp_args, jobs, summary)
  folder = sweep_dir(exp_args)
  if args.dry_run:
    for name, text in scripts.items():
      print(f"# {os.path.join(folder, name)}")
      print(text, end="")
    return 0
  os.makedirs(os.path.join(folder, "logs"), exist_ok=True)  # Slurm does not create it
  for name, text in scripts.items():
    atomic_write(os.path.join(folder, name), text)
  submit = os.path.join(folder, "submit.sh")
  print(f"{summary}; scripts in {folder}", file=sys.stderr)
  if not args.submit:
    print(quote(["bash", submit]))
    return 0
  return subprocess.call(["bash", submit])


# ---------------------------------------------------------------- tpu vm
def tpu_where(args) -> list[str]:
  if not args.tpu or not args.zone:
    raise AmpSpaceError(f"{args.backend} needs --tpu=NAME and --zone=ZONE")
  return [f"--zone={args.zone}"] + ([f"--project={args.project}"] if args.project else [])


def gcloud_tpu(args, verb: str, *options: str) -> list[str]:
  """`gcloud compute tpus tpu-vm VERB NAME --zone=Z [--project=P] OPTIONS...`."""
  return ["gcloud", "compute", "tpus", "tpu-vm", verb, args.tpu, *tpu_where(args), *options]


def tpu_ssh(args, worker: str, command: str) -> str:
  """`gcloud ... ssh NAME --worker=W --command='cd REPO && COMMAND'`."""
  cd = f"cd {remote_path(args.repo)}"
  ssh = quote(gcloud_tpu(args, "ssh", f"--worker={worker}"))
  return f"{ssh} --command={shlex.quote(f'{cd} && {command}')}"


def tpu_prepare_commands(args) -> list[str]:
  """[create the TPU VM], [run --setup on every worker]."""
  cmds = []
  if args.create:
    create = gcloud_tpu(
      args, "create", f"--accelerator-type={args.accelerator_type}", f"--version={args.version}"
    )
    cmds.append(quote(create))
  if args.setup:
    cmds.append(tpu_ssh(args, "all", args.setup))
  return cmds


def tpu_coordinator_query(args) -> list[str]:
  """The gcloud command that prints worker 0's internal address."""
  return gcloud_tpu(args, "describe", "--format=value(networkEndpoints[0].ipAddress)")


def tpu_all_command(args, train_args) -> str:
  """The trainer with --distributed on every worker at once; JAX detects the layout."""
  return tpu_ssh(args, "all", quote(train_command(args.python, train_args, ["--distributed"])))


def tpu_worker_commands(args, train_args, coordinator: str) -> list[str]:
  """One ssh per worker (`--workers=N`), each giving the trainer its place in the layout
  explicitly: --coordinator_address=COORDINATOR:PORT --num_processes=N --process_id=I."""
  cmds = []
  for i in range(args.workers):
    layout = [
      f"--coordinator_address={coordinator}:{args.port}",
      f"--num_processes={args.workers}",
      f"--process_id={i}",
    ]
    cmds.append(tpu_ssh(args, str(i), quote(train_command(args.python, train_args, layout))))
  return cmds


def tpu_commands(args, train_args) -> list[str]:
  """What a TPU VM run executes (for --dry_run): every worker with --distributed (JAX's own
  detection), or with --workers=N one ssh per worker, started together."""
  if not args.workers:
    return tpu_prepare_commands(args) + [tpu_all_command(args, train_args)]
  coordinator = args.coordinator or "WORKER0_IP"
  query = [] if args.coordinator else [f"# WORKER0_IP: {quote(tpu_coordinator_query(args))}"]
  workers = tpu_worker_commands(args, train_args, coordinator)
  return tpu_prepare_commands(args) + query + [c + " &" for c in workers] + ["wait"]


def run_tpu_vm(args, train_args) -> int:
  rc = run_commands(tpu_prepare_commands(args))
  if rc or not args.workers:
    return rc or run_commands([tpu_all_command(args, train_args)])
  coordinator = args.coordinator
  if not coordinator:
    query = tpu_coordinator_query(args)
    try:
      out = subprocess.run(query, capture_output=True, text=True)
    except FileNotFoundError:
      raise AmpSpaceError("gcloud not found (install the Google Cloud CLI)") from None
    coordinator = out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""
    if out.returncode or not coordinator:
      lines = (out.stderr or "no address").strip().splitlines()
      raise AmpSpaceError(f"{quote(query)}: {lines[-1]}")
  return run_parallel(tpu_worker_commands(args, train_args, coordinator))


def run_parallel(cmds: list[str]) -> int:
  """Runs every command at once, each output line prefixed `worker I: `; the worst exit
  status."""
  import threading

  procs, threads = [], []

  def relay(i: int, stream) -> None:
    for line in stream:
      sys.stdout.write(f"worker {i}: {line}")
      sys.stdout.flush()

  for i, c in enumerate(cmds):
    print(f"+ {c}", file=sys.stderr)
    try:
      proc = subprocess.Popen(
        shlex.split(c), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
      )
    except FileNotFoundError:
      raise AmpSpaceError(f"{shlex.split(c)[0]} not found (install the Google Cloud CLI)") from None
    procs.append(proc)
    threads.append(threading.Thread(target=relay, args=(i, proc.stdout), daemon=True))
    threads[-1].start()
  codes = [p.wait() for p in procs]
  for t in threads:
    t.join()
  bad = [i for i, c in enumerate(codes) if c]
  if bad:
    print(f"workers {', '.join(map(str, bad))} failed (exit {max(codes)})", file=sys.stderr)
  return max(codes)


# ---------------------------------------------------------------- tpu vm sweeps
def tpu_sweep_commands(args, exp_args) -> tuple[list[str], list[str]]:
  """(commands run first, one after another; one command per worker, run at once) of a Table 3
  sweep over a pod slice's hosts: [create], [setup on every worker], then on worker I
  `launch.sim_to_real ... --stage=worker --worker=I --num_workers=N`."""
  if args.workers < 1:
    raise AmpSpaceError(f"--workers={args.workers}: the pod slice's number of hosts, at least 1")
  taken = [a for a in exp_args if a.split("=")[0] in ("--stage", "--worker", "--num_workers")]
  if taken:
    raise AmpSpaceError(f"{taken[0]}: the launcher gives every worker its stage and index")
  workdir = workdir_of(exp_args)
  if paths.is_url(workdir):
    raise AmpSpaceError(
      f"--workdir={workdir}: the workers share the sweep through files; give a folder every "
      "worker mounts at the same path (Filestore/NFS, or a Cloud Storage FUSE mount)"
    )
  per_worker = []
  for i in range(args.workers):
    argv = [args.python, "-m", SWEEPS["sim_to_real"], *exp_args]
    argv += ["--stage=worker", f"--worker={i}", f"--num_workers={args.workers}"]
    per_worker.append(tpu_ssh(args, str(i), " ".join(filter(None, [args.host_env, quote(argv)]))))
  return tpu_prepare_commands(args), per_worker


def run_tpu_sweep(args, exp_args) -> int:
  """Runs the sweep's commands: the first ones in turn, then every worker's at once."""
  first, per_worker = tpu_sweep_commands(args, exp_args)
  if args.dry_run:
    print("\n".join(first + [c + " &" for c in per_worker] + ["wait"]))
    return 0
  return run_commands(first) or run_parallel(per_worker)


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

  sweep = sub.add_parser(
    "slurm_sweep", parents=[common], help="an experiment's cells as Slurm job arrays"
  )
  sweep.add_argument("--experiment", choices=sorted(SWEEPS), default="sim_to_real")
  sweep.add_argument("--workers", type=int, default=8, help="search: array tasks (workers)")
  sweep.add_argument("--gpus_per_task", type=int, default=1, help="for pretraining and cells")
  sweep.add_argument("--cpus_per_task", type=int, default=4)
  sweep.add_argument("--time", default="4:00:00", help="per job (each cell is one job)")
  sweep.add_argument("--max_parallel", type=int, default=0, help="array tasks at once (0: any)")
  sweep.add_argument("--job_name", default="ampspace")
  sweep.add_argument("--partition", default="")
  sweep.add_argument("--account", default="")
  sweep.add_argument("--repo", default=REPO, help="the checkout on the cluster")
  sweep.add_argument("--python", default="python")
  sweep.add_argument("--submit", action="store_true", help="run submit.sh (sbatch) now")

  tpu_vm = argparse.ArgumentParser(add_help=False)  # what tpu_vm and tpu_sweep share
  tpu_vm.add_argument("--tpu", default="", help="TPU VM name")
  tpu_vm.add_argument("--zone", default="")
  tpu_vm.add_argument("--project", default="")
  tpu_vm.add_argument("--repo", default="~/amp-space", help="the checkout on every worker")
  tpu_vm.add_argument(
    "--setup", default="", help="run on every worker first, e.g. 'bash launch/setup.sh'"
  )
  tpu_vm.add_argument("--create", action="store_true", help="create the TPU VM first")
  tpu_vm.add_argument("--accelerator_type", default="v4-8")
  tpu_vm.add_argument("--version", default="tpu-ubuntu2204-base")
  tpu_vm.add_argument("--python", default="python3")
  tpu = sub.add_parser("tpu_vm", parents=[common, tpu_vm], help="every worker of a TPU VM")
  tpu.add_argument(
    "--workers",
    type=int,
    default=0,
    help="0: one ssh to every worker, JAX detects the layout; N: one ssh per worker, each "
    "given its place explicitly",
  )
  tpu.add_argument(
    "--coordinator", default="", help="worker 0's address (default: asked of gcloud)"
  )
  tpu.add_argument("--port", type=int, default=8476, help="the coordinator's port")

  tsweep = sub.add_parser(
    "tpu_sweep",
    parents=[common, tpu_vm],
    help="Table 3's cells over the workers of a TPU VM pod slice",
  )
  tsweep.add_argument("--workers", type=int, default=0, help="the pod slice's number of hosts")
  tsweep.add_argument(
    "--host_env",
    default="",
    help="VAR=VALUE ... before every worker's command (e.g. libtpu settings that make each "
    "host run its own single-host program)",
  )
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
    if argv[:1] in (["slurm_sweep"], ["tpu_sweep"]):
      own, exp_args = split_argv(argv)
      args = parser().parse_args(own)
      workdir_of(exp_args)
      if args.backend == "tpu_sweep":
        return run_tpu_sweep(args, exp_args)
      return run_slurm_sweep(args, exp_args)
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
    return run_tpu_vm(args, train_args)
  except AmpSpaceError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
