"""Latency between a DI and its recorded device output: GCC-PHAT over every clip of a setting.

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


@dataclasses.dataclass(frozen=True)
class LatencyEstimate:
  lag: int                # samples; positive: the output is late
  confidence: float       # peak height over the mean absolute correlation inside the bound
  num_clips: int


def gcc_phat(di: np.ndarray, out: np.ndarray, max_lag: int = DEFAULT_MAX_LAG,
             *, weight_exponent: float = 1.0) -> np.ndarray:
  """Whitened cross-correlation of `out` against `di` for lags -max_lag..max_lag (2*max_lag+1).

  `weight_exponent` = 1 is the classic phase transform; slightly below 1 keeps a little
  magnitude, which helps on very band-limited signals.
  """
  di = np.asarray(di, np.float64)
  out = np.asarray(out, np.float64)
  if di.ndim != 1 or out.ndim != 1 or not len(di) or not len(out):
    raise AmpSpaceError(f"gcc_phat: expected two non-empty 1-D signals, got {di.shape}, "
                        f"{out.shape}")
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


def estimate_latency(pairs: Iterable[tuple[np.ndarray, np.ndarray]],
                     max_lag: int = DEFAULT_MAX_LAG, *, where: str = "") -> LatencyEstimate:
  """One lag for all (di, out) pairs of one device setting: the peak of their summed GCC-PHAT.

  See `combine_correlations`; pairs are consumed one at a time (an iterator keeps memory flat).
  """
  return combine_correlations((clip_correlation(di, out, max_lag) for di, out in pairs),
                              max_lag, where=where)


def clip_correlation(di: np.ndarray, out: np.ndarray, max_lag: int = DEFAULT_MAX_LAG
                     ) -> np.ndarray:
  """One clip's GCC-PHAT over twice the bound (so a lag beyond it is seen, not clipped)."""
  return gcc_phat(di, out, 2 * max_lag)


def combine_correlations(correlations: Iterable[np.ndarray], max_lag: int = DEFAULT_MAX_LAG,
                         *, where: str = "") -> LatencyEstimate:
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
      raise AmpSpaceError(f"{where}: correlation has {c.shape[0]} lags, expected "
                          f"{total.shape[0]} (max_lag {max_lag})")
    peak = np.max(np.abs(c))
    if peak > 0:
      total += c / peak
      count += 1
  if count == 0:
    raise AmpSpaceError(f"{where}: no usable clip to estimate latency from")
  i = int(np.argmax(total))
  lag = i - search
  if abs(lag) > max_lag:
    raise AmpSpaceError(f"{where}: estimated latency {lag} samples is beyond the bound "
                        f"(|lag| <= {max_lag}); the output is further off than allowed or is "
                        f"not a recording of this DI")
  inside = total[search - max_lag: search + max_lag + 1]
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
