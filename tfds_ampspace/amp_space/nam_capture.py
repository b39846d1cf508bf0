"""NAM's standard capture signal, recognised on ingest so a NAM capture needs no annotation.

neural-amp-modeler (NAM) re-amps one published input file, `v3_0_0.wav` (48 kHz, 190 s), whose
layout is fixed (nam/train/core.py, `_V3_DATA_INFO`):

  0:00-0:09     validation signal, first replay
  0:09-0:10     silence
  0:10-0:12     calibration blips at 0:10.5 and 0:11.5 (NAM's latency is where the response
                to them starts)
  0:12-3:00.5   chirps, noise, then general training audio
  3:00.5-3:01   silence
  3:01-3:10     the same validation signal again (the last 9 s of the file)

So a recognised `input.wav` gives, in the Clip: the blips (`blip_at`, `more_blips`), the training
region (`di_start`/`di_end`: after the blips, before the second replay, so neither the blips
nor the validation audio is trained on) and the two replays (`replicates`), on which ingest
repeats NAM's replicate check: a device that does not sound the same both times (a knob moved,
a time-based effect, an amp still warming up) makes a capture NAM rejects, and so do we.

How it is recognised. NAM matches the file's MD5 (or MD5s of its first 17 s and last 9 s). That
alone would refuse a byte-different copy of the same signal (re-exported, re-encoded) and cannot
be tested without shipping NAM's audio, so the file is recognised by its structure: 190 s long,
the first and last 9 s the same non-silent signal, and an isolated peak at each blip position.
NAM's own file hash is accepted as well, in case its audio defeats one of those checks.
Any rate is accepted when the structure holds (a resampled copy of NAM's file); ingest resamples
to 44.1 kHz like any other file, and every position here is converted to 44.1 kHz samples, the
unit of all Clip positions. A knob file can insist (`nam_standard: v3`, an error if the input is
not it) or opt out (`nam_standard: false`); an explicit `di_start`, `di_end` or latency source
(`latency_samples`, `blip_at`, `loopback_file`) replaces what the convention would give.

NAM's older inputs (v1, v2) are left out: NAM 0.13 itself fails its data checks on them as
deprecated; they can still be ingested with explicit annotations.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import soundfile as sf

from ampspace import SAMPLE_RATE
from ampspace.audio.alignment import BLIP_QUIET
from ampspace.audio.wav_io import read_wav
from ampspace.errors import AmpSpaceError

# NAM's v3.0.0 input, in samples at its 48 kHz (nam/train/core.py: _V3_DATA_INFO, _check_v3).
NAM_RATE = 48_000
V3_LENGTH = 9_120_000  # 190 s
V3_BLIPS = (504_000, 552_000)
V3_BLIPS_END = 576_000  # the blip section ends at 0:12
V3_VALIDATION = 432_000  # each replay: the first and the last 9 s
V3_MD5 = "36cd1af62985c2fac3e654333e36431e"  # NAM's strong hash of v3_0_0.wav
REPLICATE_ESR = 0.01  # NAM's threshold on the replays' self-ESR
SAME_SIGNAL_ESR = 1e-4  # the input's two replays: the same samples, up to
# re-encoding (a different signal is near 1 or above)
MIN_BLIP = 0.05  # as alignment.blip_latency asks of a blip


@dataclasses.dataclass(frozen=True)
class Capture:
  """What a recognised standard input implies, in 44.1 kHz samples (the Clip's unit)."""

  version: str
  blips: tuple[int, ...]
  replicates: tuple[tuple[int, int], tuple[int, int]]
  train: tuple[int, int]


def _to_ingest_rate(position_48k: int) -> int:
  return int(round(position_48k * SAMPLE_RATE / NAM_RATE))


def _v3_capture(frames: int, rate: int) -> Capture:
  """Positions from the file's own length, as NAM takes the second replay from the end."""
  end = int(round(frames * NAM_RATE / rate))
  second = end - V3_VALIDATION
  return Capture(
    version="v3",
    blips=tuple(_to_ingest_rate(b) for b in V3_BLIPS),
    replicates=(
      (0, _to_ingest_rate(V3_VALIDATION)),
      (_to_ingest_rate(second), _to_ingest_rate(end)),
    ),
    train=(_to_ingest_rate(V3_BLIPS_END), _to_ingest_rate(second)),
  )


def _md5(path: str) -> str:
  with open(path, "rb") as f:
    return hashlib.file_digest(f, "md5").hexdigest()


def _structure_problem(x: np.ndarray, rate: int) -> str | None:
  """Why x is not NAM's v3 signal at `rate`, or None when its structure is."""
  n_val = V3_VALIDATION * rate // NAM_RATE
  first, second = x[:n_val].astype(np.float64), x[len(x) - n_val :].astype(np.float64)
  power = float(np.mean(second**2))
  if power < 1e-8:
    return "its last 9 s are silent"
  esr = float(np.mean((first - second) ** 2)) / power
  if esr > SAME_SIGNAL_ESR:
    return f"its first and last 9 s differ (ESR {esr:.3g}), NAM's are one signal twice"
  for b48 in V3_BLIPS:
    b = int(round(b48 * rate / NAM_RATE))
    lo = max(0, b - BLIP_QUIET)
    window = np.abs(x[lo : b + 64])
    if int(np.argmax(window)) + lo != b or window.max() < MIN_BLIP:
      return f"no isolated calibration blip at sample {b} ({b48 / NAM_RATE:g} s)"
  return None


def recognise(path: str) -> tuple[Capture | None, str]:
  """(the Capture, "") when `path` holds NAM's v3 input signal, else (None, why not)."""
  try:
    info = sf.info(path)
  except Exception as e:  # unreadable: not ours to report here, ingest names the file
    return None, f"cannot read it ({e})"
  rate, frames = int(info.samplerate), int(info.frames)
  if rate == NAM_RATE and _md5(path) == V3_MD5:
    return _v3_capture(frames, rate), ""  # NAM's own file, recognised as NAM does
  if frames * NAM_RATE != V3_LENGTH * rate:
    return None, (
      f"it is {frames} samples at {rate} Hz, NAM's v3 is {V3_LENGTH} at {NAM_RATE} Hz (190 s)"
    )
  try:
    x, _ = read_wav(path, expected_sample_rate=None, allow_stereo=True)
  except AmpSpaceError as e:
    return None, str(e)
  problem = _structure_problem(x, rate)
  return (None, problem) if problem is not None else (_v3_capture(frames, rate), "")


def declared(meta: dict, where: str) -> str | bool | None:
  """The knob file's `nam_standard`: "v3" (insist), False (opt out) or None (recognise)."""
  value = meta.get("nam_standard")
  if value is None or value == "":
    return None
  text = str(value).strip().lower()
  if text in ("false", "no", "none", "off", "0"):
    return False
  if text in ("v3", "3", "v3.0.0", "3.0.0"):
    return "v3"
  raise AmpSpaceError(f"{where}: nam_standard must be v3 or false, got {value!r}")


def for_clip(di_path: str, meta: dict, where: str, cache: dict) -> Capture | None:
  """The standard capture `di_path` is, per the annotation's `nam_standard` (recognition cached
  per input file in `cache`); raises naming `where` when it insists on a signal that is not."""
  want = declared(meta, where)
  if want is False:
    return None
  if di_path not in cache:
    cache[di_path] = recognise(di_path)
  capture, why_not = cache[di_path]
  if want and capture is None:
    raise AmpSpaceError(
      f"{where}: nam_standard: {want}, but {di_path} is not NAM's standard {want} input: {why_not}"
    )
  return capture


def clip_fields(capture: Capture, meta: dict, latency: dict) -> dict:
  """The Clip fields the convention gives, each unless the annotation gives it: the training
  region unless `di_start`/`di_end`, the blips unless a latency source (`latency` holds the
  annotated one, from layouts.latency_fields). The replays are checked whatever the latency."""
  out = {"replicates": capture.replicates}
  for key, value in (("di_start", capture.train[0]), ("di_end", capture.train[1])):
    if meta.get(key) in (None, ""):
      out[key] = value
  if not latency:
    out.update(blip_at=capture.blips[0], more_blips=capture.blips[1:])
  return out


def replicate_esr(out: np.ndarray, replicates, lag: int, *, where: str = "") -> float:
  """Self-ESR of the output's two replays of one signal (DI segments `replicates`, the output
  `lag` samples late and spanning the whole DI file): NAM's check, the second replay the
  reference. An output that ends before most of the second replay is an error naming `where`."""
  (a0, a1), (b0, b1) = replicates
  first = np.asarray(out[a0 + lag : a1 + lag], np.float64)
  second = np.asarray(out[b0 + lag : b1 + lag], np.float64)
  n = min(len(first), len(second))
  if n < (b1 - b0) // 2:
    raise AmpSpaceError(
      f"{where}: ends at sample {len(out)}, before the second validation "
      f"replay (DI samples {b0}..{b1}, {lag} samples late) was recorded"
    )
  power = float(np.mean(second[:n] ** 2))
  error = float(np.mean((first[:n] - second[:n]) ** 2))
  return error / power if power > 0 else float("inf")


def check_replicates(out: np.ndarray, replicates, lag: int, *, where: str) -> float:
  """The replays' self-ESR, or an AmpSpaceError naming `where` above NAM's threshold."""
  esr = replicate_esr(out, replicates, lag, where=where)
  if esr > REPLICATE_ESR:
    raise AmpSpaceError(
      f"{where}: the two validation replays differ (self-ESR {esr:.4g} > "
      f"{REPLICATE_ESR}): the device did not sound the same when NAM's "
      f"validation signal was played twice (a knob moved, a time-based "
      f"effect, noise, or an amp still warming up)"
    )
  return esr
