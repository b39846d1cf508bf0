"""Table 3 as Slurm job arrays: `python -m launch.launcher slurm_sweep` and the protocol's
stages (`python -m launch.sim_to_real --stage=...`).

Fast: the sweep scripts chain the stages with the right arrays and afterok dependencies; a
stage run out of order, or a cell out of range, is a one-line error; the protocol file.
Slow: the whole sweep at the tiny scale of tests/test_sim_to_real.py, submitted through
tests/fake_slurm.py's sbatch (real local processes stand in for the array tasks); then one
cell is deleted, as an interrupted sweep would leave it, and the same submit.sh trains that
cell alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

import fake_slurm
from ampspace import launcher
from ampspace.errors import AmpSpaceError
from ampspace.experiments import sim_to_real as s2r
from test_sim_to_real import TINY

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_protocol_file(tmp_path) -> str:
  path = tmp_path / "tiny.json"
  path.write_text(json.dumps(TINY))
  return str(path)


def test_sweep_scripts_chain_the_stages(tmp_path, capsys):
  work = tmp_path / "w"
  argv = [
    "slurm_sweep",
    "--dry_run",
    "--max_parallel=2",
    "--partition=gpu",
    "--python=py",
    "--repo=/src",
    "--",
    f"--workdir={work}",
    f"--protocol={tiny_protocol_file(tmp_path)}",
  ]
  assert launcher.main(argv) == 0
  out = capsys.readouterr().out
  # 2 seeds x (baseline, baseline_es) from scratch: 0-3; 2 fine-tuned + the zero-shot row: 4-6
  assert "scratch=$(job --dependency=afterok:$data --array=0-3%2 cell.sbatch)" in out
  assert "tuned=$(job --dependency=afterok:$pre --array=4-6%2 cell.sbatch)" in out
  assert "pre=$(job --dependency=afterok:$data pretrain.sbatch)" in out
  assert "report=$(job --dependency=afterok:$scratch:$tuned report.sbatch)" in out
  cells = out.split(f"# {work}/slurm/cell.sbatch\n")[1].split("\n# ")[0]
  assert "#SBATCH --partition=gpu" in cells and "#SBATCH --gpus-per-task=1" in cells
  assert f"#SBATCH --output={work}/slurm/logs/cell-%A_%a.out" in cells
  assert cells.rstrip().endswith(f"--protocol={tmp_path}/tiny.json --stage=cell")
  assert "cd /src\npy -m launch.sim_to_real" in cells
  assert not os.path.exists(work)  # a dry run writes nothing


def test_cells_in_array_order_and_stages_out_of_order_are_errors(tmp_path):
  p = s2r.Protocol(workdir=str(tmp_path), **TINY)
  plan = s2r.run_stage(p, "plan")
  assert (plan["cells"], plan["scratch"]) == (7, 4)
  models = [k["model"] for k in plan["keys"]]
  assert models == ["baseline"] * 2 + ["baseline_es"] * 2 + ["pretrained"] * 2 + [s2r.ZERO_SHOT]
  assert sorted(s2r.cell_keys(p), key=s2r.table_keys(p).index) == s2r.table_keys(p)
  with pytest.raises(AmpSpaceError, match="run --stage=data first"):
    s2r.run_stage(p, "cell", 0)
  # data made by this code: the cells that need the pretraining still wait for it
  stamp = {"code": s2r.code_fingerprint()["code"], "spec": json.loads(json.dumps(s2r.data_spec(p)))}
  s2r.write_json(os.path.join(p.workdir, s2r.DATA_FILE), stamp)
  with pytest.raises(AmpSpaceError, match=r"cell 6 \(gx_bossds1 zero_shot\) .*--stage=pretrain"):
    s2r.run_stage(p, "cell", 6)
  with pytest.raises(AmpSpaceError, match=r"--cell=7: this protocol has cells 0..6"):
    s2r.run_stage(p, "cell", 7)
  with pytest.raises(AmpSpaceError, match="pretraining not finished"):
    s2r.run_stage(p, "report")


def test_protocol_file(tmp_path):
  fields = s2r.load_protocol_file(tiny_protocol_file(tmp_path))
  assert fields["rows"] == ((5.0,),) and fields["real_devices"] == ("gx_bossds1",)
  assert s2r.Protocol(workdir="/w", **fields) == s2r.Protocol(workdir="/w", **TINY)
  bad = tmp_path / "bad.json"
  bad.write_text('{"seeds": [0], "workdri": "x"}')
  with pytest.raises(AmpSpaceError, match=r"bad.json: unknown protocol field\(s\) workdri;"):
    s2r.load_protocol_file(str(bad))
  bad.write_text("{seeds: 0")
  with pytest.raises(AmpSpaceError, match=r"bad.json: not JSON"):
    s2r.load_protocol_file(str(bad))


@pytest.mark.slow
def test_sweep_runs_as_job_arrays_then_resumes_one_lost_cell(tmp_path):
  state, work = tmp_path / "slurm_state", tmp_path / "w"
  env = fake_slurm.install(str(tmp_path / "bin"), str(state), single_thread=True)
  argv = [
    sys.executable,
    "-m",
    "launch.launcher",
    "slurm_sweep",
    "--submit",
    f"--python={sys.executable}",
    "--",
    f"--workdir={work}",
    f"--protocol={tiny_protocol_file(tmp_path)}",
  ]
  out = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr[-3000:]
  jobs = fake_slurm.jobs(str(state))
  assert all(j["ok"] for j in jobs), jobs
  data, pre, scratch, tuned, report = jobs
  assert [j["script"] for j in jobs] == [
    "data.sbatch",
    "pretrain.sbatch",
    "cell.sbatch",
    "cell.sbatch",
    "report.sbatch",
  ]
  assert scratch["tasks"] == [0, 1, 2, 3] and tuned["tasks"] == [4, 5, 6]
  assert pre["deps"] == scratch["deps"] == [str(data["id"])] and tuned["deps"] == [str(pre["id"])]
  assert report["deps"] == [str(scratch["id"]), str(tuned["id"])]

  p = s2r.Protocol(workdir=str(work), **TINY)
  manifest = json.load(open(work / "results" / "protocol.json"))
  assert [i["stage"] for i in manifest["invocations"]] == ["report"]
  cells = [c for c in manifest["cells"] if c["model"] != s2r.ZERO_SHOT]
  assert len(cells) == 6 and {c["model"] for c in cells} == set(s2r.MODELS)
  md = open(work / "results" / "sim_to_real_table.md").read()
  assert md.count("| pretrained + fine-tuned |") == 1, md
  # the same quality bar as the single-process run: every trained cell beats silence
  paths = {
    k: os.path.join(p.workdir, "targets", k.target, s2r.ZERO_SHOT, s2r.CELL_FILE)
    if k.model == s2r.ZERO_SHOT
    else os.path.join(s2r.Paths(p.workdir).run(k.target, k.gains, k.model, k.seed), s2r.CELL_FILE)
    for k in s2r.cell_keys(p)
  }
  for k, path in paths.items():
    if k.model != s2r.ZERO_SHOT:
      groups = json.load(open(path))["groups"]
      assert all(0 < g["esr"] < 1.0 for g in groups.values()), (k, groups)

  # An interrupted sweep: cell 1's run lost (its task killed before it started). The same
  # submit.sh trains that cell alone and reuses everything else.
  lost = s2r.cell_keys(p)[1]
  made = {k: os.path.getmtime(path) for k, path in paths.items() if k != lost}
  pretrain_made = os.path.getmtime(os.path.join(s2r.Paths(p.workdir).pretrain_run, s2r.RUN_FILE))
  shutil.rmtree(os.path.dirname(paths[lost]))
  again = subprocess.run(
    ["bash", str(work / "slurm" / "submit.sh")], env=env, capture_output=True, text=True
  )
  assert again.returncode == 0, again.stderr[-3000:]
  second = fake_slurm.jobs(str(state))[5:]
  assert len(second) == 5 and all(j["ok"] for j in second)
  assert os.path.exists(paths[lost])
  assert made == {k: os.path.getmtime(path) for k, path in paths.items() if k != lost}
  assert pretrain_made == os.path.getmtime(
    os.path.join(s2r.Paths(p.workdir).pretrain_run, s2r.RUN_FILE)
  )
  cell_logs = [open(state / f"{j['id']}_{t}.log").read() for j in second[2:4] for t in j["tasks"]]
  assert sum("(trained)" in log for log in cell_logs) == 1
  assert f"cell 1: {lost.label()} (trained)" in cell_logs[1]
  assert sum("(reused)" in log for log in cell_logs) == 6
  manifest = json.load(open(work / "results" / "protocol.json"))
  assert [i["stage"] for i in manifest["invocations"]] == ["report", "report"]


def test_search_sweep_shares_one_study_across_array_workers(tmp_path, capsys):
  argv = [
    "slurm_sweep",
    "--experiment=search",
    "--workers=4",
    "--dry_run",
    "--",
    "--workdir=/s",
    "--storage=postgresql://u@db/optuna",
    "--n_trials=40",
  ]
  assert launcher.main(argv) == 0
  out = capsys.readouterr().out
  assert "create=$(job create.sbatch)" in out
  assert "workers=$(job --dependency=afterok:$create --array=0-3 worker.sbatch)" in out
  assert "export=$(job --dependency=afterok:$workers export.sbatch)" in out
  worker = out.split("# /s/slurm/worker.sbatch\n")[1].split("\n# ")[0]
  assert "--storage=postgresql://u@db/optuna --n_trials=40 --stage=worker" in worker
  assert "--gpus-per-task=1" in worker
  assert "--gpus-per-task" not in out.split("# /s/slurm/create.sbatch\n")[1].split("\n# ")[0]


@pytest.mark.slow
def test_search_sweep_runs_its_workers_as_array_tasks(tmp_path, tiny_data_dir):
  from ampspace.experiments import search

  state, work = tmp_path / "slurm_state", tmp_path / "search"
  env = fake_slurm.install(str(tmp_path / "bin"), str(state), single_thread=True)
  sets = [
    f"dataset.data_dir={tiny_data_dir}",
    "input.window=128",
    "input.batch_size=2",
    "train.tensorboard=false",
  ]
  argv = [
    sys.executable,
    "-m",
    "launch.launcher",
    "slurm_sweep",
    "--experiment=search",
    "--workers=2",
    "--submit",
    f"--python={sys.executable}",
    "--",
    f"--workdir={work}",
    "--families=lstm",
    "--n_trials=2",
    "--steps=2",
    *[f"--set={x}" for x in sets],
  ]
  out = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr[-3000:]
  jobs = fake_slurm.jobs(str(state))
  assert [(j["script"], j["tasks"], j["ok"]) for j in jobs] == [
    ("create.sbatch", [None], True),
    ("worker.sbatch", [0, 1], True),
    ("export.sbatch", [None], True),
  ]
  s = search.Search(workdir=str(work))
  study = search.open_study(s)
  done = [t for t in study.trials if t.value is not None]
  assert len(done) >= 2  # both workers stop once the study holds n_trials (one may be running)
  assert os.path.exists(work / search.TRIALS_FILE) and os.path.exists(work / "best_config.py")
