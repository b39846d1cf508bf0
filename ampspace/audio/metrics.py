"""Evaluation metrics on NumPy signals: MSE, ESR (with pre-emphasis), multi-resolution STFT distance."""

from __future__ import annotations

import numpy as np
import scipy.signal

PRE_EMPHASIS = 0.85  # the field's convention: H(z) = 1 - 0.85 z^-1
STFT_RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))  # (fft size, hop)


def pre_emphasis(x: np.ndarray, coeff: float = PRE_EMPHASIS) -> np.ndarray:
  return scipy.signal.lfilter([1.0, -coeff], [1.0], x, axis=-1)


def mse(target: np.ndarray, pred: np.ndarray) -> float:
  return float(np.mean((np.asarray(target, np.float64) - np.asarray(pred, np.float64)) ** 2))


def esr(
  target: np.ndarray, pred: np.ndarray, *, emphasis: float | None = PRE_EMPHASIS, eps: float = 1e-10
) -> float:
  """Error-to-signal ratio sum((y - y_hat)^2) / sum(y^2), pre-emphasised (None disables)."""
  t = np.asarray(target, np.float64)
  p = np.asarray(pred, np.float64)
  if emphasis is not None:
    t, p = pre_emphasis(t, emphasis), pre_emphasis(p, emphasis)
  return float(np.sum((t - p) ** 2) / (np.sum(t**2) + eps))


def mr_stft(
  target: np.ndarray, pred: np.ndarray, resolutions=STFT_RESOLUTIONS, eps: float = 1e-7
) -> float:
  """Multi-resolution STFT distance: spectral convergence + log-magnitude L1, averaged over sizes."""
  total = 0.0
  for n_fft, hop in resolutions:
    kw = dict(nperseg=n_fft, noverlap=n_fft - hop, window="hann", boundary=None, padded=True)
    st = np.abs(scipy.signal.stft(target, **kw)[2])
    sp = np.abs(scipy.signal.stft(pred, **kw)[2])
    sc = np.linalg.norm(st - sp) / (np.linalg.norm(st) + eps)
    mag = np.mean(np.abs(np.log(st + eps) - np.log(sp + eps)))
    total += sc + mag
  return float(total / len(resolutions))


def all_metrics(target: np.ndarray, pred: np.ndarray) -> dict[str, float]:
  return {"mse": mse(target, pred), "esr": esr(target, pred), "mr_stft": mr_stft(target, pred)}
