"""Corpus writing: manifest integrity, levels, idempotence, resuming, user folders, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from ampspace import SAMPLE_RATE
from ampspace.audio.wav_io import read_wav
from ampspace.di import corpus, fluidsynth_render, report
from ampspace.di.karplus import phrase
from ampspace import files
from ampspace.errors import AmpSpaceError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _build(out, **kw):
  kw = {"minutes": 0.5, "engine": "karplus", "seconds": 5.0, "progress": False, **kw}
  return corpus.build_corpus(str(out), **kw)


def test_karplus_corpus_manifest_is_complete_and_levels_are_normalised(tmp_path):
  s = _build(tmp_path)
  assert s["rendered"] == 6 and s["passages"] == 6
  entries = corpus.check_manifest(str(tmp_path))
  for e in entries:
    for key in ("id", "source", "program", "tempo", "key", "start", "end", "sha256"):
      assert key in e
    assert e["end"] - e["start"] == 5 * SAMPLE_RATE
    x, _ = read_wav(tmp_path / e["file"])
    assert abs(20 * np.log10(np.max(np.abs(x))) - corpus.PEAK_DBFS) < 0.01
  assert sorted(f for f in os.listdir(tmp_path) if f.endswith(".wav")) == sorted(
    e["file"] for e in entries
  )


def test_rerun_is_idempotent_and_deterministic(tmp_path):
  _build(tmp_path / "a")
  before = (tmp_path / "a" / "manifest.json").read_bytes()
  assert _build(tmp_path / "a")["rendered"] == 0
  assert (tmp_path / "a" / "manifest.json").read_bytes() == before
  _build(tmp_path / "b")  # a fresh folder, same seed: the same bytes
  assert (tmp_path / "b" / "manifest.json").read_bytes() == before
  _build(tmp_path / "c", seed=1)
  assert (tmp_path / "c" / "manifest.json").read_bytes() != before


def test_resume_recreates_missing_files_with_the_same_bytes(tmp_path):
  _build(tmp_path)
  m = json.loads((tmp_path / "manifest.json").read_text())
  victim = m["passages"][2]
  os.remove(tmp_path / victim["file"])
  assert _build(tmp_path)["rendered"] == 1
  assert files.sha256_file(str(tmp_path / victim["file"])) == victim["sha256"]
  assert _build(tmp_path, minutes=1.0)["rendered"] == 6  # growing the corpus adds passages
  assert len(corpus.check_manifest(str(tmp_path))) == 12


def test_check_manifest_catches_tampering(tmp_path):
  _build(tmp_path)
  e = corpus.read_manifest(str(tmp_path))["passages"]["ks_0_00001"]
  x, _ = read_wav(tmp_path / e["file"])
  sf.write(tmp_path / e["file"], x * 0.5, SAMPLE_RATE, subtype="FLOAT")
  with pytest.raises(AmpSpaceError, match="sha256"):
    corpus.check_manifest(str(tmp_path))
  assert _build(tmp_path, verify=True)["rendered"] == 1  # --verify repairs it
  corpus.check_manifest(str(tmp_path))
  sf.write(tmp_path / "stray.wav", x, SAMPLE_RATE)
  with pytest.raises(AmpSpaceError, match="stray.wav"):
    corpus.check_manifest(str(tmp_path))


def test_user_folder_passages_are_annotated_and_do_not_overlap(tmp_path):
  src = tmp_path / "takes"
  src.mkdir()
  take = np.concatenate([phrase(1, 23.0), np.zeros(2 * SAMPLE_RATE), phrase(2, 4.0)])
  sf.write(src / "take1.wav", take, 48000)  # any rate: resampled
  sf.write(src / "take2.flac", np.stack([phrase(3, 6.0)] * 2, 1), SAMPLE_RATE)  # stereo
  out = tmp_path / "corpus"
  s = _build(out, minutes=0, from_dir=str(src), seconds=10.0)
  assert s["rendered"] == 0 and s["user"] >= 4
  entries = corpus.check_manifest(str(out))  # includes the no-overlap check per source
  assert {e["source"] for e in entries} == {"user:take1.wav", "user:take2.flac"}
  for e in entries:
    x, _ = read_wav(out / e["file"])
    assert len(x) == e["end"] - e["start"]
    assert e["end"] <= len(take) * SAMPLE_RATE / 48000 + 1
  assert _build(out, minutes=0, from_dir=str(src), seconds=10.0)["user"] == 0


def test_bad_user_file_stops_with_its_name(tmp_path):
  src = tmp_path / "takes"
  src.mkdir()
  sf.write(src / "good.wav", phrase(1, 4.0), SAMPLE_RATE)
  (src / "broken.wav").write_bytes(b"RIFF....WAVEjunk")
  with pytest.raises(AmpSpaceError, match="broken.wav"):
    _build(tmp_path / "out", minutes=0, from_dir=str(src))


def test_bad_arguments_are_refused(tmp_path):
  with pytest.raises(AmpSpaceError, match="--seconds"):
    _build(tmp_path, seconds=0.5)
  with pytest.raises(AmpSpaceError, match="--engine"):
    _build(tmp_path, engine="timidity")
  _build(tmp_path)
  with pytest.raises(AmpSpaceError, match="peak"):
    _build(tmp_path, peak_dbfs=-3.0)


def test_missing_fluidsynth_says_to_run_the_setup(tmp_path, monkeypatch):
  monkeypatch.setattr(fluidsynth_render.shutil, "which", lambda name: None)
  with pytest.raises(AmpSpaceError) as e:
    _build(tmp_path, engine="fluidsynth")
  assert "launch/setup.sh" in str(e.value) and "--engine=karplus" in str(e.value)


def test_report_measures_level_crest_centroid_and_pitch():
  t = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
  x = 0.5 * np.sin(2 * np.pi * 220.0 * t)  # A3 = MIDI 57
  f = report.passage_features(x)
  assert abs(f["rms_dbfs"] - 20 * np.log10(0.5 / np.sqrt(2))) < 0.05
  assert abs(f["crest_db"] - 3.01) < 0.05
  assert 200 < f["centroid_hz"] < 260
  counts = np.array(f["pitch_counts"])
  assert report.PITCH_LO + int(np.argmax(counts)) == 57 and counts.sum() > 100


def test_cli_writes_corpus_and_report_and_errors_in_one_line(tmp_path):
  env = {**os.environ, "PYTHONPATH": ROOT}
  out = tmp_path / "c"
  r = subprocess.run(
    [
      sys.executable,
      "-m",
      "ampspace.di",
      f"--out={out}",
      "--minutes=0.25",
      "--engine=karplus",
      "--seconds=5",
    ],
    capture_output=True,
    text=True,
    env=env,
    cwd=ROOT,
  )
  assert r.returncode == 0, r.stderr
  assert "3 passages" in r.stdout
  summary = json.loads((out / "report.json").read_text())["summary"]
  assert summary["passages"] == 3 and (out / "report.png").stat().st_size > 10_000
  bad = tmp_path / "bad"
  bad.mkdir()
  (bad / "x.wav").write_bytes(b"")
  r = subprocess.run(
    [sys.executable, "-m", "ampspace.di", f"--out={out}", f"--from={bad}"],
    capture_output=True,
    text=True,
    env=env,
    cwd=ROOT,
  )
  assert r.returncode == 2
  lines = r.stderr.strip().splitlines()
  assert lines[-1].startswith("error: ") and "x.wav" in lines[-1]
  assert "Traceback" not in r.stderr
