"""Pure DSP building blocks for native devices: filters (RBJ biquads), oversampled waveshaping."""

from __future__ import annotations

import numpy as np
import scipy.signal

from ampspace import SAMPLE_RATE


def _biquad(b0, b1, b2, a0, a1, a2):
  return np.array([b0, b1, b2]) / a0, np.array([a0, a1, a2]) / a0


def peaking(f0: float, gain_db: float, q: float = 0.7, sr: int = SAMPLE_RATE):
  a = 10 ** (gain_db / 40)
  w = 2 * np.pi * f0 / sr
  alpha = np.sin(w) / (2 * q)
  return _biquad(1 + alpha * a, -2 * np.cos(w), 1 - alpha * a, 1 + alpha / a, -2 * np.cos(w),
                 1 - alpha / a)


def low_shelf(f0: float, gain_db: float, sr: int = SAMPLE_RATE, s: float = 1.0):
  a = 10 ** (gain_db / 40)
  w = 2 * np.pi * f0 / sr
  alpha = np.sin(w) / 2 * np.sqrt((a + 1 / a) * (1 / s - 1) + 2)
  c, sq = np.cos(w), 2 * np.sqrt(a) * alpha
  return _biquad(a * ((a + 1) - (a - 1) * c + sq), 2 * a * ((a - 1) - (a + 1) * c),
                 a * ((a + 1) - (a - 1) * c - sq), (a + 1) + (a - 1) * c + sq,
                 -2 * ((a - 1) + (a + 1) * c), (a + 1) + (a - 1) * c - sq)


def high_shelf(f0: float, gain_db: float, sr: int = SAMPLE_RATE, s: float = 1.0):
  a = 10 ** (gain_db / 40)
  w = 2 * np.pi * f0 / sr
  alpha = np.sin(w) / 2 * np.sqrt((a + 1 / a) * (1 / s - 1) + 2)
  c, sq = np.cos(w), 2 * np.sqrt(a) * alpha
  return _biquad(a * ((a + 1) + (a - 1) * c + sq), -2 * a * ((a - 1) + (a + 1) * c),
                 a * ((a + 1) + (a - 1) * c - sq), (a + 1) - (a - 1) * c + sq,
                 2 * ((a - 1) - (a + 1) * c), (a + 1) - (a - 1) * c - sq)


def highpass(f0: float, sr: int = SAMPLE_RATE, order: int = 1):
  return scipy.signal.butter(order, f0, btype="highpass", fs=sr)


def lowpass(f0: float, sr: int = SAMPLE_RATE, order: int = 1):
  return scipy.signal.butter(order, min(f0, 0.45 * sr), btype="lowpass", fs=sr)


def apply(ba, x: np.ndarray) -> np.ndarray:
  return scipy.signal.lfilter(ba[0], ba[1], x)


def oversampled(shaper, x: np.ndarray, factor: int = 4) -> np.ndarray:
  """Applies a memoryless nonlinearity at `factor`× the rate so its harmonics do not alias."""
  if factor == 1:
    return shaper(x)
  up = scipy.signal.resample_poly(x, factor, 1)
  return scipy.signal.resample_poly(shaper(up), 1, factor)[: len(x)]


def asymmetric_tube(x: np.ndarray, bias: float = 0.2) -> np.ndarray:
  """Triode-like saturation: softer on the positive swing, harder on the negative, DC removed."""
  y = np.where(x + bias >= 0, np.tanh(x + bias), np.tanh(1.6 * (x + bias)) / 1.6)
  return y - (np.tanh(bias) if bias >= 0 else np.tanh(1.6 * bias) / 1.6)
