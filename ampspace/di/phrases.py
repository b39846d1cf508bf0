"""Guitar phrases as note events, deterministic for (seed, index).

A DI corpus is useful when it covers what a guitarist plays into an amp: single-note licks in
many scales and registers, power chords and palm mutes, strummed and fingerpicked chords,
bends, vibrato, slides and plain melodies, at varied tempo and velocity. Each phrase is plain
data (notes in seconds plus pitch-bend points) so that any engine (FluidSynth, Karplus-Strong)
can render it, and so tests can check the musical constraints without rendering audio.

Pitch bend is per MIDI channel, so bends, vibrato and slides only appear in monophonic
styles; the bend range is set to `BEND_RANGE` semitones by the renderer.
"""

from __future__ import annotations

import dataclasses

import numpy as np

E2, E6 = 40, 88  # the guitar's range as the issue states it (24 frets on the high E string)
BEND_RANGE = 12  # semitones at full pitch-wheel deflection; slides need more than GM's 2
TAIL_SECONDS = 0.6  # every note ends this long before the passage ends, so its release fits

# General MIDI programs, 0-based. Overdriven (29) and distortion (30) guitars are never used:
# a DI is the clean signal that goes into the amp.
PROGRAMS = {24: "nylon", 25: "steel", 26: "jazz", 27: "clean", 28: "muted"}

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MODES = {
  "major": (0, 2, 4, 5, 7, 9, 11),
  "minor": (0, 2, 3, 5, 7, 8, 10),
  "dorian": (0, 2, 3, 5, 7, 9, 10),
  "mixolydian": (0, 2, 4, 5, 7, 9, 10),
  "phrygian": (0, 1, 3, 5, 7, 8, 10),
  "lydian": (0, 2, 4, 6, 7, 9, 11),
  "harmonic minor": (0, 2, 3, 5, 7, 8, 11),
  "minor pentatonic": (0, 3, 5, 7, 10),
  "major pentatonic": (0, 2, 4, 7, 9),
  "blues": (0, 3, 5, 6, 7, 10),
}
# Chord voicings as MIDI pitches, low string first. Open shapes as played in first position;
# barre shapes (E- and A-form) are shifted up the neck by their fret.
OPEN_CHORDS = {
  ("E", "maj"): (40, 47, 52, 56, 59, 64),
  ("E", "min"): (40, 47, 52, 55, 59, 64),
  ("A", "maj"): (45, 52, 57, 61, 64),
  ("A", "min"): (45, 52, 57, 60, 64),
  ("D", "maj"): (50, 57, 62, 66),
  ("D", "min"): (50, 57, 62, 65),
  ("C", "maj"): (48, 52, 55, 60, 64),
  ("G", "maj"): (43, 47, 50, 55, 59, 67),
}
E_FORM = {"maj": (40, 47, 52, 56, 59, 64), "min": (40, 47, 52, 55, 59, 64)}
A_FORM = {"maj": (45, 52, 57, 61, 64), "min": (45, 52, 57, 60, 64)}
# Progressions as (scale degree in semitones, quality).
PROGRESSIONS = (
  ((0, "maj"), (7, "maj"), (9, "min"), (5, "maj")),  # I-V-vi-IV
  ((0, "maj"), (5, "maj"), (7, "maj"), (5, "maj")),  # I-IV-V-IV
  ((9, "min"), (5, "maj"), (0, "maj"), (7, "maj")),  # vi-IV-I-V
  ((2, "min"), (7, "maj"), (0, "maj"), (0, "maj")),  # ii-V-I
  ((0, "min"), (8, "maj"), (3, "maj"), (10, "maj")),  # i-VI-III-VII
  ((0, "min"), (10, "maj"), (8, "maj"), (7, "maj")),  # andalusian
)
STRUM_PATTERNS = ("D.DU.UDU", "D.D.D.D.", "D.DUDUDU", "D..UD.DU", "DDUUDDUU", "D...D...")


@dataclasses.dataclass(frozen=True)
class Note:
  pitch: int
  start: float
  end: float
  velocity: int


@dataclasses.dataclass(frozen=True)
class Bend:
  """Pitch-wheel position in semitones (within ±BEND_RANGE) from `time` on."""

  time: float
  semitones: float


@dataclasses.dataclass
class Phrase:
  id: str
  seed: int
  index: int
  style: str
  program: int
  tempo: float
  key: str
  seconds: float
  notes: list[Note]
  bends: list[Bend] = dataclasses.field(default_factory=list)
  source: str = "generated"  # or the music21 corpus path of a tune

  @property
  def program_name(self) -> str:
    return PROGRAMS[self.program]


# ---------------------------------------------------------------------------------------------
# helpers


def _key_name(root_pc: int, mode: str) -> str:
  return f"{NOTE_NAMES[root_pc % 12]} {mode}"


def _scale_pitches(root_pc: int, mode: str, lo: int, hi: int) -> list[int]:
  steps = MODES[mode]
  return [p for p in range(lo, hi + 1) if (p - root_pc) % 12 in steps]


def _velocity(rng: np.random.Generator, base: float, accent: bool) -> int:
  v = base + (18 if accent else 0) + rng.normal(0, 6)
  return int(np.clip(round(v), 20, 127))


def _contour(rng: np.random.Generator, t: float, seconds: float) -> float:
  """A slow dynamic contour (crescendo, decrescendo, swell or flat) as a velocity offset."""
  kind = rng.integers(4)
  x = t / seconds
  return float((0, 30 * x - 15, 15 - 30 * x, 25 * np.sin(np.pi * x) - 12)[kind])


def _chord_voicing(
  root_pc: int, quality: str, rng: np.random.Generator, prefer_open: bool
) -> tuple[int, ...]:
  name = NOTE_NAMES[root_pc % 12]
  if prefer_open and (name, quality) in OPEN_CHORDS:
    return OPEN_CHORDS[(name, quality)]
  e_fret, a_fret = (root_pc - 4) % 12, (root_pc - 9) % 12
  # Barre chords between frets 1 and 12: pick the form nearer the nut, sometimes the other.
  forms = sorted([(e_fret or 12, E_FORM), (a_fret or 12, A_FORM)], key=lambda f: f[0])
  fret, form = forms[1] if rng.random() < 0.25 and forms[1][0] <= 12 else forms[0]
  return tuple(p + fret for p in form[quality])


def _vibrato(rng: np.random.Generator, start: float, end: float, base: float = 0.0) -> list[Bend]:
  """Sinusoidal pitch wobble (0.1–0.35 semitone, 4.5–6.5 Hz) after the note settles."""
  depth, rate = rng.uniform(0.1, 0.35), rng.uniform(4.5, 6.5)
  t0 = start + rng.uniform(0.08, 0.2)
  times = np.arange(t0, end, 1 / (rate * 8))  # 8 points a cycle is smooth enough by ear
  return [Bend(float(t), base + depth * float(np.sin(2 * np.pi * rate * (t - t0)))) for t in times]


def _bend_up(rng: np.random.Generator, start: float, end: float, amount: int) -> list[Bend]:
  """A string bend: rise to `amount` semitones, hold, and sometimes release."""
  rise_at = start + min(0.05, (end - start) / 4)
  rise = rng.uniform(0.08, 0.2)
  pts = [Bend(rise_at + rise * f, amount * f * f * (3 - 2 * f)) for f in np.linspace(0, 1, 6)]
  if rng.random() < 0.5 and end - (rise_at + rise) > 0.3:
    rel = (end + rise_at + rise) / 2
    pts += [Bend(rel + 0.1 * f, amount * (1 - f)) for f in np.linspace(0, 1, 4)[1:]]
  return pts


# ---------------------------------------------------------------------------------------------
# styles: each returns (notes, bends, tempo, key)


def lick(rng: np.random.Generator, seconds: float, allow_bends: bool = True):
  """A single-note line from a scale or mode, with bends, vibrato and slides."""
  mode = str(rng.choice(list(MODES)))
  root = int(rng.integers(12))
  lo = int(rng.choice([E2, 48, 55, 64]))
  hi = min(E6 - 2, lo + int(rng.integers(14, 26)))
  scale = _scale_pitches(root, mode, lo, hi)
  tempo = float(rng.uniform(70, 180))
  sub = int(rng.choice([2, 3, 4], p=[0.45, 0.2, 0.35]))
  step = 60.0 / tempo / sub
  legato = rng.uniform(0.55, 0.98)
  base_vel = rng.uniform(55, 105)
  notes, bends = [], []
  i, t, bent = int(rng.integers(len(scale))), 0.0, False
  end_by = seconds - TAIL_SECONDS
  while t < end_by - step:
    dur = step * int(rng.choice([1, 1, 1, 2, 2, 3, 4]))
    if rng.random() < 0.1:  # rest
      t += dur
      continue
    move = int(
      rng.choice(
        [-2, -1, -1, 1, 1, 2, -3, 3, -4, 4],
        p=[0.1, 0.2, 0.15, 0.2, 0.15, 0.08, 0.03, 0.03, 0.03, 0.03],
      )
    )
    i = int(np.clip(i + move, 0, len(scale) - 1))
    end = min(t + dur * legato, end_by)
    if end - t < 0.03:
      break
    beat = abs((t / (60.0 / tempo)) - round(t / (60.0 / tempo))) < 1e-6
    vel = _velocity(rng, base_vel + _contour(rng, t, seconds) * 0.3, beat)
    pitch = scale[i]
    long_note = end - t > 0.3
    if bent:  # every new attack starts from the unbent string
      bends.append(Bend(t, 0.0))
      bent = False
    if allow_bends and long_note and rng.random() < 0.3 and pitch + 2 <= E6:
      bends += _bend_up(rng, t, end, int(rng.choice([1, 2])))
      bent = True
    elif allow_bends and long_note and rng.random() < 0.4:
      bends += _vibrato(rng, t, end)
      bent = True
    elif (
      allow_bends
      and notes
      and rng.random() < 0.15
      and abs(pitch - notes[-1].pitch) <= 7
      and not bent
    ):
      # Slide: the previous note keeps sounding and glides to this pitch without a new attack.
      prev = notes.pop()
      glide = rng.uniform(0.05, 0.15)
      shift = pitch - prev.pitch
      notes.append(Note(prev.pitch, prev.start, end, prev.velocity))
      bends += [Bend(t - glide + glide * f, shift * f) for f in np.linspace(0, 1, 6)]
      bent = True
      t += dur
      continue
    notes.append(Note(pitch, t, end, vel))
    t += dur
  return notes, bends, tempo, _key_name(root, mode)


def power_chords(rng: np.random.Generator, seconds: float, mute_share: float | None = None):
  """Root-fifth(-octave) riffs on the low strings, mixing palm-muted chugs and open hits."""
  root = int(rng.choice([40, 42, 43, 45, 47, 50]))
  mode = str(rng.choice(["minor pentatonic", "minor", "phrygian", "blues"]))
  roots = [p for p in _scale_pitches(root % 12, mode, root, root + 10)]
  tempo = float(rng.uniform(80, 190))
  sub = int(rng.choice([2, 4], p=[0.6, 0.4]))
  step = 60.0 / tempo / sub
  mute_share = rng.uniform(0.3, 0.9) if mute_share is None else mute_share
  with_octave = rng.random() < 0.4
  base_vel = rng.uniform(70, 110)
  stagger = rng.uniform(0.002, 0.008)  # downstroke: low string first
  notes = []
  t, end_by = 0.0, seconds - TAIL_SECONDS
  current = roots[0]
  while t < end_by - step:
    if rng.random() < 0.25:
      current = int(rng.choice(roots))
    muted = rng.random() < mute_share
    dur = step * (1 if muted else int(rng.choice([1, 2, 2, 4])))
    length = rng.uniform(0.06, 0.12) if muted else dur * rng.uniform(0.7, 0.98)
    vel = _velocity(rng, base_vel - (15 if muted else 0), not muted)
    chord = [current, current + 7] + ([current + 12] if with_octave else [])
    for k, p in enumerate(chord):
      s = t + k * stagger
      notes.append(Note(p, s, min(s + length, end_by), vel - 4 * k))
    t += dur
  return notes, [], tempo, _key_name(root % 12, mode)


def palm_mute(rng: np.random.Generator, seconds: float):
  """Chugging riffs: mostly muted low single notes and power chords, a few accents."""
  if rng.random() < 0.5:
    return power_chords(rng, seconds, mute_share=rng.uniform(0.75, 0.95))
  root = int(rng.choice([40, 42, 43, 45]))
  mode = str(rng.choice(["minor", "phrygian", "minor pentatonic"]))
  scale = _scale_pitches(root % 12, mode, root, root + 12)
  tempo = float(rng.uniform(90, 200))
  step = 60.0 / tempo / int(rng.choice([2, 4]))
  base_vel = rng.uniform(65, 105)
  notes, t, end_by = [], 0.0, seconds - TAIL_SECONDS
  while t < end_by - step:
    pitch = root if rng.random() < 0.6 else int(rng.choice(scale))
    accent = rng.random() < 0.15
    length = step * 0.9 if accent else rng.uniform(0.05, 0.11)
    notes.append(Note(pitch, t, min(t + length, end_by), _velocity(rng, base_vel, accent)))
    t += step
  return notes, [], tempo, _key_name(root % 12, mode)


def _progression(rng: np.random.Generator, prefer_open: bool):
  minor_prog = rng.random() < 0.35
  progs = [p for p in PROGRESSIONS if (p[0][1] == "min" and p[0][0] == 0) == minor_prog]
  prog = progs[int(rng.integers(len(progs)))]
  key_root = int(rng.integers(12))
  chords = [_chord_voicing(key_root + deg, q, rng, prefer_open) for deg, q in prog]
  return chords, _key_name(key_root, "minor" if minor_prog else "major")


def strum(rng: np.random.Generator, seconds: float):
  """Open or barre chords strummed with staggered string onsets (down: low→high, up: high→low)."""
  chords, key = _progression(rng, prefer_open=rng.random() < 0.6)
  tempo = float(rng.uniform(70, 150))
  eighth = 60.0 / tempo / 2
  pattern = str(rng.choice(STRUM_PATTERNS))
  beats_per_chord = int(rng.choice([2, 4, 4]))
  spread = rng.uniform(0.012, 0.05)  # whole-stroke duration: a fast or lazy strum
  base_vel = rng.uniform(60, 105)
  ringing: dict[int, Note] = {}  # string index → note still sounding
  notes = []
  end_by = seconds - TAIL_SECONDS
  slot, t = 0, 0.0
  while t < end_by - eighth:
    chord = chords[(slot // (2 * beats_per_chord)) % len(chords)]
    stroke = pattern[slot % len(pattern)]
    if stroke != ".":
      strings = list(range(len(chord)))
      if stroke == "U":  # upstrokes catch the top few strings, high first, softer
        strings = strings[-int(rng.integers(3, len(chord) + 1)) :][::-1]
      delay = spread / max(1, len(strings) - 1)
      vel = base_vel + _contour(rng, t, seconds) * 0.4 - (12 if stroke == "U" else 0)
      for k, s in enumerate(strings):
        onset = t + k * delay + rng.uniform(0, delay * 0.3)
        if onset >= end_by:
          break
        s_key = s + 6 - len(chord)  # string number counted from the high E
        if s_key in ringing:
          old = ringing.pop(s_key)
          notes.append(Note(old.pitch, old.start, max(old.start + 0.02, onset), old.velocity))
        ringing[s_key] = Note(
          chord[s], onset, end_by, _velocity(rng, vel, slot % (2 * beats_per_chord) == 0)
        )
    slot += 1
    t = slot * eighth
  notes += list(ringing.values())
  return sorted(notes, key=lambda n: (n.start, n.pitch)), [], tempo, key


def arpeggio(rng: np.random.Generator, seconds: float):
  """Fingerpicked chords: the bass string, then the upper strings in a repeating pattern."""
  chords, key = _progression(rng, prefer_open=rng.random() < 0.7)
  tempo = float(rng.uniform(60, 130))
  sub = int(rng.choice([2, 3, 4]))
  step = 60.0 / tempo / sub
  beats_per_chord = int(rng.choice([2, 4]))
  order = rng.permutation(4)  # which upper strings in which order
  base_vel = rng.uniform(50, 95)
  notes, t, k, end_by = [], 0.0, 0, seconds - TAIL_SECONDS
  n_per_chord = sub * beats_per_chord
  while t < end_by - step:
    chord = chords[(k // n_per_chord) % len(chords)]
    chord_end = min((k // n_per_chord + 1) * n_per_chord * step, end_by)
    pos = k % n_per_chord
    if pos == 0:
      pitch = chord[0]
    else:
      upper = chord[-4:]
      pitch = upper[int(order[(pos - 1) % 4]) % len(upper)]
    notes.append(
      Note(pitch, t, chord_end, _velocity(rng, base_vel + (10 if pos == 0 else 0), False))
    )
    k += 1
    t = k * step
  return notes, [], tempo, key


def melody(rng: np.random.Generator, seconds: float):
  """A tune from music21's bundled corpus, transposed into guitar range, with some vibrato.

  Falls back to a lick when the corpus (or music21) is unavailable, so the corpus still builds.
  """
  from ampspace.di import tunes  # music21 is slow to import; only the melody style needs it

  tune = tunes.pick_tune(rng)
  if tune is None:
    notes, bends, tempo, key = lick(rng, seconds)
    return notes, bends, tempo, key, "generated"
  tempo = float(rng.uniform(70, 150))
  beat = 60.0 / tempo
  events = tune.events
  first = float(rng.uniform(0, max(0.0, events[-1][1] - 4)))  # start somewhere in the tune
  events = [e for e in events if e[1] >= first]
  lo = int(rng.choice([E2 + 5, 52, 60]))  # low, middle or high position on the neck
  shift = tunes.guitar_transposition(
    [p for p, *_ in events], int(rng.integers(-5, 7)), lo=lo, hi=min(E6, lo + 24)
  )
  notes, bends = [], []
  end_by = seconds - TAIL_SECONDS
  base_vel = rng.uniform(60, 105)
  offset0 = events[0][1] if events else 0.0
  for pitch, off, dur in events:
    start = (off - offset0) * beat
    end = min(start + dur * beat * 0.95, end_by)
    if start >= end_by - 0.05 or end - start < 0.03:
      break
    notes.append(Note(pitch + shift, start, end, _velocity(rng, base_vel, False)))
    if end - start > 0.45 and rng.random() < 0.5:
      bends += _vibrato(rng, start, end)
      bends.append(Bend(end, 0.0))
  return notes, bends, tempo, tunes.transposed_key(tune.key, shift), tune.path


STYLES = {  # name: (weight, programs, program weights)
  "lick": (0.26, (27, 26, 25, 24, 28), (0.4, 0.25, 0.15, 0.1, 0.1)),
  "power_chords": (0.14, (27, 26, 28), (0.55, 0.25, 0.2)),
  "palm_mute": (0.10, (28, 27), (0.6, 0.4)),
  "strum": (0.18, (25, 24, 27, 26), (0.35, 0.25, 0.25, 0.15)),
  "arpeggio": (0.12, (24, 25, 27, 26), (0.35, 0.3, 0.2, 0.15)),
  "melody": (0.20, (27, 26, 24, 25), (0.35, 0.25, 0.2, 0.2)),
}


def make_phrase(
  seed: int,
  index: int,
  seconds: float = 10.0,
  *,
  style: str | None = None,
  program: int | None = None,
  prefix: str = "gen",
) -> Phrase:
  """Phrase `index` of the corpus for `seed`; the same arguments always give the same phrase."""
  if program is not None and program not in PROGRAMS:
    raise ValueError(f"program {program} is not a clean guitar program {sorted(PROGRAMS)}")
  rng = np.random.default_rng([seed, index])
  names = list(STYLES)
  weights = np.array([STYLES[n][0] for n in names])
  chosen = style or names[int(rng.choice(len(names), p=weights / weights.sum()))]
  _, programs, pweights = STYLES[chosen]
  prog = int(rng.choice(programs, p=np.array(pweights) / sum(pweights)))
  prog = prog if program is None else program
  source = "generated"
  if chosen == "melody":
    notes, bends, tempo, key, source = melody(rng, seconds)
  else:
    notes, bends, tempo, key = globals()[chosen](rng, seconds)
  notes = [n for n in notes if E2 <= n.pitch <= E6 and n.end > n.start]
  bends = sorted(bends, key=lambda b: b.time)
  return Phrase(
    id=f"{prefix}_{seed}_{index:05d}",
    seed=seed,
    index=index,
    style=chosen,
    program=prog,
    tempo=round(tempo, 1),
    key=key,
    seconds=seconds,
    notes=sorted(notes, key=lambda n: (n.start, n.pitch)),
    bends=bends,
    source=source,
  )
