"""Two local CPU processes joined by jax.distributed train as one data-parallel job: each feeds
its own half of the global batch, and both end with bitwise-identical parameters."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from trainer_util import REPO

WORKER = r"""
import json, sys
import jax
port, pid, data_dir, workdir, out = sys.argv[1:6]
jax.distributed.initialize(coordinator_address=f"localhost:{port}", num_processes=2,
                           process_id=int(pid))
import numpy as np
from ampspace.trainers import wave2wavenet as trainer
from trainer_util import tiny_config
assert jax.process_count() == 2 and jax.device_count() == 2
config = tiny_config(data_dir, **{"train.steps": 4, "train.log_data": True,
                                  "train.checkpoint_every": 2})
result = trainer.train_and_evaluate(config, workdir)
leaves = [np.asarray(x.addressable_shards[0].data) for x in jax.tree.leaves(result["params"])]
np.savez(out, *leaves)
print(json.dumps({"losses": [r["loss"] for r in result["history"]]}))
"""


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_split_the_batch_and_agree(tiny_data_dir, tmp_path):
  port = _free_port()
  workdir = str(tmp_path / "w")
  env = dict(
    os.environ,
    XLA_FLAGS="--xla_force_host_platform_device_count=1",
    PYTHONPATH=os.pathsep.join([REPO, os.path.join(REPO, "tests")]),
  )
  procs = [
    subprocess.Popen(
      [
        sys.executable,
        "-c",
        WORKER,
        str(port),
        str(i),
        tiny_data_dir,
        workdir,
        str(tmp_path / f"params{i}.npz"),
      ],
      cwd=REPO,
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
    for i in range(2)
  ]
  outs = []
  for p in procs:
    try:
      out, err = p.communicate(timeout=400)
    except subprocess.TimeoutExpired:
      for q in procs:
        q.kill()
      raise
    assert p.returncode == 0, err[-3000:]
    outs.append(json.loads(out.strip().splitlines()[-1]))
  # Same (replicated) loss and bitwise-identical parameters on both processes.
  assert outs[0]["losses"] == outs[1]["losses"] and len(outs[0]["losses"]) == 4
  p0, p1 = (np.load(tmp_path / f"params{i}.npz") for i in range(2))
  assert len(p0.files) == len(p1.files) > 0
  for k in p0.files:
    np.testing.assert_array_equal(p0[k], p1[k])
  # Each process fed its own half of every global batch (batch 4 -> 2 windows each).
  logs = []
  for i in range(2):
    with open(os.path.join(workdir, f"data_log.process{i}.jsonl")) as f:
      logs.append([json.loads(line) for line in f])
  assert [len(r["starts"]) for r in logs[0]] == [2] * 4
  assert all(a["digest"] != b["digest"] for a, b in zip(*logs))
  # Checkpoints were written jointly and restore.
  from ampspace.trainers import common

  _, params, step = common.restore_params(workdir, common.load_config(workdir))
  assert step == 4
  import jax

  for a, k in zip(jax.tree.leaves(params), p0.files):
    np.testing.assert_array_equal(np.asarray(a), p0[k])
