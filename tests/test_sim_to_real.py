"""launch/sim_to_real.py and configs/sim_to_real_*.py (paper Table 3).

Fast: the configs' shared architecture and gain filters; the printed commands parse (with the
trainer's own flag parser) into exactly the configs the protocol trains in-process; the table,
CSV, plot and doc markers from cell results; finished cells are skipped without training.
Slow: the whole protocol at a tiny scale, then again with nothing left to do.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shlex
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # launch/ is a folder of scripts at the repository root

from ampspace import config_files  # noqa: E402
from launch import sim_to_real as s2r  # noqa: E402

TINY = dict(pretrain_devices=("tube_amp", "tube_amp_mesa"), pretrain_dis=3,
            pretrain_di_seconds=0.5, real_dis=6, real_di_seconds=0.5,
            finetune_seconds_per_gain=1.0, pretrain_steps=6, finetune_steps=4,
            overrides=("model.depth=3", "model.channels=4", "input.window=256",
                       "input.batch_size=2", "train.tensorboard=false", "train.log_every=2",
                       "eval.write_audio=0"))


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
  assert base.train.steps == ft.train.steps
  paper = config_module("finetune").get_config("gains=5")
  assert paper.model.depth == 20 and paper.dataset.filter == "gain=5"
  with pytest.raises(ValueError, match="unknown config argument"):
    config_module("finetune").get_config("runlocal,gainz=5")


def test_dry_run_commands(tmp_path):
  p = s2r.Protocol(workdir="/w", rows=((5.0,), (3.0, 7.0)), finetune_seconds_per_gain=30)
  cmds = s2r.dry_run_commands(p)
  assert cmds[0] == ("python -m ampspace.render --device=tube_amp "
                     "--sweep=one_knob_random:gain@1 --di=/w/di/pretrain "
                     "--out=/w/rendered/pretrain --seed=0")
  n = len(p.pretrain_devices)
  assert cmds[n].startswith("python -m ampspace.render --device=tube_amp_el84 "
                            "--sweep=one_knob:gain=2,3,4,5,6,7,8 --di=/w/di/real --out=/w/recordings")
  assert cmds[n + 2] == ("python -m tfds_ampspace.build tfds_ampspace/amp_space --config=real "
                         "--file_format=array_record --data_dir=/w/tfds/real "
                         "--manual_dir=/w/recordings")
  assert cmds[n + 3] == ("python -m ampspace.train --config=configs/sim_to_real_pretrain.py:runlocal"
                         " --workdir=/w/pretrain --config.dataset.data_dir=/w/tfds/pretrain "
                         "--config.dataset.manual_dir=/w/rendered/pretrain")
  runs = cmds[n + 4:]
  assert len(runs) == 4  # 2 rows x (fine-tune, baseline)
  ft = shlex.split(runs[2])
  assert ft[3:5] == ["--config=configs/sim_to_real_finetune.py:runlocal,gains=3+7",
                     "--workdir=/w/rows/ft_3_7/pretrained"]
  assert "--config.init_from=/w/pretrain" in ft
  assert [a for a in ft if a.startswith("--config.dataset.filter=")][0].startswith(
      "--config.dataset.filter=gain=3,7;di_id=<training DIs giving 30 s per gain")
  base = shlex.split(runs[3])
  assert base[3] == "--config=configs/sim_to_real_baseline.py:runlocal,gains=3+7"
  assert not any(a.startswith("--config.init_from") for a in base)


def test_printed_command_is_the_config_trained_in_process(monkeypatch):
  """The trainer's own flag parser, fed the printed command, yields the in-process config."""
  from absl import flags
  from ml_collections import config_flags

  p = s2r.Protocol(workdir="/w", overrides=("model.channels=8", "optimizer.learning_rate=0.002"),
                   finetune_steps=40)
  spec = "gain=3,7;di_id=real_0001,real_0004"
  for kind in ("pretrain", "pretrained", "baseline"):
    command = s2r.train_command(p, kind, "/w/run", (3.0, 7.0), spec)
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "ampspace.train"]
    fv = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "", flag_values=fv, lock_config=True,
                                    sys_argv=["train", *argv[3:]])  # overrides are read from it
    flags.DEFINE_string("workdir", None, "", flag_values=fv)
    monkeypatch.chdir(REPO)  # config paths are relative to the repository, as on the CLI
    fv(["train", *argv[3:]])
    assert fv.workdir == "/w/run"
    expected = s2r.load_run_config(p, kind, (3.0, 7.0), spec)
    assert fv.config.to_dict() == expected.to_dict()
    assert expected.model.channels == 8 and expected.optimizer.learning_rate == 0.002
    if kind != "pretrain":
      assert expected.dataset.filter == spec and expected.train.steps == 40


def test_bad_override_is_an_error():
  p = s2r.Protocol(workdir="/w", overrides=("model.chanels=8",))
  with pytest.raises(s2r.AmpSpaceError, match="chanels"):
    s2r.load_run_config(p, "pretrain")
  p = s2r.Protocol(workdir="/w", overrides=("train.steps=many",))
  with pytest.raises(s2r.AmpSpaceError, match="expected a int"):
    s2r.load_run_config(p, "pretrain")


def fake_cell(gains, model, mse_at_5):
  """A cell's evaluation record (the values are inputs to the formatting, not results)."""
  groups = {s2r.group_label(t): {"clips": 2 * len(t), "mse": mse_at_5 * (1 + abs(t[0] - 5)),
                                 "esr": 0.1 * (1 + abs(t[0] - 5)), "mr_stft": 1.0}
            for t in s2r.PAPER_TEST_GROUPS}
  return {"finetune_gains": list(gains), "model": model, "train": {"steps": 4},
          "seconds_per_gain": {f"{g:g}": 12.0 for g in gains}, "groups": groups,
          "step": 4, "pretrain_steps": 6}


def test_table_csv_plot_and_doc_markers(tmp_path):
  doc = tmp_path / "doc.md"
  doc.write_text(f"# Results\nMarkers `{s2r.TABLE_BEGIN}` in text stay.\n{s2r.TABLE_BEGIN}\nold\n"
                 f"{s2r.TABLE_END}\ntail\n")
  p = s2r.Protocol(workdir=str(tmp_path / "w"), results_dir=str(tmp_path / "res"),
                   update_docs=(str(doc),))
  cells = [fake_cell(r, m, 1e-3 * (i + 1)) for i, r in enumerate(p.rows) for m in s2r.MODELS]
  out = s2r.write_results(p, cells, "python -m launch.sim_to_real --scale=runlocal")
  md = out["markdown"].splitlines()
  header = [l for l in md if l.startswith("| fine-tune gains")][0]
  assert header == ("| fine-tune gains | model | 5 | {4,6} | {3,7} | {2,8} | ESR 5 | ESR {4,6} | "
                    "ESR {3,7} | ESR {2,8} |")
  body = [l for l in md if l.startswith("| ") and not l.startswith("| fine-tune")]
  assert len(body) == 6
  assert body[0] == "| 5 | baseline | 1.000 | 2.000 | 3.000 | 4.000 | 0.100 | 0.200 | 0.300 | 0.400 |"
  assert body[3].startswith("| {3,7} | pretrained | 2.000 |")
  assert "Generated by `python -m launch.sim_to_real --scale=runlocal`" in md[0]
  assert any("quoted, not measured here" in l for l in md)
  rows = list(csv.DictReader(io.StringIO(open(tmp_path / "res" / "sim_to_real_table.csv").read())))
  assert len(rows) == 6 * 4
  assert rows[1] == {"finetune_gains": "5", "model": "baseline", "test_gains": "{4,6}",
                     "clips": "4", "mse_x1e3": "2.0", "esr": "0.2", "mr_stft": "1.0",
                     "finetune_seconds_per_gain": "12.0", "steps": "4"}
  for folder in (tmp_path / "w" / "results", tmp_path / "res"):
    png = open(folder / "sim_to_real_mse_vs_gain.png", "rb").read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
  text = doc.read_text()
  assert "old" not in text and "| 5 | baseline | 1.000" in text and text.endswith("tail\n")
  assert text.startswith(f"# Results\nMarkers `{s2r.TABLE_BEGIN}` in text stay.\n")
  s2r.write_results(p, cells, "again")  # idempotent structure: markers survive a refill
  assert doc.read_text().count(s2r.TABLE_BEGIN) == 2 and "Generated by `again`" in doc.read_text()


def test_finished_cells_are_skipped_without_training(tmp_path, monkeypatch):
  from ampspace import trainers

  p = s2r.Protocol(workdir=str(tmp_path))
  cell = fake_cell((5.0,), "pretrained", 1e-3)
  path = os.path.join(s2r.Paths(p.workdir).run((5.0,), "pretrained"), s2r.CELL_FILE)
  os.makedirs(os.path.dirname(path))
  s2r.write_json(path, cell)
  done = os.path.join(s2r.Paths(p.workdir).run((5.0,), "baseline"), s2r.DONE_FILE)
  os.makedirs(os.path.dirname(done))
  s2r.write_json(done, {"steps": 4})

  def no_training(name):
    raise AssertionError("a finished run was trained again")

  monkeypatch.setattr(trainers, "get_trainer", no_training)
  assert s2r.run_cell(p, (5.0,), "pretrained", "gain=5", {}) == {**cell, "skipped": True}
  assert s2r.train_once(p, "baseline", os.path.dirname(done), (5.0,)) == {"steps": 4}


def test_relabel_as_recording_is_idempotent(tmp_path):
  import yaml

  folder = tmp_path / "rec" / "b" / "native" / "tube_amp_el84" / "sweep" / "di_0"
  folder.mkdir(parents=True)
  (folder / "settings.yaml").write_text(yaml.safe_dump(
      {"device": "tube_amp_el84", "brand": "amp-space", "source": "synthetic",
       "data_type": "synthetic", "di_file": "di/di_0.wav", "files": []}))
  assert s2r.relabel_as_recording(str(tmp_path / "rec"), "tube_amp_el84") == 1
  assert s2r.relabel_as_recording(str(tmp_path / "rec"), "tube_amp_el84") == 0
  meta = yaml.safe_load((folder / "settings.yaml").read_text())
  assert meta["device"] == "heldout_tube_amp_el84" and meta["source"] == "real"
  from ampspace.conditioning import device_index
  assert device_index(meta["device"]) == 0  # the model sees "other"


@pytest.mark.slow
def test_tiny_protocol_end_to_end_then_skips_everything(tmp_path, monkeypatch):
  p = s2r.Protocol(workdir=str(tmp_path / "w"), **TINY)
  result = s2r.run_protocol(p)
  cells = result["cells"]
  assert [(c["finetune_gains"], c["model"]) for c in cells] == [
      ([5.0], "baseline"), ([5.0], "pretrained"), ([3.0, 7.0], "baseline"),
      ([3.0, 7.0], "pretrained"), ([2.0, 8.0], "baseline"), ([2.0, 8.0], "pretrained")]
  for c in cells:
    assert set(c["groups"]) == {"5", "{4,6}", "{3,7}", "{2,8}"}
    assert c["groups"]["5"]["clips"] >= 1 and c["groups"]["{2,8}"]["clips"] >= 2
    assert all(0 < g["mse"] < 1 for g in c["groups"].values())
    assert all(v >= p.finetune_seconds_per_gain for v in c["seconds_per_gain"].values())
    assert c["train"]["steps"] == 4
  # The held-out device reached the model as a real recording of an "other" device.
  real = s2r.annotation_table(s2r.Paths(p.workdir).real_data, "test")
  assert real and {a["knobs"]["gain"] for a in real} == {2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0}
  # Fine-tuning started from the pretrained checkpoint, the baseline from scratch.
  runs = {c["model"]: c for c in cells[:2]}
  assert "--config.init_from=" in runs["pretrained"]["train"]["command"]
  assert "--config.init_from=" not in runs["baseline"]["train"]["command"]
  md = open(os.path.join(p.workdir, "results", "sim_to_real_table.md")).read()
  assert md.count("| pretrained |") == 3 and md.count("| baseline |") == 3

  from ampspace import trainers, evaluate

  def no_work(*a, **k):
    raise AssertionError("a finished cell ran again")

  monkeypatch.setattr(trainers, "get_trainer", no_work)
  monkeypatch.setattr(evaluate, "evaluate", no_work)
  again = s2r.run_protocol(p)
  assert all(c.pop("skipped") for c in again["cells"])
  assert json.dumps(again["cells"], sort_keys=True) == json.dumps(cells, sort_keys=True)
  assert again["markdown"] == result["markdown"]
  manifest = json.load(open(os.path.join(p.workdir, "results", "protocol.json")))
  assert [i["trained"] for i in manifest["invocations"]] == [6, 0]
