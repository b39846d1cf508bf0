"""benchmarks/bench_accuracy.py's scoring and target checks (the race itself is a benchmark)."""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SR = 44100


@pytest.fixture(scope="module")
def bench():
  spec = importlib.util.spec_from_file_location(
    "bench_accuracy", os.path.join(REPO, "benchmarks", "bench_accuracy.py")
  )
  module = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = module  # its dataclasses look their module up
  spec.loader.exec_module(module)
  return module


def _clip(rng, tail_seconds=0.5, level=0.3):
  """0.5 s of noise 'music' then silence; the target rings out for 20 ms after the DI stops."""
  n_music, n_tail = SR // 2, int(tail_seconds * SR)
  di = np.concatenate([level * rng.standard_normal(n_music), np.zeros(n_tail)])
  target = np.tanh(3 * di)
  target[n_music : n_music + 882] = 0.1 * rng.standard_normal(882)  # the ring-out
  return {"di": di.astype(np.float32), "target": target, "cond": np.zeros(3, np.float32)}


def test_silence_mask_takes_stretches_of_100_ms_where_di_and_target_are_quiet(bench):
  rng = np.random.default_rng(0)
  c = _clip(rng)
  mask = bench.silence_mask(c["di"], c["target"])
  # Not in the music, not in the ring-out (target still loud), all of the quiet tail after it
  # in whole 10 ms frames.
  assert not mask[: SR // 2 + 882].any()
  quiet = np.flatnonzero(mask)
  assert quiet[0] <= SR // 2 + 882 + 441 and quiet[-1] >= SR // 2 + int(0.5 * SR) - 441
  # A quiet stretch shorter than 100 ms does not count.
  short = _clip(rng, tail_seconds=0.08)
  assert not bench.silence_mask(short["di"], short["target"]).any()


def test_score_pools_esr_and_reports_the_dc_floor_in_silence(bench):
  rng = np.random.default_rng(1)
  clips = [_clip(rng), _clip(rng, level=0.5)]
  perfect = bench.score(lambda c: c["target"], clips)
  assert perfect["esr"] == 0.0 and perfect["esr_pre"] == 0.0
  assert perfect["silence_seconds"] > 0.7
  assert perfect["silence_dbfs"] == perfect["target_silence_dbfs"] == -120.0  # digital silence
  dc = bench.score(lambda c: c["target"] + 0.01, clips)  # a -40 dBFS DC offset everywhere
  assert dc["silence_dbfs"] == pytest.approx(-40.0, abs=0.01)
  sst = sum(float(np.sum(c["target"] ** 2)) for c in clips)
  n = sum(len(c["target"]) for c in clips)
  assert dc["esr"] == pytest.approx(n * 1e-4 / sst, rel=1e-6)  # pooled, not a mean of clips
  half = bench.score(lambda c: 0.5 * c["target"], clips)
  assert half["esr"] == pytest.approx(0.25, rel=1e-9)


def _scores(esr_by_seconds, silence=-80.0):
  return {
    "scores": [
      {
        "seconds": s,
        "step": 1,
        "esr": e,
        "esr_pre": e,
        "silence_dbfs": silence,
        "target_silence_dbfs": -90.0,
      }
      for s, e in esr_by_seconds.items()
    ]
  }


def test_target_checks_compare_the_right_budgets(bench):
  race = {"nam": [120.0, 300.0, 600.0], "from_scratch": [120.0, 300.0], "finetune": [60.0, 120.0]}
  good = {
    "nam": _scores({120.0: 0.05, 300.0: 0.02, 600.0: 0.01}),
    "ours_nam_layout": _scores({120.0: 0.03, 300.0: 0.009}),
    "ours_paper": _scores({120.0: 0.07, 300.0: 0.025}),
    "ours_lstm": _scores({120.0: 0.2, 300.0: 0.1}),
    "ours_finetune": _scores({60.0: 0.02, 120.0: 0.008}),
  }
  bad = {
    **good,
    "ours_nam_layout": _scores({120.0: 0.03, 300.0: 0.011}),
    "ours_paper": _scores({120.0: 0.08, 300.0: 0.02}),  # 1.6x NAM at 2 minutes
    "ours_finetune": _scores({60.0: 0.02, 120.0: 0.012}),
    "ours_lstm": _scores({120.0: 0.2, 300.0: 0.1}, silence=-30.0),
  }
  checks = bench.target_checks({"a": good, "b": good, "c": bad}, race)
  assert checks["best_from_scratch_at_mid_le_nam_at_max"]["met"] is False
  rows = {r["capture"]: r for r in checks["best_from_scratch_at_mid_le_nam_at_max"]["rows"]}
  assert rows["a"]["ratio"] == pytest.approx(0.9) and rows["c"]["ratio"] == pytest.approx(1.1)
  paper = {
    r["capture"]: r["worst_ratio"] for r in checks["paper_within_1.5x_of_nam_at_equal_time"]["rows"]
  }
  assert paper["a"] == pytest.approx(1.4) and paper["c"] == pytest.approx(1.6)
  finetune = checks["finetune_at_min_le_nam_at_max_on_2_of_3"]
  assert finetune["count"] == 2 and finetune["met"] is True
  silence = checks["silence_le_-60_dbfs_or_target"]
  assert silence["met"] is False and {r["contender"] for r in silence["rows"]} == {"ours_lstm"}
  assert bench.target_checks({"a": good}, race)["best_from_scratch_at_mid_le_nam_at_max"]["met"]


def test_finetune_target_takes_the_better_finetuned_contender_and_names_it(bench):
  """Two fine-tuned models race (the paper model and the NAM-layout recipe): each capture's
  row takes the lower ESR at the fine-tune budget and says whose it is."""
  race = {"nam": [120.0, 600.0], "from_scratch": [120.0, 300.0], "finetune": [60.0, 120.0]}
  base = {"nam": _scores({120.0: 0.05, 600.0: 0.01})}
  paper_wins = {
    **base,
    "ours_finetune": _scores({60.0: 0.02, 120.0: 0.009}),
    "ours_finetune_nam_layout": _scores({60.0: 0.02, 120.0: 0.03}),
  }
  nam_layout_wins = {
    **base,
    "ours_finetune": _scores({60.0: 0.2, 120.0: 0.1}),
    "ours_finetune_nam_layout": _scores({60.0: 0.02, 120.0: 0.008}),
  }
  neither = {**nam_layout_wins, "ours_finetune_nam_layout": _scores({120.0: 0.011})}
  only_paper = {**base, "ours_finetune": _scores({120.0: 0.02})}
  checks = bench.target_checks(
    {"a": paper_wins, "b": nam_layout_wins, "c": neither, "d": only_paper}, race
  )
  ft = checks["finetune_at_min_le_nam_at_max_on_2_of_3"]
  rows = {r["capture"]: r for r in ft["rows"]}
  assert rows["a"]["finetuned"] == "ours_finetune" and rows["a"]["ratio"] == pytest.approx(0.9)
  assert rows["b"]["finetuned"] == "ours_finetune_nam_layout"
  assert rows["b"]["ratio"] == pytest.approx(0.8)
  assert rows["c"]["finetuned"] == "ours_finetune_nam_layout"
  assert rows["c"]["ratio"] == pytest.approx(1.1)
  assert rows["d"]["ratio"] == pytest.approx(2.0)
  assert ft["count"] == 2 and ft["met"] is True


def test_no_scores_meets_no_target(bench):
  """A race where every contender failed meets nothing, the silence target included."""
  race = {"nam": [120.0, 300.0, 600.0], "from_scratch": [120.0, 300.0], "finetune": [60.0, 120.0]}
  failed = {"ours_nam_layout": {"error": "rc 2"}}
  checks = bench.target_checks({"a": failed}, race)
  assert not any(c["met"] for c in checks.values())
  assert checks["silence_le_-60_dbfs_or_target"]["why"] == "no snapshot was scored"


def test_pretraining_note_takes_the_time_from_the_runs_provenance(bench, tmp_path):
  """The fine-tune row's note says how long the pretraining took from what the run recorded,
  not from a figure typed into the command."""
  assert bench.pretraining_note(str(tmp_path), "500 steps") == "500 steps"  # nothing recorded
  (tmp_path / "provenance.json").write_text('{"seconds": 156.1, "made": "2026-11-28 14:44:01"}')
  assert bench.pretraining_note(str(tmp_path), "500 steps") == (
    "500 steps; it took 2.6 min on this machine (2026-11-28 14:44:01)"
  )
  assert bench.pretraining_note(str(tmp_path), "").startswith("see its config.json; it took")


def test_capture_knobs_are_written_as_the_dials_a_recording_reads(bench):
  """device.yaml holds each knob's 0..10 dial position, as ampspace.capture writes Table 3's
  stand-ins: a plugin's own values (gx_amp's gain in dB, a 0..1 tone stack) read as dials gave
  the pretrained models a maxed gain and a tone stack at 0.05."""
  from ampspace.conditioning import conditioning_for
  from ampspace.devices.base import Knob

  class Plugin:
    knobs = (
      Knob("gain", default=0.0, minimum=-20.0, maximum=20.0),
      Knob("bass", default=0.5, minimum=0.0, maximum=1.0),
      Knob("presence", default=5.0, minimum=0.0, maximum=10.0),
      Knob("fixed", default=1.0, minimum=1.0, maximum=1.0),  # no range: no dial
    )

  dials = bench.dial_positions(Plugin, {"gain": 12.0, "bass": 0.5, "presence": 5.0, "fixed": 1.0})
  assert dials == {"gain": 8.0, "bass": 5.0, "presence": 5.0}
  # what the builder makes of them for a recording (no zoo ranges: 0..10 dials)
  c = conditioning_for("gx_amp", dials, zoo=False)
  plugin_units = conditioning_for("gx_amp", {"gain": 12.0, "bass": 0.5}, zoo=False)
  assert c[0] == pytest.approx(0.8) and c[1] == pytest.approx(0.5)
  assert plugin_units[0] == 1.0 and plugin_units[1] == pytest.approx(0.05)


def test_finetuned_contender_trains_its_config_file_and_an_ablation_override_wins(
  bench, tmp_path, monkeypatch
):
  """A fine-tuned contender trains capture_finetune_config.py:RECIPE@PRETRAINED (a flag
  cannot add the pretrained model's keys), its own overrides before the ablation's."""
  calls = []

  def fake_run(cmd, log_path, threads):
    calls.append(cmd)
    workdir = next(c.split("=", 1)[1] for c in cmd if c.startswith("--workdir="))
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "snapshots.json"), "w") as f:
      f.write("[]")
    return 1.0

  monkeypatch.setattr(bench, "run_logged", fake_run)
  pre = str(tmp_path / "pre")
  bench.train_ours(
    "ours_finetune_nam_layout",
    "DATA",
    str(tmp_path / "ft"),
    [120.0],
    0,
    2,
    pre,
    ["init_polarity=keep"],
  )
  cmd = calls[-1]
  assert f"--config={bench.FINETUNE_CONFIG}:nam_layout@{pre}" in cmd
  own, ablation = (
    cmd.index("--config.init_polarity=match"),
    cmd.index("--config.init_polarity=keep"),
  )
  assert own < ablation  # the last one given wins
  bench.train_ours("ours_nam_layout", "DATA", str(tmp_path / "scratch"), [120.0], 0, 2, None)
  assert "--config=configs/capture.py:nam_layout" in calls[-1]
  assert not any("init_polarity" in c for c in calls[-1])
