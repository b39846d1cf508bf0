"""User DIs: any rate/channel count in, 44.1 kHz mono passages out, cut at quiet points."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from ampspace import SAMPLE_RATE
from ampspace.di import user_di
from ampspace.di.karplus import phrase
from ampspace.errors import AmpSpaceError


def _take(seconds_list, gap=3.0, sr=SAMPLE_RATE):
  """Karplus phrases separated by `gap` s of silence, with 1 s of silence around."""
  parts = [np.zeros(sr)]
  for k, s in enumerate(seconds_list):
    parts += [phrase(k, s, sr), np.zeros(int(gap * sr))]
  return np.concatenate(parts).astype(np.float32)


def test_resamples_to_44k1_and_downmixes_stereo_with_a_warning(tmp_path):
  sr = 48000
  t = np.arange(sr * 2) / sr
  tone = 0.5 * np.sin(2 * np.pi * 440 * t)
  path = str(tmp_path / "take.flac")
  sf.write(path, np.stack([tone, tone], axis=1), sr)
  warnings = []
  x = user_di.load_audio(path, warn=warnings.append)
  assert len(warnings) == 1 and "take.flac" in warnings[0] and "downmixed" in warnings[0]
  assert x.dtype == np.float32 and x.ndim == 1
  assert abs(len(x) - 2 * SAMPLE_RATE) <= 1
  spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
  assert abs(np.argmax(spectrum) * SAMPLE_RATE / len(x) - 440) < 1.0


def test_passages_are_about_10_s_do_not_overlap_and_skip_silence(tmp_path):
  x = _take([25.0, 6.0])
  path = str(tmp_path / "long.wav")
  sf.write(path, x, SAMPLE_RATE, subtype="FLOAT")
  ps = user_di.passages_of(x, path, "long.wav")
  spans = [(p.start, p.end) for p in ps]
  assert spans == sorted(spans)
  assert all(b[0] >= a[1] for a, b in zip(spans, spans[1:]))  # no overlap
  assert len({p.id for p in ps}) == len(ps)
  # the first take (25 s) becomes 8–12 s passages; the 3 s gap is never inside a passage
  gap = (int(26.3 * SAMPLE_RATE), int(28.7 * SAMPLE_RATE))
  assert all(e <= gap[0] or s >= gap[1] for s, e in spans)
  assert not any(s < SAMPLE_RATE * 0.9 for s, _ in spans[:1] if s == 0)  # leading silence cut
  first_take = [(s, e) for s, e in spans if e <= gap[0]]
  assert len(first_take) >= 2
  assert all(7.9 * SAMPLE_RATE <= e - s <= 12.1 * SAMPLE_RATE for s, e in first_take[:-1])
  assert len(spans) == len(first_take) + 1  # the 6 s take is one passage


def test_cuts_fall_at_quiet_points():
  """A pulse train with a quiet spot in each cut window: the cut lands in the quiet spot."""
  sr = SAMPLE_RATE
  rng = np.random.default_rng(0)
  x = 0.3 * rng.standard_normal(30 * sr).astype(np.float32)
  for q in (9.3, 19.1):  # 150 ms of near silence (not a silent stretch: < MIN_GAP_SECONDS)
    x[int(q * sr) : int((q + 0.15) * sr)] *= 0.001
  db = user_di.frame_db(x)
  spans = user_di.split_points(db, 0, len(x), 10.0)
  cuts = [e / sr for _, e in spans[:-1]]
  assert len(cuts) == 2
  assert 9.3 <= cuts[0] <= 9.45 and 19.1 <= cuts[1] <= 19.25


def test_ids_are_stable(tmp_path):
  x = _take([12.0])
  path = str(tmp_path / "My Take #1.wav")
  sf.write(path, x, SAMPLE_RATE)
  a = user_di.passages_of(x, path, "My Take #1.wav")
  b = user_di.passages_of(x.copy(), path, "My Take #1.wav")
  assert a == b and a[0].id.startswith("user_my-take-1_")


def test_find_audio_files_recurses_and_sorts(tmp_path):
  (tmp_path / "b").mkdir()
  for name in ("b/z.FLAC", "a.wav", "notes.txt", ".hidden.wav"):
    (tmp_path / name).write_bytes(b"")
  found = [p[len(str(tmp_path)) + 1 :] for p in user_di.find_audio_files(str(tmp_path))]
  assert found == ["a.wav", "b/z.FLAC"]
  (tmp_path / "empty").mkdir()
  with pytest.raises(AmpSpaceError, match="no .wav or .flac"):
    user_di.find_audio_files(str(tmp_path / "empty"))
  with pytest.raises(AmpSpaceError, match="not found"):
    user_di.find_audio_files(str(tmp_path / "missing"))


@pytest.mark.parametrize("kind", ["unreadable", "zero_length", "nan", "silent"])
def test_bad_input_raises_naming_the_file(tmp_path, kind):
  path = str(tmp_path / f"{kind}.wav")
  if kind == "unreadable":
    with open(path, "wb") as f:
      f.write(b"RIFF not really a wav file")
  elif kind == "zero_length":
    sf.write(path, np.zeros(0, np.float32), 44100)
  elif kind == "nan":
    x = np.zeros(44100, np.float32)
    x[100] = np.nan
    sf.write(path, x, 44100, subtype="FLOAT")
  else:
    sf.write(path, np.zeros(44100 * 3, np.float32), 44100)
  with pytest.raises(AmpSpaceError) as e:
    x = user_di.load_audio(path)
    user_di.passages_of(x, path, f"{kind}.wav")
  assert path in str(e.value)
  expected = {
    "unreadable": "cannot read",
    "zero_length": "empty",
    "nan": "NaN",
    "silent": "silent",
  }[kind]
  assert expected in str(e.value)
