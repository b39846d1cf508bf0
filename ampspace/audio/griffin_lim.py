"""Log-mel spectrogram -> audio by Griffin-Lim, and the spectral-convergence measure of a round trip.

The VAE lives in the log-mel domain of `spectral.log_mel` (log(1 + mel power), FFT 2048, 256
mels, hop 256), which throws away phase and folds 1025 FFT bins into 256 mel bands. Getting
audio back therefore takes two guesses: a linear-frequency magnitude from the mel bands
(librosa's non-negative least squares in `mel_to_stft`) and a phase consistent with it
(Griffin-Lim, librosa's "fast" variant with momentum 0.99). The number of Griffin-Lim
iterations is a parameter because it trades time for quality: a listening test wants 100+,
a TensorBoard preview 16-32.

Griffin-Lim starts from random phase; `seed` makes it reproducible, so two runs of an
experiment write byte-identical WAVs.
"""

from __future__ import annotations

import functools

import librosa
import numpy as np

from ampspace import SAMPLE_RATE
from ampspace.audio import spectral
from ampspace.errors import AmpSpaceError

N_FFT, HOP, N_MELS = 2048, 256, 256
DEFAULT_ITERATIONS = 64


def check_log_mel(
  log_mel: np.ndarray, n_mels: int | None = N_MELS, where: str = "log-mel"
) -> np.ndarray:
  m = np.asarray(log_mel, np.float32)
  if m.ndim != 2 or (n_mels is not None and m.shape[0] != n_mels):
    raise AmpSpaceError(
      f"{where}: expected a log-mel of shape [{n_mels or 'n'} mels, frames], got {m.shape}"
    )
  if m.shape[1] < 2:
    raise AmpSpaceError(f"{where}: needs at least 2 frames, got {m.shape[1]}")
  if not np.all(np.isfinite(m)):
    raise AmpSpaceError(f"{where}: contains NaN or Inf")
  return m


def mel_power(log_mel: np.ndarray) -> np.ndarray:
  """Inverse of log1p: a decoded log-mel can dip below zero, which no power spectrum does."""
  return np.expm1(np.maximum(np.asarray(log_mel, np.float64), 0.0))


@functools.lru_cache(maxsize=8)
def _mel_pinv(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
  return np.linalg.pinv(librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels))


def stft_magnitude(
  log_mel: np.ndarray, *, method: str = "nnls", sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT
) -> np.ndarray:
  """Linear-frequency magnitude [1 + n_fft/2, frames] whose mel projection matches `log_mel`.

  "nnls" (librosa's non-negative least squares, an iterative fit) is the better fit; "pinv"
  (pseudo-inverse, clipped at zero) is one matrix product, far faster at a slightly worse
  round trip (compare with `round_trip_table(method=...)`), which suits training previews.
  """
  power = mel_power(log_mel)
  if method == "nnls":
    return librosa.feature.inverse.mel_to_stft(power, sr=sample_rate, n_fft=n_fft, power=2.0)
  if method == "pinv":
    return np.sqrt(np.maximum(_mel_pinv(sample_rate, n_fft, power.shape[0]) @ power, 0.0))
  raise AmpSpaceError(f"Griffin-Lim: unknown magnitude method {method!r}; known: nnls, pinv")


def log_mel_to_audio(
  log_mel: np.ndarray,
  *,
  n_iter: int = DEFAULT_ITERATIONS,
  sample_rate: int = SAMPLE_RATE,
  n_fft: int = N_FFT,
  hop: int = HOP,
  length: int | None = None,
  seed: int = 0,
  method: str = "nnls",
) -> np.ndarray:
  """[n_mels, frames] log(1 + mel power) -> float32 audio of `length` (default (frames-1)*hop)."""
  if n_iter < 0:
    raise AmpSpaceError(f"Griffin-Lim: n_iter must be >= 0, got {n_iter}")
  m = check_log_mel(log_mel, n_mels=None)  # any mel count: the basis follows the input
  stft_mag = stft_magnitude(m, method=method, sample_rate=sample_rate, n_fft=n_fft)
  length = (m.shape[1] - 1) * hop if length is None else length
  if n_iter == 0:  # magnitude with random phase: the starting point, for comparisons
    rng = np.random.default_rng(seed)
    phase = np.exp(2j * np.pi * rng.random(stft_mag.shape))
    return librosa.istft(stft_mag * phase, hop_length=hop, n_fft=n_fft, length=length).astype(
      np.float32
    )
  audio = librosa.griffinlim(
    stft_mag, n_iter=n_iter, hop_length=hop, n_fft=n_fft, length=length, random_state=seed
  )
  return audio.astype(np.float32)


def spectral_convergence(reference_log_mel: np.ndarray, estimate_log_mel: np.ndarray) -> float:
  """||M_ref - M_est||_F / ||M_ref||_F on mel *magnitudes* (sqrt of power), frames trimmed to match.

  Magnitude, not power or log: it is the quantity Griffin-Lim fits, and the standard
  definition (Arik et al. 2018; the MR-STFT loss's first term).
  """
  a = np.sqrt(mel_power(reference_log_mel))
  b = np.sqrt(mel_power(estimate_log_mel))
  n = min(a.shape[1], b.shape[1])
  a, b = a[:, :n], b[:, :n]
  return float(np.linalg.norm(a - b) / (np.linalg.norm(a) + 1e-12))


def round_trip_convergence(
  audio: np.ndarray, *, n_iter: int = DEFAULT_ITERATIONS, seed: int = 0, method: str = "nnls"
) -> float:
  """Spectral convergence of log_mel(audio) against log_mel(Griffin-Lim(log_mel(audio)))."""
  m = spectral.log_mel(audio)
  y = log_mel_to_audio(m, n_iter=n_iter, length=len(audio), seed=seed, method=method)
  return spectral_convergence(m, spectral.log_mel(y))


def round_trip_table(
  seconds: float = 0.75, iterations=(0, 8, 32, 64, 128), method: str = "nnls"
) -> dict[str, dict[int, float]]:
  """Round-trip spectral convergence of the test signals (tests/test_griffin_lim.py's) by iterations.

  0 iterations = the fitted magnitude with random phase, the reference point.
  """
  from ampspace.di import karplus  # audio/ sits below di/; only this diagnostic needs a DI

  di = karplus.phrase(3, seconds)
  t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
  harmonic = (
    0.3 * np.sin(2 * np.pi * 196 * t)
    + 0.15 * np.sin(2 * np.pi * 392 * t)
    + 0.05 * np.sin(2 * np.pi * 1176 * t)
  ).astype(np.float32)
  signals = {
    "pluck": di,
    "distorted": (0.5 * np.tanh(8 * di)).astype(np.float32),
    "harmonic": harmonic,
  }
  return {
    name: {n: round_trip_convergence(x, n_iter=n, method=method) for n in iterations}
    for name, x in signals.items()
  }


if __name__ == "__main__":  # python -m ampspace.audio.griffin_lim [seconds] [nnls|pinv]
  import sys

  secs = float(sys.argv[1]) if len(sys.argv) > 1 else 0.75
  how = sys.argv[2] if len(sys.argv) > 2 else "nnls"
  table = round_trip_table(secs, method=how)
  iters = next(iter(table.values())).keys()
  print(f"Round-trip spectral convergence, {secs:g} s signals, {how} magnitude:\n")
  print("| signal | " + " | ".join(f"{n} it." for n in iters) + " |")
  print("|---|" + "---:|" * len(iters))
  for name, row in table.items():
    print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in row.values()) + " |")
