"""A stand-in for the Google Cloud CLI's TPU VM commands on one machine, for tests of the
launcher's `tpu_sweep`: every worker (host) of the pod slice is a real local process.

`install(bin_dir, state_dir, workers)` writes a `gcloud` executable that understands

- `gcloud compute tpus tpu-vm ssh NAME --zone=Z [--project=P] --worker=W --command=CMD`:
  runs `bash -c CMD` as worker W would (W an index, or `all`: every worker, at once), with
  the variables a TPU VM host has (TPU_WORKER_ID, TPU_WORKER_HOSTNAMES), and exits with the
  worst status;
- `gcloud compute tpus tpu-vm describe NAME ... --format=value(networkEndpoints[0].ipAddress)`:
  prints 127.0.0.1, worker 0's address (every worker is this machine);
- `gcloud compute tpus tpu-vm create NAME ...`: records it and does nothing.

Every call is appended to STATE/calls.jsonl (its arguments, workers and exit codes).
"""

from __future__ import annotations

import json
import os
import sys

from fake_slurm import stand_in_env

GCLOUD = r'''#!{python}
import json, os, subprocess, sys
state, workers = {state!r}, {workers}
args = sys.argv[1:]
if args[:3] != ["compute", "tpus", "tpu-vm"] or len(args) < 5:
  sys.exit(f"fake gcloud: unsupported command {{args}}")
verb, name, opts = args[3], args[4], dict(a[2:].split("=", 1) for a in args[5:] if "=" in a)
record = dict(verb=verb, name=name, opts=opts, codes=[])
if verb == "ssh":
  w = opts["worker"]
  ids = range(workers) if w == "all" else [int(w)]
  hosts = ",".join(f"10.0.0.{{i + 2}}" for i in range(workers))
  procs = [subprocess.Popen(["bash", "-c", opts["command"]],
                            env=dict(os.environ, TPU_WORKER_ID=str(i), TPU_WORKER_HOSTNAMES=hosts))
           for i in ids]
  record["codes"] = [p.wait() for p in procs]
elif verb == "describe":
  if opts.get("format") != "value(networkEndpoints[0].ipAddress)":
    sys.exit(f"fake gcloud: unsupported describe format {{opts.get('format')}}")
  print("127.0.0.1")
elif verb != "create":
  sys.exit(f"fake gcloud: unsupported verb {{verb}}")
os.makedirs(state, exist_ok=True)
with open(os.path.join(state, "calls.jsonl"), "a") as f:
  f.write(json.dumps(record) + "\n")
sys.exit(max(record["codes"], default=0))
'''


def install(bin_dir: str, state_dir: str, workers: int, single_thread: bool = True) -> dict:
  """Writes `gcloud` into bin_dir for a slice of `workers` hosts; returns the environment to
  run under (bin_dir first on PATH; one XLA thread per process, as the workers share cores)."""
  os.makedirs(bin_dir, exist_ok=True)
  path = os.path.join(bin_dir, "gcloud")
  with open(path, "w") as f:
    f.write(GCLOUD.format(python=sys.executable, state=state_dir, workers=workers))
  os.chmod(path, 0o755)
  return stand_in_env(bin_dir, single_thread)


def calls(state_dir: str) -> list[dict]:
  with open(os.path.join(state_dir, "calls.jsonl")) as f:
    return [json.loads(line) for line in f]
