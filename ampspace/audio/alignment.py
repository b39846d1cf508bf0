"""Latency between a DI and its recorded device output.

A recording's latency is a property of the capture chain (interface, re-amp box, plugin
buffer), so it is measured with a known probe, never read off the music:
  - `blip_latency`: a calibration blip in the DI (NAM's convention); the latency is where the
    device's response to it starts. A real amp is causal and minimum-phase, so its impulse
    response starts at the latency, whatever its filters and nonlinearity do afterwards
    (`blips_latency`: several blips of one capture, which must agree);
  - `loopback_latency`: the same DI recorded through the interface alone (no device), whose
    phase response is flat, so the correlation peak is the delay;
  - an annotation (the paper's `time-delay`), read by the layouts.
A fractional latency is rounded down: shifting a little less than the true delay leaves the
model a sub-sample delay to learn, shifting more would ask a causal model for the future.

GCC-PHAT on the music itself (below) is kept as an opt-in estimate: its peak follows the
device's own group delay (about 6 samples on a zero-latency tube amp model), so it is only
reported, and applied only when the user asks for it.

GCC-PHAT over every clip of a setting:

Why not plain cross-correlation: a heavily distorted output's spectrum is dominated by a few
loud low harmonics, so the plain correlation peak is broad and periodic and can lock hundreds
of samples off, either sign. GCC-PHAT whitens the cross-spectrum (keeps only its phase), which
turns a pure delay into a sharp peak at the true lag whatever the device does to magnitudes.

Why per setting, not per clip: the latency of a capture chain (interface, re-amp box, plugin
buffer) is fixed for a device setting; summing the whitened correlations of all its clips before
taking the peak makes one quiet or chaotic clip unable to pull its own lag somewhere else.

Sign convention: a positive lag means the output comes `lag` samples after the DI, i.e.
`out[n + lag] ~ f(di[n])`.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

import numpy as np
import scipy.fft

from ampspace.errors import AmpSpaceError

DEFAULT_MAX_LAG = 2048
BLIP_ONSET_FRACTION = 0.02  # of the response's peak: the first sample above it is the onset
BLIP_NOISE_FACTOR = 8.0  # ... and above this many times the RMS noise before the blip
BLIP_BACKOFF_NOISE = 4.0  # the onset then moves back over samples above this many RMS
BLIP_QUIET = 2048  # samples before the blip that must be free of other sound
BLIP_AGREEMENT = 8  # samples several blips' latencies may differ by (noise at
# the onset threshold); more: one was lost or gated


@dataclasses.dataclass(frozen=True)
class LatencyEstimate:
  lag: int  # samples; positive: the output is late
  confidence: float  # peak height over the mean absolute correlation inside the bound
  num_clips: int


def gcc_phat(
  di: np.ndarray, out: np.ndarray, max_lag: int = DEFAULT_MAX_LAG, *, weight_exponent: float = 1.0
) -> np.ndarray:
  """Whitened cross-correlation of `out` against `di` for lags -max_lag..max_lag (2*max_lag+1).

  `weight_exponent` = 1 is the classic phase transform; slightly below 1 keeps a little
  magnitude, which helps on very band-limited signals.
  """
  di = np.asarray(di, np.float64)
  out = np.asarray(out, np.float64)
  if di.ndim != 1 or out.ndim != 1 or not len(di) or not len(out):
    raise AmpSpaceError(
      f"gcc_phat: expected two non-empty 1-D signals, got {di.shape}, {out.shape}"
    )
  if max_lag < 0:
    raise AmpSpaceError(f"gcc_phat: max_lag must be >= 0, got {max_lag}")
  n = scipy.fft.next_fast_len(len(di) + len(out) + 1, real=True)
  spectrum = scipy.fft.rfft(out, n) * np.conj(scipy.fft.rfft(di, n))
  magnitude = np.abs(spectrum)
  floor = 1e-12 * (magnitude.max() if magnitude.size else 1.0) + 1e-30
  corr = scipy.fft.irfft(spectrum / (magnitude + floor) ** weight_exponent, n)
  lags = np.arange(-max_lag, max_lag + 1)
  return corr[lags % n]


def plain_xcorr(di: np.ndarray, out: np.ndarray, max_lag: int = DEFAULT_MAX_LAG) -> np.ndarray:
  """Unweighted cross-correlation on the same lag grid (for comparison and diagnostics)."""
  di = np.asarray(di, np.float64)
  out = np.asarray(out, np.float64)
  n = scipy.fft.next_fast_len(len(di) + len(out) + 1, real=True)
  corr = scipy.fft.irfft(scipy.fft.rfft(out, n) * np.conj(scipy.fft.rfft(di, n)), n)
  return corr[np.arange(-max_lag, max_lag + 1) % n]


def estimate_latency(
  pairs: Iterable[tuple[np.ndarray, np.ndarray]], max_lag: int = DEFAULT_MAX_LAG, *, where: str = ""
) -> LatencyEstimate:
  """One lag for all (di, out) pairs of one device setting: the peak of their summed GCC-PHAT.

  See `combine_correlations`; pairs are consumed one at a time (an iterator keeps memory flat).
  """
  return combine_correlations(
    (clip_correlation(di, out, max_lag) for di, out in pairs), max_lag, where=where
  )


def clip_correlation(di: np.ndarray, out: np.ndarray, max_lag: int = DEFAULT_MAX_LAG) -> np.ndarray:
  """One clip's GCC-PHAT over twice the bound (so a lag beyond it is seen, not clipped)."""
  return gcc_phat(di, out, 2 * max_lag)


def combine_correlations(
  correlations: Iterable[np.ndarray], max_lag: int = DEFAULT_MAX_LAG, *, where: str = ""
) -> LatencyEstimate:
  """The lag at the peak of the summed per-clip correlations (from `clip_correlation`).

  Each clip's correlation is normalised to unit peak magnitude before summing, so long clips
  do not outvote short ones. Raises AmpSpaceError (naming `where`) when there is no clip or the
  peak lies beyond `max_lag` (searched up to twice the bound): the true latency is larger than
  allowed or the files are not a pair, and correcting by the bound would be silently wrong.
  """
  search = 2 * max_lag
  total = np.zeros(2 * search + 1)
  count = 0
  for c in correlations:
    if c.shape != total.shape:
      raise AmpSpaceError(
        f"{where}: correlation has {c.shape[0]} lags, expected {total.shape[0]} (max_lag {max_lag})"
      )
    peak = np.max(np.abs(c))
    if peak > 0:
      total += c / peak
      count += 1
  if count == 0:
    raise AmpSpaceError(f"{where}: no usable clip to estimate latency from")
  i = int(np.argmax(total))
  lag = i - search
  if abs(lag) > max_lag:
    raise AmpSpaceError(
      f"{where}: estimated latency {lag} samples is beyond the bound "
      f"(|lag| <= {max_lag}); the output is further off than allowed or is "
      f"not a recording of this DI"
    )
  inside = total[search - max_lag : search + max_lag + 1]
  background = float(np.mean(np.abs(inside))) + 1e-12
  return LatencyEstimate(lag=lag, confidence=float(total[i] / background), num_clips=count)


def apply_latency(di: np.ndarray, out: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray, int]:
  """Trims both signals so that out[k] lines up with di[k]; returns (di, out, di_offset).

  No zeros are invented: the first `lag` output samples (positive lag) or the first `-lag`
  DI samples (negative lag) are dropped, then both are cut to the shorter length. `di_offset`
  is where the kept DI starts in the original, for the annotation's di_start.
  """
  if lag >= 0:
    di_offset, di, out = 0, di, out[lag:]
  else:
    di_offset, di, out = -lag, di[-lag:], out
  n = min(len(di), len(out))
  if n <= 0:
    raise AmpSpaceError(f"apply_latency: lag {lag} leaves no overlapping audio")
  return di[:n], out[:n], di_offset


def blip_latency(
  di: np.ndarray, out: np.ndarray, blip_at: int, max_lag: int = DEFAULT_MAX_LAG, *, where: str = ""
) -> int:
  """Samples from the DI's calibration blip at `blip_at` to the start of the device's response.

  `di` and `out` start at the same instant of the capture (the whole DI file re-amped). The
  onset is the first sample, from the blip on, whose magnitude exceeds both a fraction of the
  response's peak and the noise before the blip; polarity does not matter. Raises naming
  `where` when the DI has no blip there, the region before it is not quiet, or no response
  stands out within `max_lag`.
  """
  di = np.asarray(di, np.float64)
  out = np.asarray(out, np.float64)
  if not 0 <= blip_at < len(di) or blip_at + max_lag >= len(out):
    raise AmpSpaceError(
      f"{where}: blip_at {blip_at} leaves no room for the blip's response "
      f"(DI {len(di)}, output {len(out)} samples, max lag {max_lag})"
    )
  lo = max(0, blip_at - BLIP_QUIET)
  window = np.abs(di[lo : blip_at + 64])
  if window.size == 0 or np.argmax(window) + lo != blip_at or window.max() < 0.05:
    raise AmpSpaceError(
      f"{where}: no calibration blip at DI sample {blip_at} (the DI's "
      f"largest sample near it is at {int(np.argmax(window)) + lo})"
    )
  before = out[lo:blip_at]
  noise = float(np.sqrt(np.mean(before**2))) if before.size else 0.0
  response = np.abs(out[blip_at : blip_at + max_lag + 1])
  peak = float(response.max())
  if peak <= BLIP_NOISE_FACTOR * 2 * noise or peak == 0.0:
    raise AmpSpaceError(
      f"{where}: the output shows no response to the blip at sample "
      f"{blip_at} (peak {peak:.2g} against noise {noise:.2g} before it)"
    )
  onset = impulse_onset(response, BLIP_ONSET_FRACTION, floor=BLIP_NOISE_FACTOR * noise)
  # A cabinet's steep low-pass starts its response far below the threshold: walk back over
  # the samples still clearly above the noise, so the latency is never over-corrected.
  quiet = max(BLIP_BACKOFF_NOISE * noise, 1e-9 * peak)
  while onset > 0 and response[onset - 1] > quiet:
    onset -= 1
  return onset


def blips_latency(
  di: np.ndarray, out: np.ndarray, blips, max_lag: int = DEFAULT_MAX_LAG, *, where: str = ""
) -> int:
  """The latency from one or several calibration blips of one capture (NAM's standard signal
  has two), each measured by `blip_latency`. A capture chain's latency is fixed, so they must
  agree within BLIP_AGREEMENT samples, else the error names `where` (a blip lost in noise or
  under a gate would otherwise pass for a latency); the smallest is returned, so the output is
  never shifted too far."""
  lags = [blip_latency(di, out, int(b), max_lag, where=where) for b in blips]
  if not lags:
    raise AmpSpaceError(f"{where}: no calibration blip given")
  if max(lags) - min(lags) > BLIP_AGREEMENT:
    raise AmpSpaceError(
      f"{where}: the calibration blips at DI samples {[int(b) for b in blips]} "
      f"give latencies {lags}, more than {BLIP_AGREEMENT} samples apart"
    )
  return min(lags)


def impulse_onset(response: np.ndarray, fraction: float, *, floor: float = 0.0) -> int:
  """Index of the first sample of an impulse response whose magnitude exceeds `fraction` of
  its peak and `floor`: the delay for a pure delay line or an oversampler's FIR, 0 for a
  circuit's own minimum-phase filters (their slow rise is part of the sound, not latency)."""
  magnitude = np.abs(np.asarray(response, np.float64))
  return int(np.argmax(magnitude > max(fraction * float(magnitude.max()), floor)))


def loopback_latency(
  di: np.ndarray, loopback: np.ndarray, max_lag: int = DEFAULT_MAX_LAG, *, where: str = ""
) -> int:
  """The interface's own latency from a loopback recording of the DI (no device in the path).

  The loopback's phase is flat but for the delay, so the peak of the plain cross-correlation
  is the delay; a parabola through the peak gives the fractional part, which is rounded down.
  Either polarity. Raises naming `where` when the peak lies beyond `max_lag` or is negative.
  """
  corr = np.abs(plain_xcorr(di, loopback, max_lag))
  i = int(np.argmax(corr))
  frac = 0.0
  if 0 < i < len(corr) - 1:
    a, b, c = corr[i - 1], corr[i], corr[i + 1]
    denom = a - 2 * b + c
    frac = 0.5 * (a - c) / denom if denom != 0 else 0.0
  lag = i - max_lag + frac
  if lag < -0.5 or i in (0, len(corr) - 1):
    raise AmpSpaceError(
      f"{where}: the loopback peaks at {lag:.1f} samples, outside "
      f"0..{max_lag}; is it a recording of this DI?"
    )
  return max(0, int(np.floor(lag + 0.1)))  # 0.1: a whole-sample delay read as 4.98 is 5
