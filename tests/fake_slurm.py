"""Stand-ins for Slurm's `sbatch` and `srun` on one machine, for tests of the launcher's
Slurm scripts: every "node" is this host, every task a real local process.

`install(bin_dir, state_dir)` writes two executables:

- `sbatch` runs each job at once: one `bash SCRIPT` per array task, all started together,
  with the variables Slurm sets for a batch job (SLURM_JOB_ID, SLURM_ARRAY_JOB_ID,
  SLURM_ARRAY_TASK_ID, and from the script's `#SBATCH --nodes` / `--ntasks-per-node`:
  SLURM_NNODES, SLURM_NTASKS, SLURM_NTASKS_PER_NODE, SLURM_JOB_NODELIST). It honours
  `--parsable`, `--array=A-B[%K]` and `--dependency=afterok:ID[:ID...]`: a job whose
  dependency did not succeed does not run (Slurm would leave it pending). Each job's record
  (script, tasks, exit codes) is STATE/ID.json; each task's output STATE/ID_TASK.log.
- `srun [--options] COMMAND...` starts SLURM_NTASKS copies of COMMAND with the step's
  variables (SLURM_PROCID, SLURM_LOCALID, SLURM_NODEID, SLURM_STEP_NODELIST,
  SLURM_STEP_NUM_NODES), labels each task's output lines "RANK: " as `srun --label` does,
  stops the others when one fails (--kill-on-bad-exit) and exits with the worst code.
"""

from __future__ import annotations

import json
import os
import sys

SBATCH = r'''#!{python}
import json, os, re, subprocess, sys
state = {state!r}
*opts, script = sys.argv[1:]
tasks, deps = [None], []
for o in opts:
  if o.startswith("--array="):
    first, last = o.split("=", 1)[1].split("%")[0].split("-")
    tasks = list(range(int(first), int(last) + 1))
  elif o.startswith("--dependency="):
    kind, *deps = o.split("=", 1)[1].split(":")
    if kind != "afterok":
      sys.exit("fake sbatch: only afterok dependencies")
  elif o != "--parsable":
    sys.exit(f"fake sbatch: unsupported option {{o}}")
os.makedirs(state, exist_ok=True)
ids = [int(f[:-5]) for f in os.listdir(state) if f.endswith(".json")]
job = max(ids, default={first_id} - 1) + 1
header = dict(re.findall(r"^#SBATCH --([\w-]+)=(\S+)", open(script).read(), re.M))
nodes, per_node = int(header.get("nodes", 1)), int(header.get("ntasks-per-node", 1))
layout = dict(SLURM_NNODES=str(nodes), SLURM_NTASKS_PER_NODE=str(per_node),
              SLURM_NTASKS=str(int(header.get("ntasks", nodes * per_node))),
              SLURM_JOB_NODELIST="localhost")
ok = all(json.load(open(os.path.join(state, f"{{d}}.json")))["ok"] for d in deps)
codes = []
if ok:
  procs = []
  for t in tasks:
    env = dict(os.environ, SLURM_JOB_ID=str(job), **layout)
    if t is not None:
      env.update(SLURM_ARRAY_JOB_ID=str(job), SLURM_ARRAY_TASK_ID=str(t))
    log = open(os.path.join(state, f"{{job}}_{{t}}.log"), "w")
    procs.append(subprocess.Popen(["bash", script], env=env, stdout=log, stderr=subprocess.STDOUT))
  codes = [p.wait() for p in procs]
record = dict(script=os.path.basename(script), tasks=tasks, deps=deps, ran=ok, codes=codes,
              ok=ok and not any(codes))
json.dump(record, open(os.path.join(state, f"{{job}}.json"), "w"))
print(f"{{job}};fakecluster")
'''


SRUN = r'''#!{python}
import os, signal, subprocess, sys, threading
args = sys.argv[1:]
while args and args[0].startswith("-"):
  args.pop(0)  # --kill-on-bad-exit=1 and the like: this stand-in always stops the others
ntasks, per_node = int(os.environ["SLURM_NTASKS"]), int(os.environ.get("SLURM_NTASKS_PER_NODE", 1))
procs = []
for rank in range(ntasks):
  env = dict(os.environ, SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank % per_node),
             SLURM_NODEID=str(rank // per_node), SLURM_STEP_NODELIST="localhost",
             SLURM_STEP_NUM_NODES=os.environ.get("SLURM_NNODES", "1"))
  procs.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True))
lock = threading.Lock()
def label(rank, proc):
  for line in proc.stdout:
    with lock:
      sys.stdout.write(f"{{rank}}: {{line}}")
      sys.stdout.flush()
threads = [threading.Thread(target=label, args=(r, p)) for r, p in enumerate(procs)]
for t in threads:
  t.start()
worst = 0
while any(p.poll() is None for p in procs):
  bad = [p.returncode for p in procs if p.returncode]
  if bad:
    worst = bad[0]
    for p in procs:
      if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
    break
  threading.Event().wait(0.2)
for p in procs:
  p.wait()
for t in threads:
  t.join()
sys.exit(worst or max((abs(p.returncode) for p in procs), default=0))
'''


def install(bin_dir: str, state_dir: str, first_id: int = 1000, single_thread: bool = False):
  """Writes `sbatch` and `srun` into bin_dir; returns the environment to run under (bin_dir
  first on PATH; with `single_thread`, one XLA thread per process, as array tasks share the
  cores). Job ids count up from `first_id` (JAX's Slurm detection takes its port from it)."""
  os.makedirs(bin_dir, exist_ok=True)
  for name, text in (
    ("sbatch", SBATCH.format(python=sys.executable, state=state_dir, first_id=first_id)),
    ("srun", SRUN.format(python=sys.executable)),
  ):
    path = os.path.join(bin_dir, name)
    with open(path, "w") as f:
      f.write(text)
    os.chmod(path, 0o755)
  return stand_in_env(bin_dir, single_thread)


def stand_in_env(bin_dir: str, single_thread: bool) -> dict:
  """The environment to run stand-in cluster commands under: bin_dir first on PATH; with
  `single_thread`, one XLA thread per process, as the emulated tasks share the cores."""
  env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
  if single_thread:
    env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
  return env


def jobs(state_dir: str) -> list[dict]:
  """Every job's record, in submission order."""
  ids = sorted(int(f[:-5]) for f in os.listdir(state_dir) if f.endswith(".json"))
  return [dict(json.load(open(os.path.join(state_dir, f"{i}.json"))), id=i) for i in ids]
