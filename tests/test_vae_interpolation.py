"""The interpolation experiment's pieces: the [0.5, 0.5] conditioning, tables, and (slow) a
micro run of `python launch/interpolation.py` (ampspace.experiments.interpolation) end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ampspace import conditioning as cond

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def interp():
  from ampspace.experiments import interpolation

  return interpolation


def test_midpoint_conditioning_is_a_half_half_device_one_hot(interp):
  c_a = interp.Sounds.conditioning("tube_amp_fender", {"gain": 7})
  c_b = interp.Sounds.conditioning("tube_amp_4x12", {"gain": 7})
  mid = 0.5 * (c_a + c_b)
  k = len(cond.KNOB_VOCAB)
  one_hot = mid[2 * k : 2 * k + len(cond.DEVICE_VOCAB)]
  assert one_hot[cond.device_index("tube_amp_fender")] == 0.5
  assert one_hot[cond.device_index("tube_amp_4x12")] == 0.5
  assert one_hot.sum() == pytest.approx(1.0)
  np.testing.assert_array_equal(mid[: 2 * k], c_a[: 2 * k])  # same knobs
  # gain 3 and gain 7 average to exactly the gain-5 conditioning
  c3 = interp.Sounds.conditioning("tube_amp_fender", {"gain": 3})
  c5 = interp.Sounds.conditioning("tube_amp_fender", {"gain": 5})
  c7 = interp.Sounds.conditioning("tube_amp_fender", {"gain": 7})
  np.testing.assert_allclose(0.5 * (c3 + c7), c5, atol=1e-7)


def test_partition_renders_no_held_out_setting_of_either_amp(interp):
  """The leak the table once had: tone renders at the default gain 5, the held-out gain."""
  from ampspace.devices import get_device
  from ampspace.sweeps import parse_sweep

  jobs = interp.partition_jobs("tube_amp_fender", "tube_amp_4x12", 8, 7.0)
  assert {d for d, _ in jobs} == {"tube_amp_fender", "tube_amp_4x12"}
  seen = {"gain": set(), "treble": set()}
  for device, spec in jobs:
    for setting in parse_sweep(spec, get_device(device), seed=0):
      for knob, held in interp.HELD_OUT.items():
        assert setting[knob] != held, (device, spec, setting)
        seen[knob].add(setting[knob])
  for knob, (lo, hi) in interp.BETWEEN.items():  # both ends of each in-between are trained on
    assert {lo, hi} <= seen[knob] and interp.HELD_OUT[knob] == (lo + hi) / 2
  with pytest.raises(Exception, match="held-out gain"):
    interp.partition_jobs("tube_amp_fender", "tube_amp_4x12", 8, 5.0)


def test_held_out_leaks_finds_a_held_out_dial_on_any_axis():
  from ampspace.soundspace import Entry, held_out_leaks

  entries = [
    Entry("amp_a", {"gain": 7.0, "treble": 8.0}, "treble_leak"),
    Entry("amp_b", {"gain": 5.0, "treble": 5.0}, "gain_leak"),
    Entry("amp_a", {"gain": 7.0, "treble": 6.0}, "fine"),
    Entry("other", {"gain": 5.0}, "not_in_the_experiment"),
  ]
  leaks = held_out_leaks(entries, {"gain": 5.0, "treble": 8.0}, ("amp_a", "amp_b"))
  assert [e.clip_id for e in leaks] == ["treble_leak", "gain_leak"]
  assert held_out_leaks(entries[2:3], {"gain": 5.0}, ("amp_a",)) == []


def test_a_leaking_partition_is_refused_before_training(interp):
  """The run stops, naming a clip, when a training clip holds a held-out dial."""

  def record(clip_id, device, gain, treble):
    return {
      "clip_id": clip_id.encode(),
      "device": device.encode(),
      "knob_names": np.asarray([b"gain", b"treble"], object),
      "knob_values": np.asarray([gain, treble]),
    }

  clean = [record("a/g7", "tube_amp_fender", 7.0, 5.0), record("b/t6", "tube_amp_4x12", 7.0, 6.0)]
  interp.check_no_leak(clean, ("tube_amp_fender", "tube_amp_4x12"))
  leaky = clean + [record("b/tone3", "tube_amp_4x12", 5.0, 3.0)]
  with pytest.raises(Exception, match=r"1 training clips hold a held-out setting.*b/tone3"):
    interp.check_no_leak(leaky, ("tube_amp_fender", "tube_amp_4x12"))


def test_within_steps_scores_a_recipe_against_known_settings():
  from ampspace.soundspace import Entry, within_steps

  truth = {"gain": 5.0, "treble": 8.0}
  assert within_steps(
    Entry("amp_a", {"gain": 6.0, "treble": 7.0, "bass": 1.0}, "x"), "amp_a", truth
  )
  assert not within_steps(Entry("amp_a", {"gain": 6.5, "treble": 8.0}, "x"), "amp_a", truth)
  assert not within_steps(Entry("amp_b", {"gain": 5.0, "treble": 8.0}, "x"), "amp_a", truth)
  assert not within_steps(Entry("amp_a", {"gain": 5.0}, "x"), "amp_a", truth)  # treble unknown
  assert within_steps(Entry("amp_a", {"gain": 7.0, "treble": 8.0}, "x"), "amp_a", truth, 2.0)


def _vae_measures(d: float) -> dict:
  keys = ("reconstruction_A", "midpoint_to_A", "midpoint_to_B", "between_gain", "floor_gain")
  return {
    **{k: d for k in keys + ("between_treble", "floor_treble")},
    "walk": {"evenness": 1.1, "path_ratio": 1.0},
    "dial_hits": 1,
    "dial_n": 12,
    "dial_right_amp": 3,
  }


def test_vae_variants_parse_or_fail_in_one_line(interp):
  assert interp.parse_vae_variant("clip:model.num_frames=704,model.factor_hidden=true") == (
    "clip",
    ["model.num_frames=704", "model.factor_hidden=true"],
  )
  for bad in ("clip", "clip:", ":model.num_frames=704", "clip:model.num_frames"):
    with pytest.raises(Exception, match="expected NAME:KEY=VALUE") as e:
      interp.parse_vae_variant(bad)
    assert "\n" not in str(e.value)
  assert all(interp.parse_vae_variant(v) for v in interp.VAE_VARIANTS)


def test_variant_seeds_parse_or_fail_in_one_line(interp):
  assert interp.parse_seeds(["0", "1", "2"], 5) == [0, 1, 2]
  assert interp.parse_seeds([], 5) == [5]  # none given: --seed alone
  for bad, why in ((["0", "x"], "expected integers"), (["1", "1"], "a seed given twice")):
    with pytest.raises(Exception, match=why) as e:
      interp.parse_seeds(bad, 0)
    assert "--variant_seeds=" in str(e.value) and "\n" not in str(e.value)


def test_dis_are_distinct_phrases_or_consecutive_pieces_of_a_wav(interp, tmp_path):
  from ampspace import SAMPLE_RATE
  from ampspace.audio.wav_io import write_wav

  n = int(interp.DI_SECONDS * SAMPLE_RATE)
  generated = interp.di_clips(3)
  assert [len(x) for x in generated] == [n] * 3
  assert not np.allclose(generated[0], generated[1])  # three phrases, not one thrice
  wav = str(tmp_path / "long_di.wav")
  x = (0.1 * np.sin(np.arange(2 * n + 100) * 0.01)).astype(np.float32)
  write_wav(wav, x)
  pieces = interp.di_clips(2, wav)
  np.testing.assert_allclose(pieces[1], x[n : 2 * n], atol=1e-4)
  with pytest.raises(Exception, match=r"long_di.wav: .* need 12 s for --num_dis=3") as e:
    interp.di_clips(3, wav)
  assert "\n" not in str(e.value)
  with pytest.raises(Exception, match="at least one DI"):
    interp.di_clips(0)


def test_make_dis_completes_a_killed_run_and_refuses_another_runs_dis(interp, tmp_path):
  from ampspace.audio.wav_io import read_wav
  from ampspace.errors import AmpSpaceError

  folder = interp.make_dis(str(tmp_path), 3, di_seed=7)
  first = read_wav(os.path.join(folder, "interp_di_1.wav"))[0]
  # a run killed after one DI: the stamp and the later DIs are missing; the next run completes
  os.remove(os.path.join(folder, "dis.json"))
  os.remove(os.path.join(folder, "interp_di_1.wav"))
  os.remove(os.path.join(folder, "interp_di_2.wav"))
  interp.make_dis(str(tmp_path), 3, di_seed=7)
  assert sorted(f for f in os.listdir(folder) if f.endswith(".wav")) == [
    f"interp_di_{k}.wav" for k in range(3)
  ]
  np.testing.assert_array_equal(read_wav(os.path.join(folder, "interp_di_1.wav"))[0], first)
  interp.make_dis(str(tmp_path), 3, di_seed=7)  # the same spec again: nothing to do
  for num, seed in ((5, 7), (3, 8), (2, 7)):
    with pytest.raises(AmpSpaceError, match="holds the DIs of an earlier run") as e:
      interp.make_dis(str(tmp_path), num, di_seed=seed)
    assert folder in str(e.value) and "\n" not in str(e.value)


def test_the_experiments_vae_encodes_whole_clips_as_the_paper_does():
  """configs/vae.py: `clip` windows hold a whole 4 s clip; the CPU smoke run keeps 64 frames."""
  from ampspace import SAMPLE_RATE
  from ampspace.config_files import load_config
  from ampspace.data.mel_pipeline import MelSpec

  clip = load_config("vae", "runlocal,clip").model.num_frames
  assert clip % 16 == 0 and clip >= MelSpec().frames_of(int(4.0 * SAMPLE_RATE))
  assert load_config("vae", "").model.num_frames == clip  # paper scale
  assert load_config("vae", "runlocal").model.num_frames == 64
  assert load_config("vae", "short").model.num_frames == 64


def test_markdown_table(interp):
  results = {
    "midpoint": {"real A": {"to_A": 0.0, "to_B": 0.4}},
    "smoothness": {"walk": {"evenness": 1.2, "path_ratio": 1.05, "steps": [0.1]}},
    "known_in_between": {"gain": {"real gain 3": 0.12}, "treble": {"real treble 6": 0.2}},
    "held_out_query": [{"recipe": "amp with gain=4", "distance": 0.1}],
    "dial_recipes": {
      "n": 2,
      "hits": 1,
      "right_amp": 2,
      "chance_hit_rate": 0.125,
      "queries": [{"device": "a", "truth": {"gain": 5.0}, "recipe": "a with gain=4", "hit": True}],
    },
    "vae_variants": {
      "clip": {
        "overrides": [],
        "seeds": {
          "0": {"train_minutes": 10.0, "measures": _vae_measures(0.2)},
          "1": {"train_minutes": 12.0, "measures": _vae_measures(0.4)},
        },
      },
      "window_64": {
        "overrides": ["model.num_frames=64"],
        "seeds": {"0": {"train_minutes": 2.5, "measures": _vae_measures(0.3)}},
      },
    },
  }
  meta = {
    "amp_a": "a",
    "amp_b": "b",
    "command": "cmd",
    "clips": 3,
    "num_dis": 5,
    "measure_di": "di_3",
    "measure_di_split": "test",
    "vae_steps": 1,
    "w2w_steps": 1,
    "gl_iters": 2,
    "wall_minutes": 0.5,
    "endpoint_gain": 7.0,
    "walk_steps": 3,
    "seed": 0,
  }
  md = interp.markdown(results, meta)
  # over seeds: the mean with [min, max]; dial hits summed; mean training minutes
  assert "| clip | configs/vae.py:runlocal,clip | 0.300 [0.200, 0.400] |" in md
  assert "| 2 of 24 | 11.0 |" in md
  assert "| window_64 | model.num_frames=64 | 0.300 | 0.300 | 0.300 |" in md
  assert "| 1 of 12 | 2.5 |" in md and "at seeds 0, 1;" in md
  assert "5 DIs of 4 s" in md and "plays DI `di_3`, of the test split" in md
  assert "| real A | 0.000 | 0.400 |" in md and "| walk | 1.20 | 1.05 |" in md
  assert "| real gain 3 | 0.120 |" in md and "| 1 | amp with gain=4 | 0.100 |" in md
  assert "against its real treble 8 (held out" in md and "| real treble 6 | 0.200 |" in md
  assert "1 of 2 recipes land on the right amp" in md and "(chance: 12.5 %)" in md
  assert "| a | gain=5 | a with gain=4 | yes |" in md


@pytest.mark.slow
def test_micro_run_end_to_end(tmp_path):
  out = str(tmp_path / "interp")
  r = subprocess.run(
    [
      sys.executable,
      os.path.join(REPO, "launch", "interpolation.py"),
      f"--out={out}",
      "--vae_steps=8",
      "--w2w_steps=4",
      "--random_settings=1",
      "--gl_iters=2",
      "--walk_steps=3",
      "--vae_variant=short:model.num_frames=32",
      "--variant_seeds=0,1",
    ],
    capture_output=True,
    text=True,
    cwd=REPO,
    timeout=1200,
  )
  assert r.returncode == 0, r.stderr[-3000:]
  metrics = json.load(open(os.path.join(out, "metrics.json")))
  assert set(metrics) >= {
    "meta",
    "midpoint",
    "smoothness",
    "known_in_between",
    "held_out_query",
    "dial_recipes",
  }
  assert metrics["dial_recipes"]["n"] == 2 * (2 + 4)
  # gain and treble series, tone stacks; 3 of the 5 DIs train, one validates, one tests
  assert metrics["meta"]["clips"] == 3 * 2 * (9 + 9 + 1)
  assert metrics["meta"]["measure_di_split"] == "test"  # the measures play a DI nobody heard
  from ampspace.data import sources
  from ampspace.experiments.interpolation import dataset_config

  dataset = dataset_config(out, os.path.join(out, "rendered"))
  train = sources.open_split(dataset, "train")
  heard = {np.asarray(train[i]["di_id"]).item().decode() for i in range(len(train))}
  assert len(heard) == 3 and metrics["meta"]["measure_di"] not in heard
  assert set(metrics["known_in_between"]) == {"gain", "treble"}
  mid = metrics["midpoint"]["Wave2WaveNet one-hot [0.5, 0.5]"]
  assert np.isfinite(mid["to_A"]) and np.isfinite(mid["to_B"])
  manifest = json.load(open(os.path.join(out, "mos", "manifest.json")))
  for entry in manifest:
    assert os.path.getsize(os.path.join(out, "mos", entry["file"])) > 1000
  assert {"vae_mid.wav", "w2w_mid.wav", "real_A_gain5.wav", "real_A_treble8.wav"} <= {
    e["file"] for e in manifest
  }
  assert os.path.exists(os.path.join(out, "soundspace_device_2d.png"))
  variants = metrics["vae_variants"]  # stage 4: the experiment's VAE, then each variant
  assert list(variants) == ["clip", "short"]
  assert variants["short"]["overrides"] == ["model.num_frames=32"]
  for row in variants.values():
    assert list(row["seeds"]) == ["0", "1"]
    for run in row["seeds"].values():
      m = run["measures"]
      assert m["dial_n"] == 12 and np.isfinite(m["between_gain"])
      assert np.isfinite(m["floor_treble"])
  assert os.path.isdir(os.path.join(out, "vae_variants", "short", "seed_1", "checkpoints"))
  assert os.path.isdir(os.path.join(out, "vae_seeds", "seed_1", "checkpoints"))
