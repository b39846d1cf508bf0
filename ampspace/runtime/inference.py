"""Offline full-clip inference with a trained model (used by evaluation, notebooks and export checks)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ampspace import losses


def make_apply(graphdef, params, decode: str = "expected_value"):
  """jitted (x [B, T+R-1, 1], c [B, C]) -> audio [B, T], decoding logits when classifying."""

  @jax.jit
  def apply(x, c):
    out = nnx.merge(graphdef, params)(x, c)
    if out.shape[-1] == 1:
      return out[..., 0]
    return losses.DECODERS[decode](out)

  return apply


def run_clip(
  apply, di: np.ndarray, cond: np.ndarray, context: tuple[int, int], chunk: int = 16384
) -> np.ndarray:
  """Model output for a whole DI, computed in fixed-size chunks so the jit compiles once."""
  left, right = context
  n = len(di)
  n_chunks = -(-n // chunk)
  x = np.pad(np.asarray(di, np.float32), (left, right + n_chunks * chunk - n))
  frames = np.stack([x[i * chunk : i * chunk + chunk + left + right] for i in range(n_chunks)])
  c = np.repeat(np.asarray(cond, np.float32)[None], n_chunks, axis=0)
  y = np.asarray(apply(jnp.asarray(frames[..., None]), jnp.asarray(c)))
  return y.reshape(-1)[:n]
