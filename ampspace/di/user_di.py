"""A user's own DI recordings: read any WAV/FLAC, resample to 44.1 kHz mono, split into passages.

The paper's DIs are ~10 s passages that never overlap. A long take is cut near every
`target` seconds at the quietest point (between notes, so a cut rarely splits an attack), and
silent stretches (count-ins, gaps between takes) are skipped rather than kept as passages.
Passages are half-open sample ranges [start, end) on the 44.1 kHz timeline of the source file,
the paper's DI start/end annotation.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import sys

import numpy as np
import scipy.signal
import soundfile as sf

from ampspace import SAMPLE_RATE
from ampspace.audio.wav_io import read_wav
from ampspace.errors import AmpSpaceError
from ampspace.files import sha256_file

AUDIO_EXTENSIONS = (".wav", ".flac")
FRAME, HOP = 2048, 512
SILENCE_DB = 50.0  # frames this far below the file's loudest frame count as silence
SILENCE_FLOOR_DBFS = -70.0  # and so do frames below this absolute level
MIN_GAP_SECONDS = 0.5  # shorter pauses are part of the playing, not a silent stretch


@dataclasses.dataclass(frozen=True)
class Passage:
  id: str
  source: str  # the file, relative to the user's folder
  start: int  # samples at 44.1 kHz, inclusive
  end: int  # exclusive


def find_audio_files(folder: str) -> list[str]:
  """WAV/FLAC files under `folder` (recursively), sorted for a stable order."""
  if not os.path.isdir(folder):
    raise AmpSpaceError(f"{folder}: DI folder not found")
  found = []
  for root, dirs, files in os.walk(folder):
    dirs.sort()
    found += [
      os.path.join(root, f)
      for f in sorted(files)
      if f.lower().endswith(AUDIO_EXTENSIONS) and not f.startswith(".")
    ]
  if not found:
    raise AmpSpaceError(f"{folder}: no .wav or .flac files found")
  return found


def load_audio(path: str, *, warn=None) -> np.ndarray:
  """A file as float32 mono at 44.1 kHz; stereo is downmixed with a warning.

  Raises AmpSpaceError naming the file when it is unreadable, empty, zero-length or not finite.
  """
  warn = warn or (lambda msg: print(f"warning: {msg}", file=sys.stderr))
  try:
    info = sf.info(path)
  except Exception as e:
    raise AmpSpaceError(f"{path}: cannot read audio ({e})") from None
  if info.frames == 0:
    raise AmpSpaceError(f"{path}: audio is empty (zero length)")
  if info.channels > 1:
    warn(f"{path}: {info.channels} channels, downmixed to mono (a DI is one channel)")
  x, sr = read_wav(path, expected_sample_rate=None, allow_stereo=True)
  if sr != SAMPLE_RATE:
    g = math.gcd(int(sr), SAMPLE_RATE)
    x = scipy.signal.resample_poly(x.astype(np.float64), SAMPLE_RATE // g, int(sr) // g)
    x = x.astype(np.float32)
  return x


def frame_db(x: np.ndarray) -> np.ndarray:
  """Per-hop RMS level in dBFS (frame i covers samples around i*HOP)."""
  pad = np.pad(x.astype(np.float64), (FRAME // 2, FRAME // 2))
  n = 1 + (len(pad) - FRAME) // HOP
  power = np.cumsum(np.concatenate([[0.0], pad**2]))
  idx = np.arange(n) * HOP
  ms = (power[idx + FRAME] - power[idx]) / FRAME
  return 10 * np.log10(np.maximum(ms, 1e-20))


def active_regions(
  x: np.ndarray, db: np.ndarray | None = None, sr: int = SAMPLE_RATE
) -> list[tuple[int, int]]:
  """Non-silent sample ranges; pauses shorter than MIN_GAP_SECONDS stay inside a region."""
  db = frame_db(x) if db is None else db
  thresh = max(SILENCE_FLOOR_DBFS, float(db.max()) - SILENCE_DB)
  loud = db > thresh
  regions, i, n = [], 0, len(loud)
  while i < n:
    if not loud[i]:
      i += 1
      continue
    j = i
    while j < n and loud[j]:
      j += 1
    regions.append([i, j])
    i = j
  merged: list[list[int]] = []
  gap = int(MIN_GAP_SECONDS * sr / HOP)
  for r in regions:
    if merged and r[0] - merged[-1][1] < gap:
      merged[-1][1] = r[1]
    else:
      merged.append(r)
  # frames → samples, keeping a frame of margin so note onsets and tails are not clipped
  return [(max(0, (a - 1) * HOP), min(len(x), (b + 1) * HOP)) for a, b in merged]


def split_points(
  db: np.ndarray, start: int, end: int, target: float, sr: int = SAMPLE_RATE, window: float = 0.2
) -> list[tuple[int, int]]:
  """Cuts [start, end) into passages of about `target` s (within ±`window`·target), each cut
  at the quietest frame (of `frame_db`'s levels) in its window; a remainder shorter than the
  window's upper end stays with the last passage."""
  out, cur = [], start
  t = int(target * sr)
  lo_len, hi_len = int(t * (1 - window)), int(t * (1 + window))
  while end - cur > hi_len:
    a, b = (cur + lo_len) // HOP, (cur + hi_len) // HOP
    cut = (a + int(np.argmin(db[a:b]))) * HOP
    out.append((cur, cut))
    cur = cut
  out.append((cur, end))
  return out


def _slug(path: str) -> str:
  stem = os.path.splitext(os.path.basename(path))[0]
  return re.sub(r"[^A-Za-z0-9]+", "-", stem).strip("-").lower()[:40] or "di"


def passages_of(
  x: np.ndarray, path: str, rel: str, *, target: float = 10.0, min_seconds: float = 2.0
) -> list[Passage]:
  """The passages of one loaded file. Ids are `user_<name>_<content hash>_<start in ms>`: stable
  across runs and folders, and distinct for two files that share a name."""
  db = frame_db(x)
  regions = active_regions(x, db)
  if not regions:
    raise AmpSpaceError(f"{path}: audio is silent (no passage above {SILENCE_FLOOR_DBFS} dBFS)")
  digest = sha256_file(path)[:8]
  out = []
  for a, b in regions:
    for s, e in split_points(db, a, b, target):
      if e - s >= min_seconds * SAMPLE_RATE:
        ms = int(round(1000 * s / SAMPLE_RATE))
        out.append(Passage(f"user_{_slug(path)}_{digest}_{ms:08d}", rel, int(s), int(e)))
  return out
