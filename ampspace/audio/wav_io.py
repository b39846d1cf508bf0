"""WAV/FLAC reading with validation, and atomic writing (nothing half-written is left behind)."""

from __future__ import annotations

import os

import numpy as np
import soundfile as sf

from ampspace import SAMPLE_RATE
from ampspace.errors import AmpSpaceError
from ampspace.files import atomic_path


def check_signal(x: np.ndarray, *, name: str = "signal") -> np.ndarray:
  """Returns x as float32 1-D; raises AmpSpaceError naming `name` if it is not mono, empty or finite."""
  x = np.asarray(x)
  if x.ndim != 1:
    raise AmpSpaceError(f"{name}: expected mono audio (1-D), got shape {x.shape}")
  if x.size == 0:
    raise AmpSpaceError(f"{name}: audio is empty (zero length)")
  if not np.all(np.isfinite(x)):
    raise AmpSpaceError(f"{name}: audio contains NaN or Inf")
  return x.astype(np.float32, copy=False)


def read_wav(
  path: str | os.PathLike,
  *,
  expected_sample_rate: int | None = SAMPLE_RATE,
  allow_stereo: bool = False,
) -> tuple[np.ndarray, int]:
  """Reads an audio file as float32 mono, validated.

  Raises AmpSpaceError naming the file for: unreadable/corrupt data, wrong sample rate
  (when `expected_sample_rate` is given), stereo (unless `allow_stereo`, which downmixes),
  zero length, NaN/Inf.
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    raise AmpSpaceError(f"{path}: file not found")
  try:
    data, sr = sf.read(path, dtype="float32", always_2d=True)
  except Exception as e:  # soundfile raises LibsndfileError / RuntimeError variants
    raise AmpSpaceError(f"{path}: cannot read audio ({e})") from None
  if expected_sample_rate is not None and sr != expected_sample_rate:
    raise AmpSpaceError(f"{path}: sample rate is {sr} Hz, expected {expected_sample_rate} Hz")
  if data.shape[1] > 1:
    if not allow_stereo:
      raise AmpSpaceError(f"{path}: has {data.shape[1]} channels, expected mono")
    data = data.mean(axis=1, keepdims=True)
  return check_signal(data[:, 0], name=path), sr


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
  """Writes a mono 32-bit float WAV atomically (temporary file in the same folder, then rename).

  The bytes depend on the samples alone: libsndfile stamps a time into float WAVs (PEAK chunk),
  so the same audio would hash differently on every run; scipy writes just fmt + data.
  """
  import scipy.io.wavfile

  path = os.fspath(path)
  audio = check_signal(audio, name=path)
  with atomic_path(path, suffix=".wav") as tmp:
    scipy.io.wavfile.write(tmp, sample_rate, audio.astype(np.float32))
