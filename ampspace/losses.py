"""Losses and decoders (pure jax.numpy functions).

Classification over mu-law classes (the paper): squared Earth Mover's Distance, the L2 between
predicted and target CDFs, class-weighted with w_i ∝ (1/N_i)^σ; plain EMD (L1 between CDFs);
cross-entropy. Regression (the field's): MSE, ESR with pre-emphasis 1 - 0.85 z^-1, and a
multi-resolution STFT loss. Decoding by expected value (continuous) or argmax.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ampspace.audio import mulaw

PRE_EMPHASIS = 0.85


def class_weights(counts: np.ndarray, sigma: float) -> np.ndarray:
  """w_i ∝ (1/N_i)^σ, normalised so the expected weight under the data distribution is 1.

  Unseen classes get the weight of the rarest seen class (they cannot occur as targets anyway).
  """
  counts = np.asarray(counts, np.float64)
  seen = counts > 0
  w = np.zeros_like(counts)
  w[seen] = (1.0 / counts[seen]) ** sigma
  w[~seen] = w[seen].max() if seen.any() else 1.0
  p = counts / max(counts.sum(), 1.0)
  return (w / max(np.sum(p * w), 1e-12)).astype(np.float32)


def _weighted_mean(per_sample, classes, weights):
  if weights is None:
    return jnp.mean(per_sample)
  return jnp.mean(per_sample * jnp.asarray(weights)[classes])


def emd_squared_loss(logits, classes, weights=None):
  """Σ_k (CDF_pred(k) - CDF_target(k))², averaged over samples (class-weighted if given)."""
  cdf_pred = jnp.cumsum(jax.nn.softmax(logits, axis=-1), axis=-1)
  cdf_true = (jnp.arange(logits.shape[-1]) >= classes[..., None]).astype(logits.dtype)
  return _weighted_mean(jnp.sum((cdf_pred - cdf_true) ** 2, axis=-1), classes, weights)


def emd_loss(logits, classes, weights=None):
  """Σ_k |CDF_pred(k) - CDF_target(k)| (the 1-D Wasserstein-1 distance in class units)."""
  cdf_pred = jnp.cumsum(jax.nn.softmax(logits, axis=-1), axis=-1)
  cdf_true = (jnp.arange(logits.shape[-1]) >= classes[..., None]).astype(logits.dtype)
  return _weighted_mean(jnp.sum(jnp.abs(cdf_pred - cdf_true), axis=-1), classes, weights)


def cross_entropy_loss(logits, classes, weights=None):
  logp = jax.nn.log_softmax(logits, axis=-1)
  nll = -jnp.take_along_axis(logp, classes[..., None], axis=-1)[..., 0]
  return _weighted_mean(nll, classes, weights)


def expected_value_decode(logits):
  """Σ_k p_k · value_k: the continuous decoding the paper uses."""
  centers = mulaw.class_centers(logits.shape[-1], xp=jnp)
  return jnp.sum(jax.nn.softmax(logits, axis=-1) * centers, axis=-1)


def argmax_decode(logits):
  centers = mulaw.class_centers(logits.shape[-1], xp=jnp)
  return centers[jnp.argmax(logits, axis=-1)]


def pre_emphasis(x, coeff: float = PRE_EMPHASIS):
  """y[t] = x[t] - coeff · x[t-1] along the last axis (first sample kept)."""
  return jnp.concatenate([x[..., :1], x[..., 1:] - coeff * x[..., :-1]], axis=-1)


def mse_loss(pred, target):
  return jnp.mean((pred - target) ** 2)


def esr_loss(pred, target, coeff: float | None = PRE_EMPHASIS, eps: float = 1e-8):
  """Error-to-signal ratio, per example then averaged, on pre-emphasised signals."""
  if coeff is not None:
    pred, target = pre_emphasis(pred, coeff), pre_emphasis(target, coeff)
  num = jnp.sum((target - pred) ** 2, axis=-1)
  den = jnp.sum(target**2, axis=-1) + eps
  return jnp.mean(num / den)


def pooled_esr(pred, target, coeff: float | None = PRE_EMPHASIS, eps: float = 1e-8):
  """ESR over the whole batch, Σ errors² / Σ target² over every window: the metric to log.

  The per-window mean (`esr_loss`) is dominated by near-silent windows (a DI's quiet tail),
  where a tiny error over a tiny signal reads as an ESR of thousands.
  """
  if coeff is not None:
    pred, target = pre_emphasis(pred, coeff), pre_emphasis(target, coeff)
  return jnp.sum((target - pred) ** 2) / (jnp.sum(target**2) + eps)


def _stft_mag(x, n_fft: int, hop: int):
  frames = jnp.stack([x[..., i : i + n_fft] for i in range(0, x.shape[-1] - n_fft + 1, hop)], -2)
  return jnp.abs(jnp.fft.rfft(frames * jnp.hanning(n_fft), axis=-1))


def multi_resolution_stft_loss(
  pred, target, resolutions=((512, 128), (1024, 256), (2048, 512)), eps: float = 1e-7
):
  """Spectral convergence + log-magnitude L1, averaged over FFT sizes."""
  total = 0.0
  used = 0
  for n_fft, hop in resolutions:
    if pred.shape[-1] < n_fft:
      continue
    sp, st = _stft_mag(pred, n_fft, hop), _stft_mag(target, n_fft, hop)
    sc = jnp.linalg.norm((st - sp).reshape(st.shape[0], -1), axis=-1) / (
      jnp.linalg.norm(st.reshape(st.shape[0], -1), axis=-1) + eps
    )
    total = total + jnp.mean(sc) + jnp.mean(jnp.abs(jnp.log(st + eps) - jnp.log(sp + eps)))
    used += 1
  return total / max(used, 1)


CLASSIFICATION_LOSSES = {
  "emd_squared": emd_squared_loss,
  "emd": emd_loss,
  "cross_entropy": cross_entropy_loss,
}
REGRESSION_LOSSES = {
  "mse": lambda pred, target: mse_loss(pred, target),
  "esr": lambda pred, target: esr_loss(pred, target),
  "mr_stft": lambda pred, target: multi_resolution_stft_loss(pred, target),
}
DECODERS = {"expected_value": expected_value_decode, "argmax": argmax_decode}
