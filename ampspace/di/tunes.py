"""Melodies from the tune corpus that music21 ships (no network): fiddle tunes and chorales.

Only single-line sources are used: the one-part tunes of Ryan's Mammoth Collection and the
soprano line of the Bach chorales. Works are listed in sorted path order and picked by the
caller's random generator, so the choice is deterministic for a seed; a work that is missing
or fails to parse is skipped (a leaner music21 install still yields melodies, or none).
"""

from __future__ import annotations

import dataclasses
import functools
import os

import numpy as np

from ampspace.di.phrases import NOTE_NAMES

MAX_TRIES = 8  # parse failures tolerated before giving up on a melody for this phrase


@dataclasses.dataclass(frozen=True)
class Tune:
  path: str  # relative to music21's corpus folder, e.g. "ryansMammoth/SoldiersJoyReel.abc"
  key: str  # e.g. "G major"
  events: tuple[tuple[int, float, float], ...]  # (MIDI pitch, offset, duration) in quarters


@functools.lru_cache(maxsize=1)
def tune_paths() -> tuple[str, ...]:
  """Corpus paths of the candidate works, sorted; empty if music21 has no corpus."""
  try:
    from music21 import corpus

    paths = [str(p) for p in corpus.getPaths()]
  except Exception:  # music21 missing or its corpus stripped
    return ()
  keep = [
    p
    for p in paths
    if ("/ryansMammoth/" in p and p.endswith(".abc")) or ("/bach/" in p and p.endswith(".mxl"))
  ]
  return tuple(sorted(keep))


def _relative(path: str) -> str:
  marker = f"{os.sep}corpus{os.sep}"
  return path.split(marker, 1)[1] if marker in path else os.path.basename(path)


@functools.lru_cache(maxsize=256)
def load_tune(path: str) -> Tune | None:
  """The first part's notes (chords reduced to their top note); None if unusable."""
  try:
    from music21 import converter

    score = converter.parse(path)
    part = score.parts[0] if getattr(score, "parts", None) else score
    events = []
    for n in part.flatten().notes:
      pitch = max(p.midi for p in n.pitches)
      dur = float(n.duration.quarterLength)
      if dur > 0:
        events.append((int(pitch), float(n.offset), dur))
    key = "unknown"
    sigs = list(part.flatten().getElementsByClass("KeySignature"))
    if sigs:
      k = sigs[0].asKey() if hasattr(sigs[0], "asKey") else sigs[0]
      key = f"{k.tonic.name.replace('-', 'b')} {k.mode}"
  except Exception:
    return None
  if len(events) < 8:
    return None
  return Tune(_relative(path), key, tuple(sorted(events, key=lambda e: e[1])))


def pick_tune(rng: np.random.Generator) -> Tune | None:
  """A parsable tune chosen by `rng` (deterministic for its state); None without a corpus."""
  paths = tune_paths()
  for _ in range(MAX_TRIES if paths else 0):
    tune = load_tune(paths[int(rng.integers(len(paths)))])
    if tune is not None:
      return tune
  return None


def guitar_transposition(pitches: list[int], shift: int, lo: int, hi: int) -> int:
  """`shift` plus whole octaves that bring the line's middle into [lo, hi] (and its extremes as
  near as octaves allow)."""
  if not pitches:
    return shift
  p_lo, p_hi = min(pitches) + shift, max(pitches) + shift
  best, best_cost = shift, None
  for octave in range(-5, 6):
    a, b = p_lo + 12 * octave, p_hi + 12 * octave
    cost = max(0, lo - a) + max(0, b - hi)
    if best_cost is None or cost < best_cost:
      best, best_cost = shift + 12 * octave, cost
  return best


def transposed_key(key: str, shift: int) -> str:
  """'G major' shifted by `shift` semitones, spelled with the project's note names."""
  name, _, mode = key.partition(" ")
  aliases = {
    "Db": "C#",
    "D#": "Eb",
    "Gb": "F#",
    "G#": "Ab",
    "A#": "Bb",
    "Cb": "B",
    "Fb": "E",
    "E#": "F",
    "B#": "C",
  }
  name = aliases.get(name, name)
  if name not in NOTE_NAMES:
    return key
  return f"{NOTE_NAMES[(NOTE_NAMES.index(name) + shift) % 12]} {mode}"
