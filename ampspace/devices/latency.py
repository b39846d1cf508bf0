"""Plugin latency: measured with an impulse, compensated by running past the end and trimming.

Plugins that oversample or look ahead delay their output. A dataset pair must be aligned to
the sample (a model with a 4093-sample receptive field would otherwise learn the delay), so
every plugin device measures its latency once, reports it (`Device.latency_samples`) and
removes it from every render.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ampspace.audio import alignment
from ampspace.errors import AmpSpaceError


def measure_latency(
  process: Callable[[np.ndarray], np.ndarray],
  *,
  at: int = 1024,
  length: int = 8192,
  amplitude: float = 0.25,
  max_lag: int = 4096,
  where: str = "plugin",
) -> int:
  """Samples between an impulse at `at` and the onset of the response to it.

  The response to silence is subtracted first (plugins add anti-denormal noise or DC), and
  the onset is the first sample reaching 10% of the response's peak: exactly the delay for a
  pure delay line or an oversampler's FIR, and 0-2 samples for a circuit's own
  (minimum-phase) filters, whose slow rise is part of the sound, not latency. (The peak
  itself would count a tone control's rise time as latency: gx_ts9's peak is 21 samples in,
  its onset 0.)
  """
  x = np.zeros(length, np.float32)
  quiet = np.asarray(process(x.copy()), np.float64)
  x[at] = amplitude
  h = np.asarray(process(x), np.float64) - quiet
  tail = np.abs(h[at - 16 : at + max_lag])
  peak = float(tail.max()) if tail.size else 0.0
  if not np.isfinite(peak) or peak < 1e-7:
    raise AmpSpaceError(f"{where}: no response to an impulse; cannot measure its latency")
  return max(0, alignment.impulse_onset(tail, 0.1 * (1 - 1e-9)) - 16)


def run_compensated(
  process: Callable[[np.ndarray], np.ndarray], di: np.ndarray, latency: int
) -> np.ndarray:
  """process(di) advanced by `latency` samples: the DI is padded so nothing is lost at the end."""
  if latency <= 0:
    return np.asarray(process(di))
  out = np.asarray(process(np.concatenate([di, np.zeros(latency, di.dtype)])))
  return out[latency : latency + len(di)]
