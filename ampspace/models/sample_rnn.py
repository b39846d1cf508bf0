"""A SampleRNN-style hierarchical recurrent wave-to-wave baseline.

SampleRNN (Mehri et al. 2017) stacks recurrent tiers that run at decreasing frame rates, each
conditioning the faster tier below, over a sample-level MLP. The original is autoregressive on
its own output; here it maps the DI to the device output, so each tier reads the *DI*:

- tier k runs an LSTM over frames of `frame_sizes[k]` DI samples; step j sees the previous
  frame (samples of frame j-1, as in SampleRNN) plus the upsampled output of the tier above, and
  emits one vector per sub-frame of the next tier (a linear upsampling);
- the sample-level MLP at sample t sees the last `frame_sizes[-1]` DI samples up to t and the
  vector of the lowest tier for t's frame.

So the model is causal, conditioned on the vector `c` at every tier, and has the shared
interface `model(x [B, T + warmup, 1], c) -> [B, T, num_classes]` with `context = (warmup, 0)`.
`scan(x, c, carry)` over chunks whose length is a multiple of the top frame size reproduces a
single call (the carry holds each tier's LSTM state and the last top frame of DI samples).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from ampspace.errors import AmpSpaceError
from ampspace.models.rnn import run_cell


class Tier(nnx.Module):
  def __init__(
    self,
    frame: int,
    sub_frame: int,
    hidden: int,
    above: int,
    cond_dim: int,
    out_dim: int,
    *,
    rngs: nnx.Rngs,
  ):
    self.frame, self.ratio, self.hidden, self.out_dim = frame, frame // sub_frame, hidden, out_dim
    self.w_in = nnx.Linear(frame, 4 * hidden, rngs=rngs)
    self.w_above = nnx.Linear(above, 4 * hidden, use_bias=False, rngs=rngs) if above else None
    self.w_cond = nnx.Linear(cond_dim, 4 * hidden, use_bias=False, rngs=rngs) if cond_dim else None
    self.w_hh = nnx.Param(nnx.initializers.orthogonal()(rngs.params(), (hidden, 4 * hidden)))
    self.upsample = nnx.Linear(hidden, self.ratio * out_dim, rngs=rngs)

  def __call__(self, frames, above, c, carry):
    """frames [B, N, frame] (previous frames), above [B, N, A] or None -> ([B, N*ratio, out], carry)."""
    z = self.w_in(frames)
    if self.w_above is not None:
      z = z + self.w_above(above)
    if self.w_cond is not None:
      z = z + self.w_cond(c)[:, None, :]
    carry, h = run_cell("lstm", self.w_hh[...], carry, z)
    up = self.upsample(h)
    b, n = up.shape[:2]
    return up.reshape(b, n * self.ratio, self.out_dim), carry


class SampleRNN(nnx.Module):
  def __init__(
    self,
    cond_dim: int,
    *,
    frame_sizes: tuple[int, ...] = (16, 4),
    hidden: int = 64,
    mlp_channels: int = 64,
    warmup: int = 1024,
    num_classes: int = 256,
    rngs: nnx.Rngs,
  ):
    frame_sizes = tuple(int(f) for f in frame_sizes)
    if (
      not frame_sizes
      or any(f < 1 for f in frame_sizes)
      or any(a % b for a, b in zip(frame_sizes, frame_sizes[1:]))
    ):
      raise AmpSpaceError(
        f"model.frame_sizes: {frame_sizes} must be decreasing positive sizes, "
        f"each dividing the one before"
      )
    self.frame_sizes, self.warmup, self.num_classes, self.hidden = (
      frame_sizes,
      warmup,
      num_classes,
      hidden,
    )
    tiers = []
    for k, frame in enumerate(frame_sizes):
      sub = frame_sizes[k + 1] if k + 1 < len(frame_sizes) else 1
      tiers.append(
        Tier(
          frame,
          sub,
          hidden,
          hidden if k else 0,
          cond_dim,
          hidden if k + 1 < len(frame_sizes) else mlp_channels,
          rngs=rngs,
        )
      )
    self.tiers = nnx.List(tiers)
    bottom = frame_sizes[-1]
    self.sample_in = nnx.Linear(bottom, mlp_channels, rngs=rngs)
    self.mlp = nnx.Linear(mlp_channels, mlp_channels, rngs=rngs)
    self.head = nnx.Linear(mlp_channels, num_classes, rngs=rngs)

  @property
  def receptive_field(self) -> int:
    return self.warmup + 1

  @property
  def context(self) -> tuple[int, int]:
    return (self.warmup, 0)

  @property
  def chunk_multiple(self) -> int:
    return self.frame_sizes[0]

  def initial_carry(self, batch: int):
    z = jnp.zeros((batch, self.hidden), jnp.float32)
    return (tuple((z, z) for _ in self.tiers), jnp.zeros((batch, self.frame_sizes[0]), jnp.float32))

  def scan(self, x, c, carry):
    """x [B, L, 1], L a multiple of frame_sizes[0], from `carry` -> (out [B, L, K], carry)."""
    tier_carry, prev = carry
    b, length = x.shape[:2]
    top = self.frame_sizes[0]
    if length % top:
      raise AmpSpaceError(f"SampleRNN: length {length} is not a multiple of frame {top}")
    full = jnp.concatenate([prev, x[..., 0]], axis=1)  # [B, top + L]: the previous top frame first
    above, new_carry = None, []
    for tier, cr in zip(self.tiers, tier_carry):
      f = tier.frame
      frames = full[:, top - f : top - f + length].reshape(
        b, length // f, f
      )  # frame j-1 for step j
      above, cr = tier(frames, above, c, cr)
      new_carry.append(cr)
    bottom = self.frame_sizes[-1]
    # The last `bottom` DI samples up to and including t, for every t of the chunk.
    window = jnp.stack(
      [full[:, top - bottom + 1 + i : top - bottom + 1 + i + length] for i in range(bottom)],
      axis=-1,
    )
    h = jax.nn.relu(self.sample_in(window) + above)
    h = jax.nn.relu(self.mlp(h))
    return self.head(h), (tuple(new_carry), full[:, -top:])

  def __call__(self, x, c):
    """x: [B, T + warmup, 1], c: [B, C] -> [B, T, num_classes] (warm-up outputs dropped)."""
    length = x.shape[1]
    pad = -length % self.chunk_multiple
    xp = jnp.pad(x, ((0, 0), (pad, 0), (0, 0)))
    out, _ = self.scan(xp, c, self.initial_carry(x.shape[0]))
    return out[:, pad + self.warmup :, :]
