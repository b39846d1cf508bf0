"""ampspace/experiments/sim_to_real.py (`python -m launch.sim_to_real`) and
configs/sim_to_real_*.py (paper Table 3, fair protocol).

Fast: the configs' shared architecture; the step budgets of the three models; the printed
commands parse (with the trainer's own flag parser) into exactly the configs the protocol
trains in-process; pooling, intervals, target checks, tables, CSV, plot and doc markers from
cell results; provenance (a cell is reused only when made by this code and config).
Slow: the whole protocol at a tiny scale on one Guitarix stand-in, then again with nothing
left to do.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shlex
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from ampspace import config_files
from ampspace.errors import AmpSpaceError
from ampspace.experiments import sim_to_real as s2r

TINY = dict(
  pretrain_devices=("tube_amp", "ts_overdrive"),
  real_devices=("gx_bossds1",),
  pretrain_dis=3,
  pretrain_di_seconds=0.5,
  real_dis=8,
  real_di_seconds=0.6,
  finetune_seconds_per_gain=1.0,
  pretrain_steps=30,
  finetune_steps=10,
  seeds=(0, 1),
  es_eval_every=10,
  es_patience=2,
  es_eval_windows=2,
  workers=2,
  rows=((5.0,),),
  overrides=(
    "model.depth=4",
    "model.channels=8",
    "input.window=256",
    "input.batch_size=4",
    "train.tensorboard=false",
    "train.log_every=5",
    "eval.write_audio=0",
  ),
)


def config_module(name: str):
  return config_files.config_module(f"sim_to_real_{name}")


def test_configs_share_the_architecture_and_filter_the_gains():
  pre = config_module("pretrain").get_config("runlocal")
  ft = config_module("finetune").get_config("runlocal,gains=3+7")
  base = config_module("baseline").get_config("runlocal,gains=3+7")
  assert pre.model.to_dict() == ft.model.to_dict() == base.model.to_dict()
  assert pre.dataset.name == "amp_space/synthetic" and not pre.dataset.build_if_missing
  assert ft.dataset.name == base.dataset.name == "amp_space/real"
  assert ft.dataset.filter == base.dataset.filter == "gain=3,7"
  assert ft.init_from == "runs/sim_to_real_local/pretrain" and base.init_from == ""
  assert base.optimizer.to_dict() == pre.optimizer.to_dict()
  assert pre.train.early_stopping_patience == 0
  paper = config_module("finetune").get_config("gains=5")
  assert paper.model.depth == 20 and paper.dataset.filter == "gain=5"
  with pytest.raises(ValueError, match="unknown config argument"):
    config_module("finetune").get_config("runlocal,gainz=5")


def test_pretraining_covers_the_real_devices_families_with_a_shared_gain_role():
  from ampspace.devices import get_device

  knobs = {d: s2r.gain_knob_of(d) for d in s2r.PRETRAIN_DEVICES}
  types = {get_device(d).device_type for d in s2r.PRETRAIN_DEVICES}
  assert {"amp", "overdrive", "distortion", "fuzz"} <= types
  assert set(knobs.values()) == {"gain", "drive", "fuzz", "sustain"}
  assert not set(s2r.PRETRAIN_DEVICES) & set(s2r.STAND_INS)  # no shared code or device
  assert all(d.startswith("gx_") for d in s2r.STAND_INS)
  assert s2r.pretrain_sweep(s2r.Protocol(workdir="/w"), "big_muff") == "one_knob_random:sustain@1"


def test_step_budgets_are_fair():
  p = s2r.Protocol(workdir="/w", pretrain_steps=1000, finetune_steps=200)
  t = s2r.targets(p)[1]
  assert t.name == "gx_bossds1" and t.knob == "drive"
  cfg = {m: s2r.load_run_config(p, m, t, (5.0,), seed=2) for m in s2r.MODELS}
  assert cfg["pretrained"].train.steps == 200 and cfg["pretrained"].init_from == "/w/pretrain"
  assert cfg["baseline"].train.steps == 1200 and cfg["baseline"].init_from == ""
  assert cfg["baseline_es"].train.steps == 1800
  assert cfg["baseline_es"].train.early_stopping_patience == p.es_patience
  assert cfg["baseline"].train.early_stopping_patience == 0
  assert {c.seed for c in cfg.values()} == {2}
  assert {c.dataset.data_dir for c in cfg.values()} == {"/w/tfds/real/gx_bossds1"}
  assert {c.dataset.name for c in cfg.values()} == {"amp_space/real_heldout"}
  assert cfg["baseline"].dataset.filter == "drive=5"


def test_dry_run_commands():
  p = s2r.Protocol(
    workdir="/w",
    rows=((5.0,), (3.0, 7.0)),
    finetune_seconds_per_gain=30,
    pretrain_devices=("tube_amp", "fuzz_face"),
  )
  cmds = s2r.dry_run_commands(p)
  assert cmds[0] == (
    "python -m ampspace.render --device=tube_amp "
    "--sweep=one_knob_random:gain@1 --di=/w/di/pretrain "
    "--out=/w/rendered/pretrain --seed=0"
  )
  assert "--sweep=one_knob_random:fuzz@1" in cmds[1]
  assert cmds[2] == (
    "python -m ampspace.capture --device=gx_amp --knob=gain --di=/w/di/real "
    "--out=/w/recordings/gx_amp --latency=117 --noise_dbfs=-96 "
    "--latency_by=blip --knob_range=-6,20"
  )
  assert "--latency_by=annotation" in cmds[3] and "--knob=drive" in cmds[3]
  assert cmds[4].startswith(
    "python -m tfds_ampspace.build tfds_ampspace/amp_space --config=synthetic_lenient"
  )
  assert cmds[5] == (
    "python -m tfds_ampspace.build tfds_ampspace/amp_space --config=real_heldout"
    " --file_format=array_record --data_dir=/w/tfds/real/gx_amp "
    "--manual_dir=/w/recordings/gx_amp"
  )
  assert cmds[7].startswith(
    "python -m ampspace.train --config=configs/sim_to_real_pretrain.py:"
    "runlocal --workdir=/w/pretrain"
  )
  runs = cmds[8:]
  assert len(runs) == 2 * 2 * 3 * 3  # targets x rows x models x seeds
  ft = shlex.split(runs[0])
  assert ft[3:5] == [
    "--config=configs/sim_to_real_finetune.py:runlocal,gains=5",
    "--workdir=/w/targets/gx_amp/ft_5/pretrained/seed0",
  ]
  assert "--config.init_from=/w/pretrain" in ft and "--config.seed=0" in ft
  assert not any(a.startswith("--config.init_from") for a in shlex.split(runs[3]))


def test_printed_command_is_the_config_trained_in_process(monkeypatch):
  """The trainer's own flag parser, fed the printed command, yields the in-process config."""
  from absl import flags

  p = s2r.Protocol(
    workdir="/w", overrides=("model.channels=8", "optimizer.learning_rate=0.002"), finetune_steps=40
  )
  t = s2r.targets(p)[0]
  spec = "gain=3,7;di_id=real_0001,real_0004"
  for kind in ("pretrain",) + s2r.MODELS:
    command = s2r.train_command(p, kind, "/w/run", t, (3.0, 7.0), spec, seed=1)
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "ampspace.train"]
    fv = flags.FlagValues()
    config_files.define_config_flag(
      "config", "", flag_values=fv, lock_config=True, sys_argv=["train", *argv[3:]]
    )  # overrides are read from it
    flags.DEFINE_string("workdir", None, "", flag_values=fv)
    monkeypatch.chdir(REPO)  # config paths are relative to the repository, as on the CLI
    fv(["train", *argv[3:]])
    assert fv.workdir == "/w/run"
    expected = s2r.load_run_config(p, kind, t, (3.0, 7.0), spec, seed=1)
    assert fv.config.to_dict() == expected.to_dict()
    assert expected.model.channels == 8 and expected.optimizer.learning_rate == 0.002
    if kind == "pretrained":
      assert expected.dataset.filter == spec and expected.train.steps == 40


def test_nam_layout_architecture_reaches_every_run(monkeypatch):
  """--architecture=nam_layout: every printed command names it, its config is NAM's layout in
  every run, and the pretrained checkpoint fits the fine-tuning's model."""
  monkeypatch.chdir(REPO)
  p = s2r.Protocol(workdir="/w", architecture="nam_layout", real_devices=("gx_amp",), seeds=(0,))
  t = s2r.targets(p)[0]
  configs = {}
  for kind in ("pretrain",) + s2r.MODELS:
    command = s2r.train_command(p, kind, "/w/run", t, (5.0,), "gain=5", seed=0)
    assert ",nam_layout" in shlex.split(command)[3], command
    configs[kind] = s2r.load_run_config(p, kind, t, (5.0,), "gain=5", seed=0)
  for kind, c in configs.items():
    assert c.model.name == "layer_array_wavenet" and c.loss.name == "mse", kind
    assert c.model.to_dict() == configs["pretrain"].model.to_dict()
  assert configs["pretrained"].init_from == "/w/pretrain"
  assert configs["pretrained"].init_polarity == "match"  # the layer-array model inverts too
  paper = s2r.load_run_config(s2r.Protocol(workdir="/w"), "pretrain")
  assert paper.model.name == "wave2wavenet"


def test_architecture_and_models_flags(tmp_path):
  """The command line's --architecture and --models reach the dry run; a bad model is one line."""
  base = [sys.executable, "-m", "launch.sim_to_real", "--dry_run", f"--workdir={tmp_path}"]
  base += ["--real_devices=gx_amp", "--seeds=0", "--rows=5"]
  out = subprocess.run(
    base + ["--architecture=nam_layout", "--models=baseline,pretrained"],
    cwd=REPO,
    capture_output=True,
    text=True,
    check=True,
  ).stdout
  trains = [line for line in out.splitlines() if line.startswith("python -m ampspace.train")]
  assert len(trains) == 3  # pretraining, then the fine-tuned and the equal-steps baseline
  assert all(":runlocal,nam_layout" in line for line in trains)
  assert "/ft_5/pretrained/seed0" in trains[1] and "/ft_5/baseline/seed0" in trains[2]
  bad = subprocess.run(
    base + ["--models=pretrained,oracle"], cwd=REPO, capture_output=True, text=True
  )
  assert bad.returncode != 0
  assert "--models ['pretrained', 'oracle']: use some of pretrained, baseline, baseline_es" in (
    bad.stderr
  )


def test_bad_override_or_device_is_an_error():
  p = s2r.Protocol(workdir="/w", overrides=("model.chanels=8",))
  with pytest.raises(s2r.AmpSpaceError, match="chanels"):
    s2r.load_run_config(p, "pretrain")
  p = s2r.Protocol(workdir="/w", overrides=("train.steps=many",))
  with pytest.raises(s2r.AmpSpaceError, match="expected a int"):
    s2r.load_run_config(p, "pretrain")
  with pytest.raises(s2r.AmpSpaceError, match="no stand-in of that name"):
    s2r.targets(s2r.Protocol(workdir="/w", real_devices=("tube_amp",)))


def test_user_recordings_replace_the_stand_ins(tmp_path):
  p = s2r.Protocol(workdir="/w", real_dir=str(tmp_path / "my_amp"), real_knob="drive")
  (t,) = s2r.targets(p)
  assert (t.name, t.recordings, t.knob, t.standin) == (
    "my_amp",
    str(tmp_path / "my_amp"),
    "drive",
    None,
  )
  assert not any("ampspace.capture" in c for c in s2r.data_commands(p))


def _clip(gain, sse, sst, n=44100):
  return {
    "gain": gain,
    "samples": n,
    "sse": sse,
    "sst": sst,
    "sse_pre": 2 * sse,
    "sst_pre": sst,
    "clip_id": f"c{gain}",
  }


def test_pooled_metrics_sum_before_dividing():
  g = s2r.pooled([_clip(5, 1.0, 10.0), _clip(5, 1.0, 90.0)])
  assert g["esr"] == pytest.approx(0.02)  # not the mean of 0.1 and 0.011
  assert g["esr_pre"] == pytest.approx(0.04) and g["mse"] == pytest.approx(2 / 88200)
  assert g["seconds"] == 2.0


def test_pooled_level_and_inverted_polarity():
  rng = np.random.default_rng(0)
  t = rng.normal(size=1000)

  def clip(pred):
    return {
      **_clip(5, float(np.sum((t - pred) ** 2)), float(np.sum(t**2)), n=len(t)),
      "ssp": float(np.sum(pred**2)),
      "spt": float(np.sum(pred * t)),
    }

  flipped = s2r.pooled([clip(-2.0 * t)])  # twice as loud, polarity inverted
  assert flipped["esr"] == pytest.approx(9.0) and flipped["esr_inverted"] == pytest.approx(1.0)
  assert flipped["level_db"] == pytest.approx(20 * np.log10(2.0))
  right = s2r.pooled([clip(0.9 * t)])
  assert right["esr"] == pytest.approx(0.01) and right["esr_inverted"] == pytest.approx(3.61)
  assert "level_db" not in s2r.pooled([_clip(5, 1.0, 10.0)])  # records made without the sums


def test_finetune_overrides_reach_the_fine_tuning_runs_only():
  p = s2r.Protocol(
    workdir="/w", real_devices=("gx_bossds1",), finetune_overrides=("optimizer.learning_rate=5e-4",)
  )
  (t,) = s2r.targets(p)
  cfg = {m: s2r.load_run_config(p, m, t, (5.0,)) for m in s2r.MODELS}
  assert cfg["pretrained"].optimizer.learning_rate == 5e-4
  base = s2r.load_run_config(s2r.Protocol(workdir="/w"), "pretrained", t, (5.0,))
  assert base.optimizer.learning_rate != 5e-4
  for m in ("baseline", "baseline_es"):
    assert (
      cfg[m].optimizer.learning_rate
      == s2r.load_run_config(s2r.Protocol(workdir="/w"), m, t, (5.0,)).optimizer.learning_rate
    )
  assert "optimizer.learning_rate" in s2r.run_overrides(
    p, "pretrained", t, (5.0,)
  ) and "optimizer.learning_rate" not in s2r.run_overrides(p, "pretrain")
  with pytest.raises(s2r.AmpSpaceError, match="--finetune_set"):
    s2r.run_overrides(
      s2r.Protocol(workdir="/w", finetune_overrides=("lr",)), "pretrained", t, (5.0,)
    )


def test_interval_is_the_student_t_interval():
  mean, half = s2r.interval([1.0, 2.0, 3.0])
  assert mean == 2.0 and half == pytest.approx(4.303 * 1.0 / np.sqrt(3))
  assert np.isnan(s2r.interval([1.0])[1])


def fake_cell(target, gains, model, seed, esr_at_5):
  """A cell's evaluation record (the values are inputs to the formatting, not results)."""
  groups = {
    s2r.group_label(t): {
      "clips": 6 * len(t),
      "seconds": 30.0 * len(t),
      "esr": esr_at_5 * (1 + abs(t[0] - 5)) * (1 + 0.01 * seed),
      "esr_pre": 0.5,
      "mse": 1e-3 * (1 + seed),
    }
    for t in s2r.PAPER_TEST_GROUPS
  }
  return {
    "target": target,
    "finetune_gains": list(gains),
    "model": model,
    "seed": seed,
    "train": {"steps": 4},
    "groups": groups,
  }


def test_tables_checks_csv_plot_and_doc_markers(tmp_path):
  doc = tmp_path / "doc.md"
  doc.write_text(
    f"# Results\nMarkers `{s2r.TABLE_BEGIN}` in text stay.\n{s2r.TABLE_BEGIN}\nold\n"
    f"{s2r.TABLE_END}\ntail\n"
  )
  p = s2r.Protocol(
    workdir=str(tmp_path / "w"), results_dir=str(tmp_path / "res"), update_docs=(str(doc),)
  )
  esr = {"pretrained": 0.01, "baseline": 0.1, "baseline_es": 0.004}
  cells = [
    fake_cell(t, r, m, s, esr[m])
    for t in ("gx_amp", "gx_bossds1")
    for r in p.rows
    for m in s2r.MODELS
    for s in p.seeds
  ]
  zero = fake_cell("gx_amp", (), s2r.ZERO_SHOT, 0, 2.0)
  zero["train"]["steps"] = 0
  for g in zero["groups"].values():
    g.update(level_db=4.0, esr_inverted=0.8)
  cells.append(zero)
  prov = {"commit": "0123456789abcdef", "dirty": False, "code": "c0de", "made": "today"}
  out = s2r.write_results(p, cells, "python -m launch.sim_to_real --scale=runlocal", prov)
  md = out["markdown"]
  assert "Generated by `python -m launch.sim_to_real --scale=runlocal` at commit 0123456789ab" in md
  assert md.count("**gx_amp**") == 1 and md.count("| pretrained + fine-tuned |") == 6
  # the zero-shot reference: one row, no interval, outside the target checks
  assert md.count("| none | pretrained, no fine-tuning | 0 | 2.000 | 4.000 |") == 1
  assert "output at 5 is +4.0 dB from the target's level" in md
  assert "with its polarity inverted" in md.split("**gx_bossds1**")[0]
  assert "with its polarity inverted" not in md.split("**gx_bossds1**")[1]
  line = [l for l in md.splitlines() if l.startswith("| 5 | pretrained")][0]
  half = s2r.interval([0.01, 0.0101, 0.0102])[1]
  assert line.startswith(f"| 5 | pretrained + fine-tuned | 4 | 0.010 ± {half:.3f} |")
  # early stopping beat pretrained here: the check says so and names where
  c = out["checks"]["gx_amp"]
  assert not c["pretrained_beats_both_baselines_everywhere"] and "baseline_es" in c["misses"][0]
  assert c["intervals_apart_at"] == [] and "in the mean, with the 95% intervals apart at no" in md
  # a win in the mean is not a win beyond the seeds' spread: the baselines' seeds here straddle
  # the pretrained model's at 5 and lie far above it elsewhere
  spread = {"pretrained": [0.01] * 3, "baseline": [0.1] * 3, "baseline_es": [0.005, 0.011, 0.02]}
  wide = [
    fake_cell(t, r, m, s, spread[m][s])
    for t in ("gx_amp",)
    for r in p.rows
    for m in s2r.MODELS
    for s in p.seeds
  ]
  for cell in wide:
    if cell["model"] == "baseline_es":
      for label, g in cell["groups"].items():
        if label != "5":
          g["esr"] = 0.1
  checks = s2r.target_checks(p, s2r.summarise(p, wide))["gx_amp"]
  assert checks["pretrained_beats_both_baselines_everywhere"]
  assert checks["intervals_apart_at"] == ["{4,6}", "{3,7}", "{2,8}"]
  assert c["esr_at_center"] == pytest.approx(0.0101) and c["esr_at_center_ok"]
  assert "quoted, not measured here" in md and "**no**" in md
  rows = list(csv.DictReader(io.StringIO((tmp_path / "res" / "sim_to_real_table.csv").read_text())))
  assert len(rows) == (2 * 3 * 3 + 1) * 4 and json.loads(rows[0]["esr_per_seed"])
  for folder in (tmp_path / "w" / "results", tmp_path / "res"):
    png = (folder / "sim_to_real_esr_vs_gain.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
  text = doc.read_text()
  assert "old" not in text and "| 5 | baseline, equal steps |" in text and text.endswith("tail\n")
  s2r.write_results(p, cells, "again", prov)  # the markers survive a refill
  assert doc.read_text().count(s2r.TABLE_BEGIN) == 2 and "Generated by `again`" in doc.read_text()


def test_a_cell_is_reused_only_when_made_by_this_code_and_config(tmp_path, monkeypatch):
  from ampspace import trainers

  p = s2r.Protocol(workdir=str(tmp_path), real_devices=("gx_bossds1",))
  (t,) = s2r.targets(p)
  job = s2r.CellJob(t, (5.0,), "baseline", 0, "drive=5", {})
  config = s2r.load_run_config(p, "baseline", t, (5.0,), "drive=5", 0)
  path = os.path.join(s2r.Paths(p.workdir).run(t.name, (5.0,), "baseline", 0), s2r.CELL_FILE)
  os.makedirs(os.path.dirname(path))
  made = {"code": "c0de", "config_hash": s2r.config_hash(config)}
  s2r.write_json(path, {**fake_cell(t.name, (5.0,), "baseline", 0, 0.1), "provenance": made})

  class Trained(Exception):
    pass

  def trainer(name):
    raise Trained

  monkeypatch.setattr(trainers, "get_trainer", trainer)
  reused = s2r.run_cell(p, job, {"code": "c0de", "commit": "x", "dirty": False})
  assert reused["trained_now"] is False and reused["provenance"] == made
  with pytest.raises(Trained):  # other code: trained again
    s2r.run_cell(p, job, {"code": "other", "commit": "x", "dirty": False})
  s2r.write_json(path, {**fake_cell(t.name, (5.0,), "baseline", 0, 0.1), "provenance": made})
  other = s2r.Protocol(workdir=str(tmp_path), real_devices=("gx_bossds1",), finetune_steps=7)
  with pytest.raises(Trained):  # another config: trained again
    s2r.run_cell(other, job, {"code": "c0de", "commit": "x", "dirty": False})


def test_code_fingerprint_follows_the_code(tmp_path):
  for d in ("ampspace", "configs"):
    (tmp_path / d).mkdir()
  (tmp_path / "ampspace" / "a.py").write_text("x = 1\n")
  first = s2r.code_fingerprint(str(tmp_path))
  assert first == s2r.code_fingerprint(str(tmp_path))
  (tmp_path / "ampspace" / "a.py").write_text("x = 2\n")
  assert s2r.code_fingerprint(str(tmp_path))["code"] != first["code"]


@pytest.mark.slow
def test_tiny_protocol_end_to_end_then_reuses_everything(tmp_path, monkeypatch):
  p = s2r.Protocol(workdir=str(tmp_path / "w"), **TINY)
  result = s2r.run_protocol(p)
  cells = result["cells"]
  assert len(cells) == 3 * 2 + 1  # models x seeds, and the zero-shot reference
  (zero,) = [c for c in cells if c["model"] == s2r.ZERO_SHOT]
  assert zero["train"]["steps"] == 0 and all(
    np.isfinite(g["esr"]) and np.isfinite(g["level_db"]) for g in zero["groups"].values()
  )
  cells = [c for c in cells if c["model"] != s2r.ZERO_SHOT]
  for c in cells:
    assert set(c["groups"]) == {"5", "{4,6}", "{3,7}", "{2,8}"}
    assert c["trained_now"] and c["provenance"]["code"]
    # a 10-to-80-step tiny model only has to beat silence (ESR 1); the protocol's own
    # table holds the real quality figures
    assert all(0 < g["esr"] < 1.0 for g in c["groups"].values()), c["groups"]
    assert len(c["clips"]) == c["groups"]["5"]["clips"] + sum(
      g["clips"] for k, g in c["groups"].items() if k != "5"
    )
  steps = {c["model"]: c["train"]["steps"] for c in cells}
  assert steps["pretrained"] == 10 and steps["baseline"] == 40 and steps["baseline_es"] <= 60
  # the stand-in reached the model as a recording, its latency measured from the annotation
  report = json.load(
    open(
      os.path.join(
        s2r.Paths(p.workdir).real_data("gx_bossds1"),
        "amp_space",
        "real_heldout",
        "1.4.0",
        "ingest_report.json",
      )
    )
  )
  assert {(r["source"], r["lag_samples_min"]) for r in report["latency"]} == {("annotation", 117)}
  md = open(os.path.join(p.workdir, "results", "sim_to_real_table.md")).read()
  assert md.count("| pretrained + fine-tuned |") == 1
  assert md.count("| pretrained, no fine-tuning |") == 1

  from ampspace import trainers

  def no_work(*a, **k):
    raise AssertionError("a finished cell ran again")

  monkeypatch.setattr(trainers, "get_trainer", no_work)
  monkeypatch.setattr(s2r, "evaluate_run", no_work)
  again = s2r.run_protocol(p)
  assert not any(c["trained_now"] for c in again["cells"])
  # (as JSON: the zero-shot row's one-seed interval is NaN, which never equals itself)
  assert json.dumps(again["summary"], sort_keys=True) == json.dumps(
    result["summary"], sort_keys=True
  )
  manifest = json.load(open(os.path.join(p.workdir, "results", "protocol.json")))
  assert [(i["trained"], i["reused"]) for i in manifest["invocations"]] == [(7, 0), (0, 7)]


def test_finetune_selection_takes_the_first_dis_by_id_until_every_gain_has_enough(
  tmp_path, monkeypatch
):
  def note(di, gain):
    return {"di_id": di, "seconds": 5.0, "knobs": {"gain": gain, "bass": 5.0}}

  splits = {
    "train": [note(d, g) for d in ("real_0003", "real_0001", "real_0002") for g in (3.0, 5.0)]
    + [note("real_0004", 7.0)],
    "validation": [note("real_0009", 5.0), note("real_0008", 3.0)],
  }
  monkeypatch.setattr(s2r, "annotation_table", lambda data_dir, split: splits[split])
  p = s2r.Protocol(workdir=str(tmp_path), finetune_seconds_per_gain=8.0)
  target = s2r.Target(name="my_amp", recordings="", knob="gain", standin=None)
  spec, chosen = s2r.finetune_selection(p, target, (5.0,))
  assert spec == "gain=5;di_id=real_0001,real_0002,real_0008,real_0009"
  assert chosen == {"train_dis": ["real_0001", "real_0002"], "seconds_per_gain": {"5": 10.0}}
  _, chosen = s2r.finetune_selection(p, target, (3.0, 7.0))
  assert chosen["train_dis"] == ["real_0001", "real_0002", "real_0003", "real_0004"]
  assert chosen["seconds_per_gain"] == {"3": 15.0, "7": 5.0}
  with pytest.raises(AmpSpaceError, match="no recording at gain=\\[2.0\\]"):
    s2r.finetune_selection(p, target, (2.0, 5.0))
