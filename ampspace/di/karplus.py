"""Plucked-string DIs by Karplus-Strong synthesis: no system packages needed, deterministic for a seed.

Used for tests and as the quickstart's fallback DI source; the FluidSynth renderer gives more
realistic guitar timbres.
"""

from __future__ import annotations

import numpy as np
import scipy.signal

from ampspace import SAMPLE_RATE

E2_MIDI, E6_MIDI = 40, 88
PENTATONIC = (0, 3, 5, 7, 10)


def pluck(
  midi_note: float,
  n: int,
  velocity: float,
  rng: np.random.Generator,
  sr: int = SAMPLE_RATE,
  decay: float = 0.996,
) -> np.ndarray:
  """n samples of one plucked note: a noise burst through a comb with a lowpassing loop."""
  period = max(2, int(round(sr / (440.0 * 2 ** ((midi_note - 69) / 12)))))
  excitation = np.zeros(n)
  burst = rng.uniform(-1, 1, size=min(period, n))
  burst = scipy.signal.lfilter([0.5, 0.5], [1.0], burst)  # softer pick
  burst -= burst.mean()  # zero-mean pick: the loop has a DC gain of 1/(1-decay), a DI has no DC
  excitation[: len(burst)] = burst * velocity
  a = np.zeros(period + 2)
  a[0], a[period], a[period + 1] = 1.0, -decay / 2, -decay / 2
  return scipy.signal.lfilter([1.0], a, excitation)


def phrase(seed: int, seconds: float = 4.0, sr: int = SAMPLE_RATE) -> np.ndarray:
  """A riff of random pentatonic notes and two-note power chords at a random tempo, peak 0.5."""
  rng = np.random.default_rng(seed)
  n = int(seconds * sr)
  out = np.zeros(n)
  tempo = rng.uniform(80, 160)
  step = 60.0 / tempo / rng.choice([1, 2, 4])
  root = int(rng.integers(E2_MIDI, E2_MIDI + 12))
  t = 0.0
  while t < seconds - 0.05:
    dur = step * rng.choice([1, 1, 2, 3])
    octave = 12 * int(rng.integers(0, 3))
    note = root + octave + PENTATONIC[int(rng.integers(len(PENTATONIC)))]
    notes = [note, note + 7] if rng.random() < 0.25 else [note]
    start = int(t * sr)
    length = min(int((dur + 0.3) * sr), n - start)
    for m in notes:
      if m <= E6_MIDI:
        out[start : start + length] += pluck(m, length, rng.uniform(0.4, 1.0), rng)
    t += dur
  peak = np.max(np.abs(out))
  return (0.5 * out / peak if peak > 0 else out).astype(np.float32)


def render_notes(phrase, sr: int = SAMPLE_RATE) -> np.ndarray:
  """Renders a `phrases.Phrase`'s notes by Karplus-Strong: the package-free engine.

  Pitch bends are ignored (a plucked comb cannot glide); a note-off damps the string over
  30 ms. Deterministic: the pluck noise is seeded from the phrase's seed and index.
  """
  rng = np.random.default_rng([phrase.seed, phrase.index, 7])
  n = int(round(phrase.seconds * sr))
  out = np.zeros(n)
  damp = int(0.03 * sr)
  for note in phrase.notes:
    start = int(round(note.start * sr))
    held = max(1, int(round((note.end - note.start) * sr)))
    length = min(held + damp, n - start)
    if length <= 0:
      continue
    y = pluck(note.pitch, length, note.velocity / 127.0, rng, sr)
    if length > held:
      y[held:] *= np.linspace(1.0, 0.0, length - held)
    out[start : start + length] += y
  return out.astype(np.float32)
