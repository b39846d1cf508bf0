"""Render phrases to guitar audio with the FluidSynth CLI and a General MIDI soundfont.

Starting FluidSynth and loading FluidR3_GM (141 MB) costs most of a second, so many phrases
go into one MIDI file, one process renders it (fast-render, reverb and chorus off, 32-bit
float), and the output is cut apart at known sample offsets. Every phrase sits in a slot of
a whole number of beats; one MIDI tick is exactly one FluidSynth block of 64 samples (441
ticks a beat at 640000 µs a beat), and one beat (0.64 s) is a whole number of both blocks and
the milliseconds FluidSynth's MIDI player counts in, so every slot starts on the same timing
grid and slot boundaries fall on sample-exact positions. A slot ends with all-sound-off, so
nothing rings into the next phrase.

Rendering is deterministic: the same phrases in the same batch give the same bytes. The
corpus writer also batches phrases in fixed groups, so a resumed run renders the same way.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile

import numpy as np
import soundfile as sf

from ampspace import SAMPLE_RATE
from ampspace.di.phrases import BEND_RANGE, PROGRAMS, Phrase
from ampspace.errors import AmpSpaceError

SOUNDFONT_CANDIDATES = (
  "/usr/share/sounds/sf2/FluidR3_GM.sf2",
  "/usr/share/soundfonts/FluidR3_GM.sf2",
  "/usr/share/sounds/sf2/default-GM.sf2",
  "/usr/share/soundfonts/default.sf2",
)
BLOCK = 64  # FluidSynth's default period: MIDI events take effect on block boundaries
RESOLUTION = 441  # ticks a beat; with TEMPO_BPM one tick is exactly BLOCK samples at 44.1 kHz
TEMPO_BPM = 60.0 / (RESOLUTION * BLOCK / SAMPLE_RATE)  # 93.75 BPM, 640000 µs a beat
PREROLL_TICKS = RESOLUTION  # one beat for program changes and the bend-range RPN
GUARD_SECONDS = 0.5  # silence after each phrase before the next slot begins
GAIN = 0.5  # FluidSynth master gain; output is float, then peak-normalised by the caller
# At most this many voices sound at once. A guitar has six strings, and FluidR3's guitar
# presets keep a released note ringing for seconds, so a strummed phrase piles up 50+ voices
# that a real string (stopped when it is struck again) would not; FluidSynth steals the
# oldest released voices first. Halves the render cost of strums (see benchmarks/bench_di.py).
POLYPHONY = 32
SETUP_HINT = (
  "run launch/setup.sh (it installs the Debian packages fluidsynth and "
  "fluid-soundfont-gm) or pass --engine=karplus"
)


def find_fluidsynth() -> str:
  """Path of the fluidsynth binary; AmpSpaceError with the set-up hint if it is missing."""
  path = shutil.which("fluidsynth")
  if not path:
    raise AmpSpaceError(f"fluidsynth: binary not found on PATH; {SETUP_HINT}")
  return path


def find_soundfont(soundfont: str | None = None) -> str:
  """The given soundfont, or the first installed General MIDI one."""
  if soundfont:
    if not os.path.isfile(soundfont):
      raise AmpSpaceError(f"{soundfont}: soundfont not found")
    return soundfont
  for path in SOUNDFONT_CANDIDATES:
    if os.path.isfile(path):
      return os.path.realpath(path)
  raise AmpSpaceError(f"{SOUNDFONT_CANDIDATES[0]}: General MIDI soundfont not found; {SETUP_HINT}")


def _ticks(seconds: float) -> int:
  return int(math.ceil(seconds * SAMPLE_RATE / BLOCK))


def slot_ticks(seconds: float) -> int:
  """Length of one phrase's slot in ticks (= blocks): whole beats, so slots share a grid."""
  return RESOLUTION * int(math.ceil(_ticks(seconds + GUARD_SECONDS) / RESOLUTION))


def build_midi(phrases: list[Phrase], path: str) -> list[int]:
  """Writes all phrases, one after another, into one MIDI file; returns each slot's start sample.

  One channel per program (program changes happen once, at time 0); a phrase's pitch bends and
  its end-of-slot reset go to its program's channel. Phrases must share one `seconds`.
  """
  import pretty_midi  # imported here: only the FluidSynth engine needs it

  if len({p.seconds for p in phrases}) > 1:
    raise ValueError("phrases in one batch must have the same length")
  tick = BLOCK / SAMPLE_RATE
  pm = pretty_midi.PrettyMIDI(resolution=RESOLUTION, initial_tempo=TEMPO_BPM)
  instruments = {}
  for prog in sorted({p.program for p in phrases}):
    if prog not in PROGRAMS:
      raise AmpSpaceError(f"program {prog}: not a clean guitar program {sorted(PROGRAMS)}")
    inst = pretty_midi.Instrument(program=prog, name=PROGRAMS[prog])
    # Effects sends to zero (the CLI also disables the units), centred, full volume; then the
    # pitch-bend range via RPN 0: select at tick 1, data entry at tick 2 (pretty_midi orders
    # same-tick controllers by number, which would put data entry before the select).
    for cc, value, t in (
      (91, 0, 0),
      (93, 0, 0),
      (10, 64, 0),
      (7, 100, 0),
      (101, 0, 1),
      (100, 0, 1),
      (6, BEND_RANGE, 2),
      (38, 0, 2),
    ):
      inst.control_changes.append(pretty_midi.ControlChange(cc, value, t * tick))
    instruments[prog] = inst
  n_slot = slot_ticks(phrases[0].seconds) if phrases else 0
  starts = []
  for k, phrase in enumerate(phrases):
    start_tick = PREROLL_TICKS + k * n_slot
    t0 = start_tick * tick
    inst = instruments[phrase.program]
    for n in phrase.notes:
      inst.notes.append(pretty_midi.Note(int(n.velocity), int(n.pitch), t0 + n.start, t0 + n.end))
    for b in phrase.bends:
      value = int(round(np.clip(b.semitones / BEND_RANGE, -1, 1) * 8191))
      inst.pitch_bends.append(pretty_midi.PitchBend(value, t0 + b.time))
    t_end = t0 + phrase.seconds + tick
    inst.pitch_bends.append(pretty_midi.PitchBend(0, t_end))
    # All sound off, and only that: FluidSynth 2.3 lets an all-notes-off (123) in the same
    # tick put the just-silenced voices back into their (long) release.
    inst.control_changes.append(pretty_midi.ControlChange(120, 0, t_end))
    starts.append(start_tick * BLOCK)
  pm.instruments.extend(instruments[p] for p in sorted(instruments))
  pm.write(path)
  return starts


def render_phrases(phrases: list[Phrase], soundfont: str | None = None) -> list[np.ndarray]:
  """Renders each phrase to float32 mono at 44.1 kHz, `phrase.seconds` long (not normalised)."""
  if not phrases:
    return []
  binary, sf2 = find_fluidsynth(), find_soundfont(soundfont)
  with tempfile.TemporaryDirectory(prefix="ampspace_fs_") as tmp:
    mid, wav = os.path.join(tmp, "batch.mid"), os.path.join(tmp, "batch.wav")
    starts = build_midi(phrases, mid)
    cmd = [
      binary,
      "-n",
      "-i",
      "-q",
      "-g",
      str(GAIN),
      "-R",
      "0",
      "-C",
      "0",
      "-r",
      str(SAMPLE_RATE),
      "-o",
      f"synth.sample-rate={SAMPLE_RATE}",
      "-o",
      f"synth.polyphony={POLYPHONY}",
      "-T",
      "wav",
      "-O",
      "float",
      "-F",
      wav,
      sf2,
      mid,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not os.path.exists(wav):
      raise AmpSpaceError(
        f"{sf2}: fluidsynth failed (exit {proc.returncode}): "
        f"{(proc.stderr or proc.stdout).strip()[:300]}"
      )
    audio, sr = sf.read(wav, dtype="float32", always_2d=True)
  if sr != SAMPLE_RATE:
    raise AmpSpaceError(f"{sf2}: fluidsynth wrote {sr} Hz, expected {SAMPLE_RATE} Hz")
  mono = audio.mean(axis=1)
  n = int(round(phrases[0].seconds * SAMPLE_RATE))
  out = []
  for s in starts:
    clip = np.zeros(n, np.float32)
    part = mono[s : s + n]
    clip[: len(part)] = part
    out.append(clip)
  return out
