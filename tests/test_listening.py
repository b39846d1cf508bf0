"""Tests for ampspace.listening: the listening-study package and its listener-aware analysis."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from ampspace import SAMPLE_RATE
from ampspace import listening
from ampspace import notebook_utils as nbu
from ampspace.audio.wav_io import read_wav, write_wav
from ampspace.errors import AmpSpaceError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEMS = (
  "real_A",
  "vae_A",
  "w2w_A",
  "real_A_gain5",
  "vae_between",
  "w2w_between",
  "real_A_treble8",
  "vae_between_treble",
  "w2w_between_treble",
)


def fake_mos_dir(folder, stems=STEMS, seconds: float = 0.3) -> str:
  """launch/interpolation.py's OUT/mos in miniature: a distorted tone per WAV (the VAE's a
  little longer, as Griffin-Lim gives), plus files the package leaves out."""
  rng = np.random.default_rng(0)
  t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
  os.makedirs(folder, exist_ok=True)
  for i, stem in enumerate((*stems, "di", "crossfade_mid", "vae_mid")):
    x = 0.3 * np.tanh((2 + i) * np.sin(2 * np.pi * (110 + 20 * i) * t))
    x = x + 0.01 * rng.standard_normal(len(t))
    if stem.startswith("vae"):
      x = np.concatenate([x, np.zeros(300)])
    write_wav(os.path.join(folder, f"{stem}.wav"), x.astype(np.float32))
  with open(os.path.join(folder, "manifest.json"), "w") as f:
    json.dump([], f)
  return str(folder)


def read_csv(path) -> list[dict]:
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> str:
  root = tmp_path_factory.mktemp("listening")
  mos = fake_mos_dir(root / "mos")
  return listening.write_package(mos, str(root / "package"), listeners=6, seed=3)


# ------------------------------------------------------------------------------ the package


def test_package_is_blinded_complete_and_mushra_style(package):
  assert sorted(os.listdir(package)) == [
    "README.md",
    "key.csv",
    "listeners",
    "package.json",
    "stimuli",
  ]
  assert not [n for n in os.listdir(os.path.dirname(package)) if ".tmp-" in n]
  key = listening.read_key(package)
  groups = ("supervised", "interpolation", "interpolation_treble")
  assert sorted((k["group"], k["condition"]) for k in key.values()) == sorted(
    (g, c) for g in groups for c in listening.CONDITIONS
  )
  assert {k["setting"] for k in key.values() if k["group"] != "supervised"} == {"interpolation"}
  # Blinded: sNN.wav names, numbered in a shuffled order, and the open references beside them.
  stimuli = sorted(os.listdir(os.path.join(package, "stimuli")))
  blinded = [n for n in stimuli if not n.startswith("reference_")]
  assert all(re.fullmatch(r"s\d\d\.wav", n) for n in blinded) and sorted(key) == blinded
  assert sorted(set(stimuli) - set(blinded)) == [f"reference_{g}.wav" for g in sorted(groups)]
  in_order = [
    f
    for g in groups
    for c in listening.CONDITIONS
    for f, k in key.items()
    if (k["group"], k["condition"]) == (g, c)
  ]
  assert in_order != sorted(in_order)
  # Audio: the hidden reference is the open reference; one length per group; -20 dBFS RMS.
  audio = {n: read_wav(os.path.join(package, "stimuli", n))[0] for n in stimuli}
  for g in groups:
    files = {k["condition"]: f for f, k in key.items() if k["group"] == g}
    ref = audio[f"reference_{g}.wav"]
    np.testing.assert_array_equal(audio[files["hidden_reference"]], ref)
    assert {len(audio[f]) for f in files.values()} == {len(ref)}
    assert not np.array_equal(audio[files["anchor"]], ref)
    for f in files.values():
      rms_db = 20 * np.log10(np.sqrt(np.mean(audio[f].astype(np.float64) ** 2)))
      assert rms_db == pytest.approx(-20.0, abs=0.1)
  # The key's source names what each blinded file was made from.
  sup = {k["condition"]: k["source"] for k in key.values() if k["group"] == "supervised"}
  assert sup["wave2wavenet"] == "w2w_A.wav" and sup["vae"] == "vae_A.wav"
  assert sup["hidden_reference"] == "real_A.wav" and sup["anchor"].startswith("real_A.wav")
  readme = open(os.path.join(package, "README.md")).read()
  assert "headphones" in readme.lower() and "Do not\nsend `key.csv`" in readme
  assert "indistinguishable from the reference" in readme
  manifest = json.load(open(os.path.join(package, "package.json")))
  assert manifest["seed"] == 3 and manifest["listeners"] == [f"L{i:02d}" for i in range(6)]
  assert "s01.wav" not in json.dumps(manifest)  # no mapping outside key.csv


def test_listener_sheets_hold_every_stimulus_once_in_their_own_order(package):
  key = listening.read_key(package)
  sheets = sorted(os.listdir(os.path.join(package, "listeners")))
  assert sheets == [f"L{i:02d}.csv" for i in range(6)]
  orders = []
  for name in sheets:
    rows = read_csv(os.path.join(package, "listeners", name))
    assert list(rows[0]) == list(listening.LISTENER_COLUMNS)
    assert sorted(r["file"] for r in rows) == sorted(key)
    assert [int(r["trial"]) for r in rows] == list(range(1, len(key) + 1))
    assert {r["listener"] for r in rows} == {name[:-4]} and {r["rating"] for r in rows} == {""}
    for r in rows:
      assert r["group"] == key[r["file"]]["group"]
      assert r["reference_file"] == f"reference_{r['group']}.wav"
    groups = [r["group"] for r in rows]  # one block per group, MUSHRA-style
    assert len([g for i, g in enumerate(groups) if i == 0 or g != groups[i - 1]]) == 3
    orders.append(tuple(r["file"] for r in rows))
  assert len(set(orders)) == len(orders)  # every listener has their own order


def test_orders_are_stable_for_a_seed_and_do_not_move_when_listeners_are_added(package, tmp_path):
  mos = fake_mos_dir(tmp_path / "mos")
  more = listening.write_package(mos, str(tmp_path / "more"), listeners=9, seed=3)
  other = listening.write_package(mos, str(tmp_path / "other"), listeners=6, seed=4)
  for name in os.listdir(os.path.join(package, "listeners")):
    a, b, c = (open(os.path.join(p, "listeners", name)).read() for p in (package, more, other))
    assert a == b and a != c
  assert open(os.path.join(package, "key.csv")).read() == open(os.path.join(more, "key.csv")).read()


def test_missing_wav_is_one_line_naming_it_and_leaves_nothing(tmp_path):
  mos = fake_mos_dir(tmp_path / "mos")
  os.remove(os.path.join(mos, "w2w_between.wav"))
  with pytest.raises(AmpSpaceError, match=r"w2w_between\.wav: missing") as e:
    listening.write_package(mos, str(tmp_path / "pkg"), listeners=2)
  assert "\n" not in str(e.value)
  assert sorted(os.listdir(tmp_path)) == ["mos"]  # no package, no temporary folder
  # The treble group is optional, but a half-present one is an error.
  mos2 = fake_mos_dir(tmp_path / "mos2", stems=STEMS[:7] + STEMS[8:])
  with pytest.raises(AmpSpaceError, match=r"mos2/vae_between_treble\.wav: missing"):
    listening.write_package(mos2, str(tmp_path / "pkg"), listeners=2)
  mos3 = fake_mos_dir(tmp_path / "mos3", stems=STEMS[:6])
  out = listening.write_package(mos3, str(tmp_path / "pkg"), listeners=2)
  assert {k["group"] for k in listening.read_key(out).values()} == {"supervised", "interpolation"}
  with pytest.raises(AmpSpaceError, match="already exists"):
    listening.write_package(mos3, out, listeners=2)
  listening.write_package(mos3, out, listeners=3, overwrite=True)
  assert len(os.listdir(os.path.join(out, "listeners"))) == 3
  assert sorted(os.listdir(tmp_path)) == ["mos", "mos2", "mos3", "pkg"]


def test_command_line_writes_and_analyses_a_package(tmp_path):
  mos = fake_mos_dir(tmp_path / "mos", stems=STEMS[:6])
  run = lambda *a: subprocess.run(
    [sys.executable, "-m", "ampspace.listening", *a],
    capture_output=True,
    text=True,
    cwd=REPO,
    timeout=300,
  )
  out = tmp_path / "listening"
  os.remove(os.path.join(mos, "vae_A.wav"))
  r = run(f"--mos_dir={mos}", f"--out={out}")
  assert r.returncode == 2 and r.stdout == ""
  assert r.stderr.startswith(f"error: {mos}/vae_A.wav: missing") and r.stderr.count("\n") == 1
  fake_mos_dir(tmp_path / "mos", stems=STEMS[:6])
  r = run(f"--mos_dir={mos}", f"--out={out}", "--listeners=4", "--seed=1")
  assert r.returncode == 0, r.stderr
  assert "8 blinded stimuli in 2 groups" in r.stdout and "keep key.csv" in r.stdout
  listening.simulate_returns(str(out), str(tmp_path / "returned"), seed=0)
  r = run(f"--package={out}", f"--returned={tmp_path / 'returned'}")
  assert r.returncode == 0, r.stderr
  assert "SIMULATED" in r.stdout and (out / "analysis.csv").exists()
  table = read_csv(out / "analysis.csv")
  assert {t["table"] for t in table} == {"condition", "setting", "group"}
  assert {t["method"] for t in table} == {"listener_bootstrap"}


# ---------------------------------------------------------------------------- the returns


def test_round_trip_simulated_returns_to_mos(package, tmp_path):
  returned = str(tmp_path / "returned")
  paths = listening.simulate_returns(package, returned, seed=5)
  assert len(paths) == 6
  rows = listening.read_package_ratings(package, returned)
  assert len(rows) == 6 * 12 and {r["rater"] for r in rows} == {"simulated"}
  assert rows == listening.read_package_ratings(package, paths)  # a list of CSVs works too
  # A spreadsheet that saves CSV with semicolons and a byte-order mark is read the same.
  text = open(paths[0], newline="").read()
  with open(paths[0], "w", newline="", encoding="utf-8-sig") as f:
    f.write(text.replace(",", ";").replace("\n", "\r\n"))
  assert rows == listening.read_package_ratings(package, returned)
  tables = listening.analyse(rows, n_boot=500)
  by_condition = tables["condition"]
  assert [s["condition"] for s in by_condition] == [
    "hidden_reference",
    "wave2wavenet",
    "vae",
    "anchor",
  ]
  assert all(s["listeners"] == 6 and s["n"] == 18 for s in by_condition)
  assert all(s["ci_low"] < s["mean"] < s["ci_high"] for s in by_condition)
  four = {(s["setting"], s["condition"]) for s in tables["setting"]}
  assert {("supervised", "vae"), ("interpolation", "wave2wavenet")} <= four and len(four) == 8
  assert len(tables["group"]) == 12
  text = listening.analysis_markdown(tables, rows)
  assert "SIMULATED" in text and "| supervised | vae |" in text
  # The same rows through the notebook's summary: the listener bootstrap is its default.
  summary = nbu.mos_summary(rows, n_boot=500)
  assert {s["method"] for s in summary} == {"listener_bootstrap"}
  assert [s["mean"] for s in summary] == pytest.approx([s["mean"] for s in by_condition])


def edit_sheet(path, row: int, **changes) -> None:
  rows = read_csv(path)
  rows[row].update(changes)
  with open(path, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)


@pytest.mark.parametrize(
  "changes, message",
  [
    ({"rating": "6"}, r"row 4: rating 6 for s\d\d\.wav is outside 1\.\.5"),
    ({"rating": "3.5"}, r"row 4: rating '3\.5' for s\d\d\.wav is not a whole number"),
    ({"rating": "good"}, r"row 4: rating 'good' for s\d\d\.wav is not a number"),
    ({"rating": " "}, r"row 4: no rating for s\d\d\.wav"),
    ({"file": "s99.wav"}, r"row 4: 's99\.wav' is not a stimulus of"),
    ({"listener": "L05"}, r"ratings of several listeners \['L02', 'L05'\]"),
  ],
)
def test_bad_returns_are_one_line_naming_sheet_and_row(package, tmp_path, changes, message):
  paths = listening.simulate_returns(package, str(tmp_path), seed=1)
  edit_sheet(paths[2], 2, **changes)
  with pytest.raises(AmpSpaceError, match=re.escape(paths[2]) + ": " + message) as e:
    listening.read_package_ratings(package, str(tmp_path))
  assert "\n" not in str(e.value)


def test_incomplete_or_duplicate_returns(package, tmp_path):
  paths = listening.simulate_returns(package, str(tmp_path / "r"), seed=1)
  rows = read_csv(paths[0])
  edit_sheet(paths[0], 1, file=rows[0]["file"])
  with pytest.raises(AmpSpaceError, match=r"L00\.csv: row 3: s\d\d\.wav is rated twice"):
    listening.read_package_ratings(package, paths)
  with pytest.raises(AmpSpaceError, match=r"L01\.csv was already|listener L01 was already"):
    listening.read_package_ratings(package, [paths[1], paths[1]])
  with pytest.raises(AmpSpaceError, match=r"L00\.csv: row 2: no rating"):  # unfilled templates
    listening.read_package_ratings(package, os.path.join(package, "listeners"))
  with pytest.raises(AmpSpaceError, match=r"key\.csv: missing columns \['rating'\]"):
    listening.read_package_ratings(package, os.path.join(package, "key.csv"))
  with pytest.raises(AmpSpaceError, match=r"key\.csv: missing; .* is not a listening package"):
    listening.read_package_ratings(str(tmp_path), paths)


# ---------------------------------------------------------------------------- statistics


def simulated_studies(
  num: int,
  listeners: int = 8,
  per_listener: int = 30,
  mean: float = 3.0,
  listener_sd: float = 1.0,
  trial_sd: float = 0.3,
  seed: int = 0,
):
  """`num` studies of one condition with a KNOWN listener effect: rating = mean + listener
  bias N(0, listener_sd) + trial noise N(0, trial_sd), continuous; shape (num, L * m)."""
  rng = np.random.default_rng(seed)
  bias = rng.normal(0.0, listener_sd, (num, listeners, 1))
  x = mean + bias + rng.normal(0.0, trial_sd, (num, listeners, per_listener))
  return x.reshape(num, -1), np.repeat(np.arange(listeners), per_listener)


def test_listener_bootstrap_covers_the_true_mean_where_the_t_interval_does_not():
  studies, lids = simulated_studies(200)
  covered = {"t": 0, "listener_bootstrap": 0, "plain_percentile": 0}
  for i, x in enumerate(studies):
    _, lo, hi = listening.t_interval(x)
    covered["t"] += lo <= 3.0 <= hi
    _, lo, hi = listening.listener_bootstrap_ci(x, lids, n_boot=1000, seed=i)
    covered["listener_bootstrap"] += lo <= 3.0 <= hi
    _, lo, hi = listening.listener_bootstrap_ci(x, lids, n_boot=1000, seed=i, expand=False)
    covered["plain_percentile"] += lo <= 3.0 <= hi
  rate = {k: v / len(studies) for k, v in covered.items()}
  print("coverage of the true mean over 200 simulated studies:", rate)
  assert rate["t"] < 0.6  # measured 0.28: every rating counted as independent
  assert rate["listener_bootstrap"] > 0.85  # measured 0.93 (nominal 0.95)
  assert rate["plain_percentile"] < rate["listener_bootstrap"]  # 0.87: why it is expanded


def test_bootstrap_interval_details():
  x, lids = simulated_studies(1)
  x = x[0]
  mean, lo, hi = listening.listener_bootstrap_ci(x, lids, seed=7)
  assert mean == pytest.approx(x.mean())
  assert (mean, lo, hi) == listening.listener_bootstrap_ci(x, lids, seed=7)  # seeded
  # Only the listeners' means matter when everyone rates as often: the bootstrap's width is
  # about the t interval over the 8 listener means, not over the 240 ratings.
  means = x.reshape(8, -1).mean(axis=1)
  _, tlo, thi = listening.t_interval(means)
  assert 0.8 < (hi - lo) / (thi - tlo) < 1.25
  _, nlo, nhi = listening.t_interval(x)
  assert (hi - lo) > 3 * (nhi - nlo)
  assert np.isnan(listening.listener_bootstrap_ci([3, 4, 5], ["a", "a", "a"])[1])  # one listener
  lo, hi = listening.expanded_levels(8)
  assert lo == pytest.approx(0.0057, abs=2e-4) and hi == pytest.approx(1 - lo)
  with pytest.raises(AmpSpaceError, match="unknown method"):
    listening.mos_listener_bootstrap([{"condition": "a", "rating": 3}], method="mixed")
