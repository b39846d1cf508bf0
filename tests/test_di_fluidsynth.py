"""FluidSynth rendering: deterministic, bends applied, no bleed between slots, clean programs.

Skips without the fluidsynth binary and soundfont, unless AMPSPACE_REQUIRE_PLUGINS=1.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from ampspace import SAMPLE_RATE
from ampspace.di import corpus, fluidsynth_render, report
from ampspace.di.phrases import Bend, Note, Phrase, make_phrase
from conftest import require_or_skip


@pytest.fixture(autouse=True)
def _need_fluidsynth():
  has_sf2 = any(os.path.isfile(p) for p in fluidsynth_render.SOUNDFONT_CANDIDATES)
  require_or_skip(
    shutil.which("fluidsynth") is not None and has_sf2,
    "fluidsynth or fluid-soundfont-gm not installed (launch/setup.sh installs them)",
  )


def _one_note(pitch=57, program=27, bends=(), seconds=3.0, end=1.5):
  return Phrase(
    id="t",
    seed=0,
    index=0,
    style="test",
    program=program,
    tempo=120.0,
    key="A",
    seconds=seconds,
    notes=[Note(pitch, 0.1, end, 100)],
    bends=list(bends),
  )


def _median_pitch(x):
  return float(np.median(report.pitch_track(x)))


def test_render_is_deterministic_and_sized():
  ps = [make_phrase(0, i, 4.0) for i in range(3)]
  a = fluidsynth_render.render_phrases(ps)
  b = fluidsynth_render.render_phrases(ps)
  assert [len(x) for x in a] == [4 * SAMPLE_RATE] * 3
  assert all(x.dtype == np.float32 and np.array_equal(x, y) for x, y in zip(a, b))
  assert all(np.max(np.abs(x)) > 0.01 for x in a)


def test_pitch_and_bend_range():
  """A3 sounds at MIDI 57; a +5 semitone bend (beyond GM's default ±2) moves it to 62."""
  plain, bent = fluidsynth_render.render_phrases([_one_note(), _one_note(bends=[Bend(0.0, 5.0)])])
  assert abs(_median_pitch(plain[int(0.2 * SAMPLE_RATE) : SAMPLE_RATE]) - 57) < 0.5
  assert abs(_median_pitch(bent[int(0.2 * SAMPLE_RATE) : SAMPLE_RATE]) - 62) < 0.5


def test_no_sound_bleeds_into_the_next_slot():
  long_ring = _one_note(pitch=40, program=25, end=2.9)  # rings to the end of its slot
  quiet = _one_note(pitch=64, end=0.1 + 0.05)  # a tiny note at 0.1 s, then nothing
  a, b = fluidsynth_render.render_phrases([long_ring, quiet])
  assert np.max(np.abs(a[-SAMPLE_RATE // 10 :])) > 1e-3  # slot 0 still sounding at its end
  assert np.max(np.abs(b[: int(0.09 * SAMPLE_RATE)])) < 1e-6  # slot 1 starts silent
  assert np.max(np.abs(b[SAMPLE_RATE:])) < 1e-3  # and its short note has died away


def test_programs_sound_different():
  xs = fluidsynth_render.render_phrases([_one_note(program=p) for p in (24, 26, 27, 28)])
  cents = [report.passage_features(x)["centroid_hz"] for x in xs]
  assert len({round(c, -1) for c in cents}) == 4


def test_fluidsynth_corpus_is_reproducible(tmp_path):
  kw = dict(minutes=0.2, seconds=4.0, engine="fluidsynth", progress=False, workers=1)
  corpus.build_corpus(str(tmp_path / "a"), **kw)
  corpus.build_corpus(str(tmp_path / "b"), **kw)
  a = corpus.check_manifest(str(tmp_path / "a"))
  b = corpus.check_manifest(str(tmp_path / "b"))
  assert len(a) == 3 and [e["sha256"] for e in a] == [e["sha256"] for e in b]
  assert all(e["engine"] == "fluidsynth:FluidR3_GM.sf2" for e in a)
