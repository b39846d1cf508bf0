"""Wave2WaveNet: a non-autoregressive conditional dilated-convolution network (Flax NNX).

Input: DI audio [B, T + receptive_field - 1, 1] and a conditioning vector [B, C]. Every layer is
a gated dilated convolution whose filter and gate both receive a projection of the
conditioning vector (as in a conditional WaveNet), with residual and skip paths. Convolutions
are 'VALID', so the output has T samples: output t depends on input t .. t + receptive_field - 1.
The head emits `num_classes` logits per sample (256 mu-law classes in the paper) or, with
`num_classes=1`, a regression value.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from ampspace.errors import AmpSpaceError
from ampspace.models.inits import init_kwargs

# How the conditioning projections start. "zeros" suits pretraining for fine-tuning: an input
# the pretraining never switched on (a device or knob it never saw) keeps a zero weight, so it
# adds no random bias when fine-tuning switches it on, while every active input gets gradients
# from the first step. "normal" (Flax's default) lets an untrained model respond to its knobs.
COND_INITS = {"normal": nnx.nn.linear.default_kernel_init, "zeros": nnx.initializers.zeros_init()}


def dilation_schedule(depth: int, max_dilation: int = 512) -> list[int]:
  """1, 2, 4, ..., max_dilation, repeated until `depth` layers (the paper: depth 20 -> 1..512 ×2)."""
  cycle = []
  d = 1
  while d <= max_dilation:
    cycle.append(d)
    d *= 2
  return [cycle[i % len(cycle)] for i in range(depth)]


def dilated_receptive_field(dilations, kernel_size: int) -> int:
  """Samples of input one output sample of a stack of VALID dilated convolutions depends on."""
  return 1 + sum(d * (kernel_size - 1) for d in dilations)


def conv_context(receptive_field: int, causal: bool) -> tuple[int, int]:
  """(left, right) input samples around each output; a non-causal net looks half ahead.

  The pipeline, inference and streaming all cut windows by this, so every convolutional model
  must use it.
  """
  r = receptive_field - 1
  return (r, 0) if causal else (r - r // 2, r // 2)


class GatedResidualLayer(nnx.Module):
  def __init__(
    self,
    channels: int,
    skip_channels: int,
    cond_dim: int,
    kernel_size: int,
    dilation: int,
    *,
    cond_init=nnx.nn.linear.default_kernel_init,
    init: str = "flax",
    rngs: nnx.Rngs,
  ):
    self.shrink = dilation * (kernel_size - 1)
    self.conv = nnx.Conv(
      channels,
      2 * channels,
      kernel_size,
      kernel_dilation=dilation,
      padding="VALID",
      rngs=rngs,
      **init_kwargs(init, channels * kernel_size),
    )
    self.cond = (
      nnx.Linear(cond_dim, 2 * channels, use_bias=False, kernel_init=cond_init, rngs=rngs)
      if cond_dim
      else None
    )
    self.residual = nnx.Conv(channels, channels, 1, rngs=rngs, **init_kwargs(init, channels))
    self.skip = nnx.Conv(channels, skip_channels, 1, rngs=rngs, **init_kwargs(init, channels))

  def __call__(self, x, c):
    h = self.conv(x)
    if self.cond is not None:
      h = h + self.cond(c)[:, None, :]
    f, g = jnp.split(h, 2, axis=-1)
    z = jnp.tanh(f) * jax.nn.sigmoid(g)
    return x[:, self.shrink :, :] + self.residual(z), self.skip(z)


class Wave2WaveNet(nnx.Module):
  def __init__(
    self,
    cond_dim: int,
    *,
    depth: int = 20,
    channels: int = 16,
    skip_channels: int | None = None,
    kernel_size: int = 3,
    max_dilation: int = 512,
    num_classes: int = 256,
    head_channels: int | None = None,
    causal: bool = True,
    cond_init: str = "normal",
    input_gain: bool = False,
    init: str = "flax",
    rngs: nnx.Rngs,
  ):
    if cond_init not in COND_INITS:
      raise AmpSpaceError(f"model.cond_init {cond_init!r}: use one of {', '.join(COND_INITS)}")
    self.dilations = dilation_schedule(depth, max_dilation)
    self.kernel_size = kernel_size
    self.num_classes = num_classes
    self.causal = causal
    skip_channels = skip_channels or channels
    head_channels = head_channels or max(skip_channels, 64 if num_classes > 1 else skip_channels)
    self.input = nnx.Conv(1, channels, 1, rngs=rngs, **init_kwargs(init, 1))
    self.layers = nnx.List(
      [
        GatedResidualLayer(
          channels,
          skip_channels,
          cond_dim,
          kernel_size,
          d,
          cond_init=COND_INITS[cond_init],
          init=init,
          rngs=rngs,
        )
        for d in self.dilations
      ]
    )
    self.head1 = nnx.Conv(
      skip_channels, head_channels, 1, rngs=rngs, **init_kwargs(init, skip_channels)
    )
    self.head2 = nnx.Conv(
      head_channels, num_classes, 1, rngs=rngs, **init_kwargs(init, head_channels)
    )
    # input_gain: the DI is scaled by exp(w . c) before the first layer, a level set by the
    # conditioning (an amp's gain knob is a gain before its clipping stages). Starts at 1;
    # made last, so the other weights draw the same keys as without it.
    self.input_gain = (
      nnx.Linear(cond_dim, 1, use_bias=False, kernel_init=nnx.initializers.zeros_init(), rngs=rngs)
      if input_gain and cond_dim
      else None
    )

  @property
  def receptive_field(self) -> int:
    return dilated_receptive_field(self.dilations, self.kernel_size)

  @property
  def context(self) -> tuple[int, int]:
    """(left, right) input samples needed around each output sample; right > 0 is lookahead."""
    return conv_context(self.receptive_field, self.causal)

  def __call__(self, x, c):
    """x: [B, T + receptive_field - 1, 1], c: [B, C] -> [B, T, num_classes]."""
    if self.input_gain is not None:
      x = x * jnp.exp(self.input_gain(c))[:, None, :]
    h = self.input(x)
    out_len = x.shape[1] - self.receptive_field + 1
    skips = 0.0
    for layer in self.layers:
      h, s = layer(h, c)
      skips = skips + s[:, s.shape[1] - out_len :, :]
    y = self.head1(jax.nn.relu(skips))
    return self.head2(jax.nn.relu(y))


def with_inverted_output(model: Wave2WaveNet) -> Wave2WaveNet:
  """The same model with its output's polarity inverted: y(x) -> -y(x), exactly.

  A 256-way head reverses its class order (the mu-law class centres are symmetric about zero,
  class k <-> num_classes - 1 - k); a regression head negates its last layer. Edits `model` in
  place and returns it."""
  head = model.head2
  if model.num_classes == 1:
    head.kernel.value = -head.kernel.value
    head.bias.value = -head.bias.value
  else:
    head.kernel.value = head.kernel.value[..., ::-1]
    head.bias.value = head.bias.value[::-1]
  return model
