"""Tests for ampspace.notebook_utils: the helpers behind the colab/ notebooks."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest

from ampspace import SAMPLE_RATE
from ampspace import notebook_utils as nbu
from ampspace.data import filters
from ampspace.errors import AmpSpaceError


def tone(freq: float, seconds: float = 0.5, amp: float = 0.5) -> np.ndarray:
  t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
  return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# ----------------------------------------------------------------- conditioning


@pytest.fixture(scope="module")
def tiny_train(tiny_data_dir):
  import tensorflow_datasets as tfds
  import tfds_ampspace  # noqa: F401

  return tfds.data_source("amp_space/tiny", data_dir=tiny_data_dir)["train"]


def test_conditioning_for_matches_the_dataset(tiny_train):
  from ampspace.data.pipeline import conditioning_of

  seen = set()
  for i in range(len(tiny_train)):
    record = tiny_train[i]
    knobs = dict(
      zip((filters.text(n) for n in record["knob_names"]), map(float, record["knob_values"]))
    )
    got = nbu.conditioning_for(filters.text(record["device"]), knobs)
    np.testing.assert_array_equal(got, conditioning_of(record))
    seen.add(knobs["gain"])
  assert seen == {2.0, 5.0, 8.0}
  # Knobs not given take the device's defaults; different gains give different vectors.
  assert not np.array_equal(
    nbu.conditioning_for("tube_amp", {"gain": 2}), nbu.conditioning_for("tube_amp", {"gain": 8})
  )
  np.testing.assert_array_equal(
    nbu.conditioning_for("tube_amp"), nbu.conditioning_for("tube_amp", {"gain": 5.0})
  )
  with pytest.raises(AmpSpaceError, match="no knob"):
    nbu.conditioning_for("tube_amp", {"wah": 3})


def test_mixed_conditioning_is_a_half_half_device_one_hot():
  from ampspace import conditioning as cond

  mix = nbu.mixed_conditioning(["tube_amp", "tube_amp_fender"], [0.5, 0.5], {"gain": 5})
  a = nbu.conditioning_for("tube_amp", {"gain": 5})
  b = nbu.conditioning_for("tube_amp_fender", {"gain": 5})
  np.testing.assert_allclose(mix, 0.5 * a + 0.5 * b, atol=1e-7)
  k = len(cond.KNOB_VOCAB)
  onehot = mix[2 * k : 2 * k + len(cond.DEVICE_VOCAB)]
  assert onehot[cond.device_index("tube_amp")] == 0.5
  assert onehot[cond.device_index("tube_amp_fender")] == 0.5
  assert onehot.sum() == pytest.approx(1.0)
  np.testing.assert_allclose(nbu.mixed_conditioning(["tube_amp", "tube_amp_fender"], [1, 0]), a)
  with pytest.raises(AmpSpaceError):
    nbu.mixed_conditioning(["tube_amp", "tube_amp_fender"], [0.7, 0.7])
  with pytest.raises(AmpSpaceError):
    nbu.mixed_conditioning(["tube_amp"], [0.5, 0.5])


# ----------------------------------------------------------------- audio helpers


def test_audio_strip_puts_silent_gaps_between_clips():
  a, b = np.ones(100, np.float32), -np.ones(50, np.float32)
  strip = nbu.audio_strip([a, b], gap_seconds=0.001)
  gap = int(round(0.001 * SAMPLE_RATE))
  assert len(strip) == 150 + gap
  np.testing.assert_array_equal(strip[:100], a)
  assert not strip[100 : 100 + gap].any()
  np.testing.assert_array_equal(strip[100 + gap :], b)
  with pytest.raises(AmpSpaceError):
    nbu.audio_strip([])


def test_normalise_rms_and_lowpass_anchor():
  x = tone(440, amp=0.05)
  y = nbu.normalise_rms(x, dbfs=-20)
  assert 20 * np.log10(np.sqrt(np.mean(y.astype(np.float64) ** 2))) == pytest.approx(-20, abs=0.01)
  loud = nbu.normalise_rms(np.r_[np.zeros(1000), 1.0, np.zeros(1000)], dbfs=-3)
  assert np.abs(loud).max() == pytest.approx(0.99)  # peak-limited
  assert not nbu.normalise_rms(np.zeros(10)).any()
  # The anchor keeps 1 kHz and removes 8 kHz (away from the filter's edge transients).
  mid = slice(4000, -4000)
  low, high = nbu.lowpass_anchor(tone(1000))[mid], nbu.lowpass_anchor(tone(8000))[mid]
  assert np.std(low) == pytest.approx(np.std(tone(1000)[mid]), rel=0.02)
  assert np.std(high) < 0.01 * np.std(tone(8000)[mid])


# ----------------------------------------------------------------- MOS protocol


def write_stimuli(folder) -> None:
  from ampspace.audio.wav_io import write_wav

  rng = np.random.default_rng(0)
  for stim, f in (("s1", 220.0), ("s2", 330.0)):
    ref = tone(f) + 0.2 * tone(3 * f) + 0.05 * rng.standard_normal(len(tone(f)))
    write_wav(os.path.join(folder, f"{stim}__real_target.wav"), ref.astype(np.float32))
    write_wav(
      os.path.join(folder, f"{stim}__close.wav"),
      (ref + 0.01 * rng.standard_normal(len(ref))).astype(np.float32),
    )
    write_wav(
      os.path.join(folder, f"{stim}__noise.wav"),
      (0.3 * rng.standard_normal(len(ref))).astype(np.float32),
    )


def test_read_stimuli_parses_names_and_rejects_others(tmp_path):
  write_stimuli(tmp_path)
  (tmp_path / "notes.txt").write_text("ignored")
  stimuli = nbu.read_stimuli(str(tmp_path))
  assert [(s.stimulus, s.condition) for s in stimuli] == [
    ("s1", "close"),
    ("s1", "noise"),
    ("s1", "real_target"),
    ("s2", "close"),
    ("s2", "noise"),
    ("s2", "real_target"),
  ]
  (tmp_path / "bad_name.wav").write_bytes(b"")
  with pytest.raises(AmpSpaceError, match="<stimulus>__<condition>"):
    nbu.read_stimuli(str(tmp_path))
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(AmpSpaceError, match="no <stimulus>"):
    nbu.read_stimuli(str(empty))


def test_import_wavs_names_conditions_and_the_reference(tmp_path):
  from ampspace.audio.wav_io import read_wav, write_wav

  src, dst = tmp_path / "interp_mos", tmp_path / "stimuli"
  for stem, amp in (("di", 0.1), ("real_A_gain5", 0.5), ("vae_mid", 0.05), ("w2w_mid", 0.2)):
    write_wav(src / f"{stem}.wav", tone(220, amp=amp))
  stimuli = nbu.import_wavs(str(src), str(dst), "gain5", reference="real_A_gain5")
  assert [(s.stimulus, s.condition) for s in stimuli] == [
    ("gain5", "real_target"),
    ("gain5", "vae_mid"),
    ("gain5", "w2w_mid"),
  ]
  levels = [
    20 * np.log10(np.sqrt(np.mean(read_wav(s.path)[0].astype(np.float64) ** 2))) for s in stimuli
  ]
  assert levels == pytest.approx([-20, -20, -20], abs=0.05)  # loudness-matched
  with pytest.raises(AmpSpaceError, match="reference"):
    nbu.import_wavs(str(src), str(dst), "gain5", reference="real_B")


def test_mos_order_is_a_seeded_permutation_per_listener():
  items = list(range(12))
  orders = nbu.mos_order(4, items, seed=7)
  assert list(orders) == ["L00", "L01", "L02", "L03"]
  for order in orders.values():
    assert sorted(order) == items
  assert len({tuple(o) for o in orders.values()}) == 4  # listeners get different orders
  assert nbu.mos_order(4, items, seed=7) == orders  # recorded seed reproduces them
  assert nbu.mos_order(4, items, seed=8) != orders
  # A listener's order does not depend on who else takes part.
  assert nbu.mos_order(["L02"], items, seed=7)["L02"] == orders["L02"]
  with pytest.raises(AmpSpaceError, match="duplicate"):
    nbu.mos_order(["a", "a"], items, seed=0)


def test_simulated_ratings_follow_distance_to_the_reference(tmp_path):
  write_stimuli(tmp_path)
  stimuli = nbu.read_stimuli(str(tmp_path))
  rows = nbu.trial_rows(nbu.mos_order(6, stimuli, seed=3), seed=3)
  assert len(rows) == 6 * len(stimuli)
  assert [r["trial"] for r in rows[: len(stimuli)]] == list(range(1, len(stimuli) + 1))
  rated = nbu.simulated_ratings(rows, str(tmp_path), seed=3)
  assert rated == nbu.simulated_ratings(rows, str(tmp_path), seed=3)  # deterministic
  assert {r["rater"] for r in rated} == {"simulated"}
  assert all(r["rating"] in (1, 2, 3, 4, 5) for r in rated)
  mean = lambda c: np.mean([r["rating"] for r in rated if r["condition"] == c])
  # MR-STFT distances to the reference: 0, ~0.2, ~3 -> expected 5, ~4.6, ~1.9.
  assert mean("real_target") >= mean("close") > mean("noise") + 1.5
  os.remove(tmp_path / "s2__real_target.wav")
  with pytest.raises(AmpSpaceError, match="real_target"):
    nbu.simulated_ratings(rows, str(tmp_path), seed=3)


def test_ratings_csv_round_trip_and_validation(tmp_path):
  rows = [
    {
      "listener": "L00",
      "trial": 1,
      "stimulus": "s",
      "condition": "a",
      "file": "s__a.wav",
      "rating": 4,
      "rater": "human",
      "seed": 1,
    }
  ]
  path = nbu.write_ratings(str(tmp_path / "r" / "ratings.csv"), rows)
  with open(path) as f:
    assert next(csv.reader(f)) == list(nbu.RATING_COLUMNS)
  back = nbu.read_ratings(path)
  assert back[0]["rating"] == 4 and back[0]["condition"] == "a"
  with pytest.raises(AmpSpaceError, match="unrated"):
    nbu.write_ratings(path, [{**rows[0], "rating": None}])
  nbu.write_ratings(path, [{**rows[0], "rating": 6}])
  with pytest.raises(AmpSpaceError, match="outside 1..5"):
    nbu.read_ratings(path)


def test_mos_summary_means_and_t_intervals(tmp_path):
  import scipy.stats

  ratings = {"a": [4, 5, 3, 4], "b": [2, 1, 2, 3, 2, 2], "c": [5]}
  rows = [
    {
      "listener": f"L{i}",
      "trial": i,
      "stimulus": "s",
      "condition": c,
      "file": "",
      "rating": r,
      "rater": "human",
      "seed": 0,
    }
    for c, rs in ratings.items()
    for i, r in enumerate(rs)
  ]
  path = nbu.write_ratings(str(tmp_path / "ratings.csv"), rows)
  summary = nbu.mos_summary(path, method="t")
  assert [s["condition"] for s in summary] == ["c", "a", "b"]  # best mean first
  a = next(s for s in summary if s["condition"] == "a")
  assert a["n"] == 4 and a["mean"] == 4.0
  sd = np.std([4, 5, 3, 4], ddof=1)
  half = scipy.stats.t.ppf(0.975, 3) * sd / 2
  assert half == pytest.approx(1.2991, abs=1e-3)  # t_{0.975,3} = 3.182, sd = 0.8165
  assert a["ci_low"] == pytest.approx(4 - half) and a["ci_high"] == pytest.approx(4 + half)
  c = next(s for s in summary if s["condition"] == "c")
  assert np.isnan(c["ci_half"])  # one rating: no interval
  table = nbu.summary_markdown(summary)
  assert "| a | 4 | 4 | 4.00 | [2.70, 5.30] |" in table
  png = str(tmp_path / "mos.png")
  fig = nbu.mos_bar_plot(summary, png)
  assert os.path.getsize(png) > 2000
  ax = fig.axes[0]
  assert [t.get_text() for t in ax.get_xticklabels()] == ["c", "a", "b"]
  assert [p.get_height() for p in ax.patches] == pytest.approx([5.0, 4.0, 2.0])


def test_rating_form_saves_only_when_complete(tmp_path):
  pytest.importorskip("ipywidgets")
  write_stimuli(tmp_path)
  rows = nbu.trial_rows(nbu.mos_order(1, nbu.read_stimuli(str(tmp_path))[:2], seed=0), seed=0)
  out = str(tmp_path / "human.csv")
  form = nbu.rating_form(rows, str(tmp_path), out)
  trials, (button, status) = form.children[:-1], form.children[-1].children
  button.click()
  assert not os.path.exists(out) and "2 trials not rated" in status.value
  for item, value in zip(trials, (5, 2)):
    item.children[1].value = value
  button.click()
  saved = nbu.read_ratings(out)
  assert [r["rating"] for r in saved] == [5, 2] and {r["rater"] for r in saved} == {"human"}


# ----------------------------------------------------------------- dataset browsing


def test_catalog_knob_table_and_select(tiny_train):
  rows = nbu.catalog(tiny_train)
  assert len(rows) == len(tiny_train)
  assert [r["index"] for r in rows] == list(range(len(rows)))
  table = nbu.knob_table(rows, "gain")
  assert list(table) == ["tube_amp"]
  assert set(table["tube_amp"]) == {2.0, 5.0, 8.0}
  assert sum(table["tube_amp"].values()) == len(rows)
  picked = nbu.select(rows, device="tube_amp", gain=8)
  assert picked and len(picked) == table["tube_amp"][8.0]
  for i in picked:
    record = tiny_train[i]
    assert dict(zip(map(filters.text, record["knob_names"]), record["knob_values"]))["gain"] == 8.0
  di = rows[0]["di_id"]
  assert all(rows[i]["di_id"] == di for i in nbu.select(rows, di_id=di))
  assert nbu.select(rows, device="fuzz_face") == []


def test_figures_have_one_axis_per_signal():
  sig = {"DI": tone(220), "target": tone(440), "prediction": tone(660)}
  assert len(nbu.waveform_figure(sig).axes) == 3
  fig = nbu.spectrograms(sig)
  assert [ax.get_title() for ax in fig.axes[:3]] == ["DI", "target", "prediction"]
  boxes = [ax.get_position() for ax in fig.axes[:3]]
  assert boxes[0].x0 < boxes[1].x0 < boxes[2].x0 and boxes[0].y0 == boxes[2].y0  # side by side
  boxes = [ax.get_position() for ax in nbu.spectrograms(sig, side_by_side=False).axes[:3]]
  assert boxes[0].y0 > boxes[1].y0 > boxes[2].y0 and boxes[0].x0 == boxes[2].x0  # stacked


# ----------------------------------------------------------------- model loading


@pytest.fixture(scope="module")
def untrained_workdir(tmp_path_factory, tiny_data_dir):
  """A training workdir holding an untrained tiny Wave2WaveNet checkpoint (seconds, no training)."""
  import orbax.checkpoint as ocp
  from flax import nnx

  import importlib.util

  from ampspace.trainers import common

  spec = importlib.util.spec_from_file_location(
    "w2w_config",
    os.path.join(os.path.dirname(os.path.dirname(__file__)), "configs", "wave2wavenet.py"),
  )
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  workdir = str(tmp_path_factory.mktemp("nbu_model"))
  config = module.get_config("runlocal")
  config.dataset.data_dir = tiny_data_dir
  config.model.depth = 6
  config.model.channels = 8
  config.train.async_checkpoints = False
  common.save_config(config, workdir)
  _, params = nnx.split(common.build_model(config))
  mngr = common.checkpoint_manager(workdir, config)
  mngr.save(3, args=ocp.args.Composite(params=ocp.args.StandardSave(params.to_pure_dict())))
  mngr.wait_until_finished()
  mngr.close()
  return workdir


def test_find_train_dir_and_ensure_tiny_model_reuse(untrained_workdir, tmp_path, monkeypatch):
  from ampspace import quickstart

  assert nbu.find_train_dir(untrained_workdir) == untrained_workdir
  with pytest.raises(AmpSpaceError, match="no training workdir"):
    nbu.find_train_dir(str(tmp_path))
  # An existing checkpoint is reused: no training starts.
  monkeypatch.setattr(
    quickstart, "run_quickstart", lambda *a, **k: pytest.fail("ensure_tiny_model retrained")
  )
  assert nbu.ensure_tiny_model(untrained_workdir) == untrained_workdir
  # Training from scratch (no checkpoint yet) runs in tests/test_notebooks.py.


def test_load_model_knob_sweep_and_mos_stimuli(untrained_workdir, tmp_path):
  model = nbu.load_model(untrained_workdir)
  assert model.step == 3 and model.context[0] > 0
  source = model.open_split("test")
  from ampspace.data.pipeline import decode_audio

  di = decode_audio(source[0], "di")[:8000]
  pred = model(di, nbu.conditioning_for("tube_amp", {"gain": 5}))
  assert pred.shape == di.shape and np.isfinite(pred).all() and np.abs(pred).max() <= 1
  rows = nbu.knob_sweep(model, di, "tube_amp", "gain", [1, 9])
  assert [r["value"] for r in rows] == [1.0, 9.0]
  np.testing.assert_allclose(
    rows[1]["target"],
    __import__("ampspace.devices", fromlist=["x"]).get_device("tube_amp").process(di, {"gain": 9}),
  )
  assert np.abs(rows[1]["target"]).mean() > np.abs(rows[0]["target"]).mean()
  stimuli = nbu.make_mos_stimuli(
    model, str(tmp_path / "stim"), num_stimuli=2, seconds=0.5, splits=("test", "validation")
  )
  conditions = sorted({s.condition for s in stimuli})
  assert conditions == ["anchor", "interpolation", "real_target", "wave2wavenet"]
  assert len({s.stimulus for s in stimuli}) == 2 and len(stimuli) == 8
  from ampspace.audio.wav_io import read_wav

  ref = read_wav(next(s.path for s in stimuli if s.condition == "real_target"))[0]
  assert len(ref) == int(0.5 * SAMPLE_RATE)
  assert 20 * np.log10(np.sqrt(np.mean(ref.astype(np.float64) ** 2))) == pytest.approx(-20, abs=0.1)
