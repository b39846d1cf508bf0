"""A WaveNet built from layer arrays, in neural-amp-modeler's (NAM) layout, with a regression head.

NAM's "standard" WaveNet, the field's reference model, is two layer arrays: 16 channels with
dilations 1..512, then 8 channels with dilations 1..512 (kernel 3, receptive field 4093),
ungated tanh layers, and a head that sums every layer's activation (no skip convolution) and
scales it by 0.02. This module reproduces that layout so the benchmark compares like for like
(same channels, dilations, activations and head), while conditioning every layer on the
vector `c` as Wave2WaveNet does: a 1x1 projection of `c` added to the dilated convolution's
output. NAM adds a 1x1 projection of the raw audio input there instead (its "input mixin");
`input_mixin=True` adds that too, so that a NAM capture (`ampspace.nam_format`) loads into this
model weight for weight.

`init="torch"` initialises every weight and bias as PyTorch's `Conv1d`/`Linear` do, which is what
NAM's own trainer starts from (`ampspace.models.inits`).

`dc_free=True` (regression only) subtracts the model's response to silence: y(x) = f(x, c) - f(0, c),
so an all-zero input gives exactly zero output, at every setting. A network trained without it
leaves a constant offset where the DI is silent (measured -50 dBFS on the race's captures, all of
it DC). For an all-zero input every activation is constant in time, so f(0, c) costs one
output sample per layer (`silence_response`); `ampspace.nam_format.to_nam` folds it into the head
bias, so a `.nam` file plays the same model in NAM's hosts.

Interface as every model here: `model(x [B, T + receptive_field - 1, 1], c) -> [B, T, K]`;
`num_classes=1` is the regression head (NAM's), K > 1 a mu-law classifier.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from ampspace.errors import AmpSpaceError
from ampspace.models.inits import init_kwargs
from ampspace.models.wave2wavenet import conv_context, dilated_receptive_field

NAM_STANDARD = (
  {"channels": 16, "head_size": 8, "dilations": tuple(2**i for i in range(10))},
  {"channels": 8, "head_size": 1, "dilations": tuple(2**i for i in range(10))},
)


class ArrayLayer(nnx.Module):
  def __init__(
    self,
    channels: int,
    cond_dim: int,
    kernel_size: int,
    dilation: int,
    gated: bool,
    input_mixin: bool,
    init: str = "flax",
    *,
    rngs: nnx.Rngs,
  ):
    self.shrink, self.gated = dilation * (kernel_size - 1), gated
    width = 2 * channels if gated else channels
    self.conv = nnx.Conv(
      channels,
      width,
      kernel_size,
      kernel_dilation=dilation,
      padding="VALID",
      rngs=rngs,
      **init_kwargs(init, channels * kernel_size),
    )
    self.mixer = (
      nnx.Linear(cond_dim, width, use_bias=False, rngs=rngs, **init_kwargs(init, cond_dim))
      if cond_dim
      else None
    )
    self.input_mixer = (
      nnx.Conv(1, width, 1, use_bias=False, rngs=rngs, **init_kwargs(init, 1))
      if input_mixin
      else None
    )
    self.residual = nnx.Conv(channels, channels, 1, rngs=rngs, **init_kwargs(init, channels))

  def __call__(self, x, c, audio):
    z = self.conv(x)
    if self.mixer is not None:
      z = z + self.mixer(c)[:, None, :]
    if self.input_mixer is not None:  # the raw input, right-aligned with this layer's output
      z = z + self.input_mixer(audio[:, audio.shape[1] - z.shape[1] :, :])
    if self.gated:
      f, g = jnp.split(z, 2, axis=-1)
      a = jnp.tanh(f) * jax.nn.sigmoid(g)
    else:
      a = jnp.tanh(z)
    return x[:, self.shrink :, :] + self.residual(a), a


class LayerArray(nnx.Module):
  def __init__(
    self,
    in_channels: int,
    channels: int,
    head_size: int,
    dilations,
    cond_dim: int,
    kernel_size: int,
    gated: bool,
    head_bias: bool,
    input_mixin: bool,
    init: str = "flax",
    *,
    rngs: nnx.Rngs,
  ):
    self.rechannel = nnx.Conv(
      in_channels, channels, 1, use_bias=False, rngs=rngs, **init_kwargs(init, in_channels)
    )
    self.layers = nnx.List(
      [
        ArrayLayer(channels, cond_dim, kernel_size, d, gated, input_mixin, init, rngs=rngs)
        for d in dilations
      ]
    )
    self.head_rechannel = nnx.Conv(
      channels, head_size, 1, use_bias=head_bias, rngs=rngs, **init_kwargs(init, channels)
    )

  def __call__(self, x, c, head_in, audio, constant: bool = False):
    """-> (head output [B, T', head_size], layer output [B, T', channels]).

    constant: x [B, 1, C] stands for a signal constant in time; each dilated convolution then
    sees just its own taps of it (kernel_size of them, spaced by the dilation) and gives one
    sample, the value it would give at every time."""
    x = self.rechannel(x)
    for layer in self.layers:
      if constant:
        x = jnp.broadcast_to(x, (x.shape[0], layer.shrink + 1, x.shape[2]))
      x, a = layer(x, c, audio)
      head_in = a if head_in is None else head_in[:, head_in.shape[1] - a.shape[1] :, :] + a
    return self.head_rechannel(head_in), x


class LayerArrayWaveNet(nnx.Module):
  def __init__(
    self,
    cond_dim: int,
    *,
    layer_arrays=NAM_STANDARD,
    kernel_size: int = 3,
    gated: bool = False,
    head_scale: float = 0.02,
    num_classes: int = 1,
    causal: bool = True,
    input_mixin: bool = False,
    init: str = "flax",
    dc_free: bool = False,
    rngs: nnx.Rngs,
  ):
    if dc_free and num_classes != 1:
      raise AmpSpaceError(
        f"model.dc_free needs a regression head (num_classes=1), not num_classes={num_classes}"
      )
    arrays = [dict(a) for a in layer_arrays]
    for i, a in enumerate(arrays):
      if not {"channels", "head_size", "dilations"} <= set(a):
        raise AmpSpaceError(f"model.layer_arrays[{i}]: needs channels, head_size and dilations")
    for i in range(len(arrays) - 1):
      if arrays[i]["head_size"] != arrays[i + 1]["channels"]:
        raise AmpSpaceError(
          f"model.layer_arrays[{i}].head_size must equal the next array's "
          f"channels (the head sum continues in it)"
        )
    self.kernel_size, self.num_classes, self.causal, self.head_scale = (
      kernel_size,
      num_classes,
      causal,
      head_scale,
    )
    self.dc_free = dc_free
    self.dilations = [d for a in arrays for d in a["dilations"]]
    self.arrays = nnx.List(
      [
        LayerArray(
          1 if i == 0 else arrays[i - 1]["channels"],
          a["channels"],
          a["head_size"],
          a["dilations"],
          cond_dim,
          kernel_size,
          gated,
          head_bias=i == len(arrays) - 1,
          input_mixin=input_mixin,
          init=init,
          rngs=rngs,
        )
        for i, a in enumerate(arrays)
      ]
    )
    last = arrays[-1]["head_size"]
    self.head = (
      None
      if num_classes == last
      else nnx.Conv(last, num_classes, 1, rngs=rngs, **init_kwargs(init, last))
    )

  @property
  def receptive_field(self) -> int:
    return dilated_receptive_field(self.dilations, self.kernel_size)

  @property
  def context(self) -> tuple[int, int]:
    return conv_context(self.receptive_field, self.causal)

  def _forward(self, x, c, constant: bool = False):
    h, head_in = x, None
    for array in self.arrays:
      head_in, h = array(h, c, head_in, x, constant)
    out = self.head_scale * head_in
    return out if self.head is None else self.head(out)

  def silence_response(self, c):
    """f(0, c): the output for an all-zero input, [B, num_classes] (without the dc_free head)."""
    return self._forward(jnp.zeros((c.shape[0], 1, 1), jnp.float32), c, constant=True)[:, 0, :]

  def __call__(self, x, c):
    """x: [B, T + receptive_field - 1, 1], c: [B, C] -> [B, T, num_classes]."""
    out = self._forward(x, c)
    return out - self.silence_response(c)[:, None, :] if self.dc_free else out


def with_inverted_output(model: LayerArrayWaveNet) -> LayerArrayWaveNet:
  """The same model with its output's polarity inverted: y(x) -> -y(x), exactly.

  The output is linear in the last 1x1 convolution (the head, or the last array's head
  projection when the head is that projection), so negating its kernel and bias negates it; the
  DC-free head's silence response goes through the same layer and flips with it. Regression
  only. Edits `model` in place and returns it."""
  if model.num_classes != 1:
    raise AmpSpaceError("inverting a LayerArrayWaveNet's output needs its regression head")
  last = model.head if model.head is not None else model.arrays[-1].head_rechannel
  last.kernel.value = -last.kernel.value
  if last.bias is not None:
    last.bias.value = -last.bias.value
  return model
