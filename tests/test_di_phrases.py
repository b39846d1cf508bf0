"""Phrase generation: deterministic, in the guitar's range, clean programs, the promised styles."""

from __future__ import annotations

import numpy as np
import pytest

from ampspace.di import phrases, tunes
from ampspace.di.phrases import BEND_RANGE, E2, E6, PROGRAMS, STYLES, TAIL_SECONDS, make_phrase


def test_same_seed_and_index_give_the_same_phrase():
  assert make_phrase(3, 7) == make_phrase(3, 7)
  assert make_phrase(3, 7).notes != make_phrase(4, 7).notes
  assert make_phrase(3, 7).notes != make_phrase(3, 8).notes


@pytest.mark.parametrize("style", sorted(STYLES))
def test_every_style_stays_in_range_and_ends_before_the_tail(style):
  for index in range(6):
    p = make_phrase(11, index, 10.0, style=style)
    assert p.style == style and p.notes, (style, index)
    assert p.program in PROGRAMS  # never overdrive (29) or distortion (30)
    assert all(E2 <= n.pitch <= E6 for n in p.notes)
    assert all(0 <= n.start < n.end <= 10.0 - TAIL_SECONDS + 1e-9 for n in p.notes)
    assert all(1 <= n.velocity <= 127 for n in p.notes)
    assert all(abs(b.semitones) <= BEND_RANGE for b in p.bends)


def test_corpus_mix_covers_styles_programs_tempo_velocity_and_register():
  ps = [make_phrase(0, i) for i in range(120)]
  assert {p.style for p in ps} == set(STYLES)
  assert {p.program for p in ps} == set(PROGRAMS)
  tempos = [p.tempo for p in ps]
  assert min(tempos) < 90 and max(tempos) > 150
  vel = [n.velocity for p in ps for n in p.notes]
  assert np.percentile(vel, 5) < 60 and np.percentile(vel, 95) > 100
  pitches = [n.pitch for p in ps for n in p.notes]
  assert min(pitches) <= 42 and max(pitches) >= 80


def test_bends_only_on_monophonic_lines():
  """Pitch bend moves the whole channel, so a phrase with bends must not overlap notes."""
  seen = 0
  for i in range(80):
    p = make_phrase(5, i)
    if p.bends:
      seen += 1
      for a, b in zip(p.notes, p.notes[1:]):
        assert b.start >= a.end - 1e-9, (p.id, a, b)
  assert seen >= 10


def test_licks_have_bends_vibrato_and_slides():
  kinds = set()
  for i in range(40):
    p = make_phrase(2, i, style="lick")
    values = [b.semitones for b in p.bends]
    if any(v in (1.0, 2.0) for v in values):
      kinds.add("bend")
    if any(0 < abs(v) < 0.4 for v in values) and any(v < 0 for v in values):
      kinds.add("vibrato")
    if any(abs(v) >= 3 for v in values):
      kinds.add("slide")
  assert kinds == {"bend", "vibrato", "slide"}


def test_strums_have_staggered_string_onsets_in_stroke_order():
  p = make_phrase(1, 0, style="strum")
  first = [n for n in p.notes if n.start < 0.1]  # the first (down) stroke
  assert len(first) >= 4
  onsets = [n.start for n in sorted(first, key=lambda n: n.pitch)]
  assert all(b > a for a, b in zip(onsets, onsets[1:]))  # low string first
  assert 0.005 < onsets[-1] - onsets[0] < 0.08


def test_palm_mutes_are_short():
  p = make_phrase(4, 1, style="palm_mute")
  lengths = np.array([n.end - n.start for n in p.notes])
  assert np.median(lengths) < 0.13


def test_melody_comes_from_the_music21_corpus_when_it_is_there():
  if not tunes.tune_paths():
    pytest.skip("music21 corpus not installed")
  p = make_phrase(0, 3, style="melody")
  assert p.source.endswith((".abc", ".mxl"))
  tune = tunes.load_tune(next(t for t in tunes.tune_paths() if t.endswith(p.source)))
  # The phrase is a transposed stretch of the tune: its intervals appear in the tune's.
  ints = np.diff([n.pitch for n in p.notes][:6])
  tune_ints = np.diff([e[0] for e in tune.events])
  assert any(np.array_equal(tune_ints[k : k + len(ints)], ints) for k in range(len(tune_ints)))


def test_melody_falls_back_to_a_lick_without_a_corpus(monkeypatch):
  monkeypatch.setattr(tunes, "pick_tune", lambda rng: None)
  p = make_phrase(0, 3, style="melody")
  assert p.source == "generated" and p.notes


def test_transposition_fits_a_tune_into_the_window():
  shift = tunes.guitar_transposition([84, 100], 0, lo=52, hi=76)
  assert 52 <= 84 + shift and 100 + shift <= 76 + 12
  assert shift % 12 == 0
  assert tunes.transposed_key("G major", 2) == "A major"
  assert tunes.transposed_key("B- minor", 2) == "B- minor"  # unknown spelling left alone


def test_unclean_program_is_refused():
  with pytest.raises(ValueError):
    make_phrase(0, 0, program=29)
  assert make_phrase(0, 0, program=24).program == 24
  assert phrases.PROGRAMS[28] == "muted"
