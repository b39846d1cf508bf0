"""Recurrent wave-to-wave baselines of the paper's architecture search: RNN, LSTM, dilated LSTM.

They share Wave2WaveNet's interface, so the trainer, inference and evaluation treat them alike:
`model(x [B, T + receptive_field - 1, 1], c [B, C]) -> [B, T, num_classes]`. A recurrent net
has no finite receptive field; instead its first `warmup` outputs are discarded (their state has
seen too little audio), so `context = (warmup, 0)` and the pipeline's windows work unchanged.

Every step sees the DI sample and the conditioning vector (projected once, added to the input
projection). The input projections of the whole window are one matmul outside the scan; only
`h @ W_hh` runs inside it, which is what makes a CPU scan over thousands of samples bearable.

Streaming needs explicit state, so each model exposes `initial_carry(batch)` and
`scan(x [B, L, 1], c, carry) -> (out [B, L, num_classes], carry)`: running a clip chunk by
chunk with the carry gives the same output as one call on the whole clip (a test checks this).
For the dilated LSTM, chunk lengths must be multiples of the largest dilation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from ampspace.errors import AmpSpaceError

CELLS = ("rnn", "lstm")


def _gates(cell: str) -> int:
  return 4 if cell == "lstm" else 1


def cell_step(cell: str, w_hh, carry, x_proj):
  """One recurrence step: carry (h, c) and the precomputed input projection -> (carry, h)."""
  h, c = carry
  z = x_proj + h @ w_hh
  if cell == "rnn":
    h = jnp.tanh(z)
    return (h, c), h
  i, f, g, o = jnp.split(z, 4, axis=-1)
  c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
  h = jax.nn.sigmoid(o) * jnp.tanh(c)
  return (h, c), h


def run_cell(cell: str, w_hh, carry, x_proj):
  """Scans `cell_step` over time: x_proj [B, L, G*H] -> (carry, h [B, L, H])."""
  carry, hs = jax.lax.scan(
    lambda cr, xp: cell_step(cell, w_hh, cr, xp), carry, jnp.swapaxes(x_proj, 0, 1)
  )
  return carry, jnp.swapaxes(hs, 0, 1)


def run_dilated(cell: str, w_hh, carry, x_proj, dilation: int):
  """A recurrence from t - dilation to t: `dilation` interleaved sub-sequences scanned together.

  carry: (h, c) each [dilation, B, H], the states of the last `dilation` time steps in time
  order; x_proj [B, L, G*H] with L a multiple of `dilation`.
  """
  if dilation == 1:
    (h, c), hs = run_cell(cell, w_hh, (carry[0][0], carry[1][0]), x_proj)
    return (h[None], c[None]), hs
  b, length, g = x_proj.shape
  if length % dilation:
    raise AmpSpaceError(f"dilated LSTM: length {length} is not a multiple of dilation {dilation}")
  # [B, L, G] -> [L/d, d*B, G]: sub-sequence r holds steps r, r + d, r + 2d, ...
  xs = x_proj.reshape(b, length // dilation, dilation, g).transpose(1, 2, 0, 3)
  xs = xs.reshape(length // dilation, dilation * b, g)
  h0, c0 = (s.reshape(dilation * b, -1) for s in carry)
  (h, c), hs = jax.lax.scan(lambda cr, xp: cell_step(cell, w_hh, cr, xp), (h0, c0), xs)
  hidden = hs.shape[-1]
  hs = hs.reshape(length // dilation, dilation, b, hidden).transpose(2, 0, 1, 3)
  return (h.reshape(dilation, b, hidden), c.reshape(dilation, b, hidden)), hs.reshape(
    b, length, hidden
  )


class RecurrentLayer(nnx.Module):
  def __init__(
    self, in_dim: int, cond_dim: int, hidden: int, cell: str, dilation: int, *, rngs: nnx.Rngs
  ):
    g = _gates(cell)
    self.cell, self.dilation, self.hidden = cell, dilation, hidden
    self.w_in = nnx.Linear(in_dim, g * hidden, rngs=rngs)
    self.w_cond = nnx.Linear(cond_dim, g * hidden, use_bias=False, rngs=rngs) if cond_dim else None
    self.w_hh = nnx.Param(nnx.initializers.orthogonal()(rngs.params(), (hidden, g * hidden)))

  def initial_carry(self, batch: int):
    z = jnp.zeros((self.dilation, batch, self.hidden), jnp.float32)
    return (z, z)

  def __call__(self, x, c, carry):
    x_proj = self.w_in(x)
    if self.w_cond is not None:
      x_proj = x_proj + self.w_cond(c)[:, None, :]
    return run_dilated(self.cell, self.w_hh[...], carry, x_proj, self.dilation)


class RecurrentNet(nnx.Module):
  """A stack of (optionally dilated) RNN/LSTM layers and a per-sample head.

  cell: "rnn" (tanh Elman) or "lstm". dilations: one per layer (all 1 = a plain stacked RNN;
  1, 2, 4, ... = a dilated RNN in the sense of Chang et al. 2017).
  """

  def __init__(
    self,
    cond_dim: int,
    *,
    cell: str = "lstm",
    hidden: int = 32,
    num_layers: int = 1,
    dilations: tuple[int, ...] | None = None,
    warmup: int = 1024,
    num_classes: int = 256,
    head_channels: int = 0,
    rngs: nnx.Rngs,
  ):
    if cell not in CELLS:
      raise AmpSpaceError(f"model.cell: {cell!r} is not one of {CELLS}")
    dilations = tuple(dilations) if dilations else (1,) * num_layers
    if len(dilations) != num_layers:
      raise AmpSpaceError(f"model.dilations: {len(dilations)} given for {num_layers} layers")
    if any(d < 1 for d in dilations):
      raise AmpSpaceError(f"model.dilations: {dilations} must be >= 1")
    self.cell, self.dilations, self.warmup, self.num_classes = cell, dilations, warmup, num_classes
    self.layers = nnx.List(
      [
        RecurrentLayer(1 if i == 0 else hidden, cond_dim, hidden, cell, d, rngs=rngs)
        for i, d in enumerate(dilations)
      ]
    )
    self.head_hidden = nnx.Linear(hidden, head_channels, rngs=rngs) if head_channels else None
    self.head = nnx.Linear(head_channels or hidden, num_classes, rngs=rngs)
    self.chunk_multiple = max(dilations)

  @property
  def receptive_field(self) -> int:
    """Not a true receptive field: the warm-up samples plus the current one."""
    return self.warmup + 1

  @property
  def context(self) -> tuple[int, int]:
    return (self.warmup, 0)

  def initial_carry(self, batch: int):
    return tuple(layer.initial_carry(batch) for layer in self.layers)

  def scan(self, x, c, carry):
    """x [B, L, 1] (L a multiple of max(dilations)) from state `carry` -> (out [B, L, K], carry)."""
    h, new_carry = x, []
    for layer, cr in zip(self.layers, carry):
      cr, h = layer(h, c, cr)
      new_carry.append(cr)
    if self.head_hidden is not None:
      h = jax.nn.relu(self.head_hidden(h))
    return self.head(h), tuple(new_carry)

  def __call__(self, x, c):
    """x: [B, T + warmup, 1], c: [B, C] -> [B, T, num_classes] (warm-up outputs dropped)."""
    length = x.shape[1]
    pad = -length % self.chunk_multiple
    xp = jnp.pad(x, ((0, 0), (pad, 0), (0, 0)))  # zero-pad on the left: more warm-up, same T
    out, _ = self.scan(xp, c, self.initial_carry(x.shape[0]))
    return out[:, pad + self.warmup :, :]


def RNN(cond_dim: int, **kwargs) -> RecurrentNet:  # noqa: N802  (a registry constructor)
  return RecurrentNet(cond_dim, **{"cell": "rnn", **kwargs})


def LSTM(cond_dim: int, **kwargs) -> RecurrentNet:  # noqa: N802
  return RecurrentNet(cond_dim, **{"cell": "lstm", **kwargs})


def DilatedLSTM(cond_dim: int, *, num_layers: int = 4, dilations=None, **kwargs) -> RecurrentNet:  # noqa: N802
  dilations = dilations or tuple(2**i for i in range(num_layers))
  return RecurrentNet(
    cond_dim, **{"cell": "lstm", "num_layers": num_layers, "dilations": dilations, **kwargs}
  )
