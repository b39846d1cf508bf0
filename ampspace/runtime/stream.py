"""Stateful block-by-block ("fast WaveNet") inference, jitted with JAX.

Offline inference (`ampspace.runtime.inference`) recomputes the whole receptive field for every chunk.
A real-time host instead hands over small blocks (32..2048 samples) and wants each one back
before the next arrives. Every dilated layer only needs its last `dilation * (kernel - 1)`
inputs from earlier blocks, so the streamer keeps one such queue per layer, runs each layer's
VALID convolution for just the block's samples (one matmul over stacked taps), and moves the
queues on. The output equals offline inference on the whole signal to float tolerance.

Knobs may change between blocks. A sudden change of the conditioning vector is a step in every
layer's bias, which is heard as a click, so the streamer ramps the conditioning linearly from
its current value to the new one over `smoothing` samples (the conditioning enters linearly,
so ramping `c` is ramping every layer's conditioning projection).

The packed weight layout built here (`wave2wavenet_arrays`) is the export format's
(`ampspace.runtime.export_format`): what `ampspace.runtime.export` writes and the NumPy and C runtimes read.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ampspace.runtime import export_format
from ampspace.audio import mulaw
from ampspace.errors import AmpSpaceError

DEFAULT_SMOOTHING = export_format.DEFAULT_SMOOTHING  # samples, ~23 ms at 44.1 kHz
DECODES = ("expected_value", "argmax")


# ---------------------------------------------------------------- packed weights
def _a(param) -> np.ndarray:
  return np.asarray(param[...], np.float32)


def wave2wavenet_arrays(model) -> tuple[dict, dict[str, np.ndarray]]:
  """(arch, weights): the model's hyper-parameters and its weights stacked per layer, the
  arrays of `ampspace.runtime.export_format.weight_shapes(arch)`.

  The convolution kernel [k, C, 2C] becomes [k*C, 2C] so that one matmul over the stacked taps
  (x[t], x[t+d], ..., x[t+(k-1)d]) gives a layer's pre-activations, as flax's VALID conv does.
  """
  from ampspace.models.wave2wavenet import Wave2WaveNet

  if not isinstance(model, Wave2WaveNet):
    raise AmpSpaceError(f"wave2wavenet_arrays: expected a Wave2WaveNet, got {type(model).__name__}")
  layers = list(model.layers)
  k = model.kernel_size
  channels = _a(model.input.kernel).shape[-1]
  skip_channels = _a(layers[0].skip.kernel).shape[-1]
  cond_dim = 0 if layers[0].cond is None else _a(layers[0].cond.kernel).shape[0]
  arch = {
    "model": "wave2wavenet",
    "dilations": [int(d) for d in model.dilations],
    "kernel_size": int(k),
    "channels": int(channels),
    "skip_channels": int(skip_channels),
    "head_channels": int(_a(model.head1.kernel).shape[-1]),
    "num_classes": int(model.num_classes),
    "cond_dim": int(cond_dim),
    "causal": bool(model.causal),
    "receptive_field": int(model.receptive_field),
    "context": [int(v) for v in model.context],
  }
  w = {
    "input_w": _a(model.input.kernel)[0, 0],
    "input_b": _a(model.input.bias),
    "conv_w": np.stack([_a(l.conv.kernel).reshape(k * channels, 2 * channels) for l in layers]),
    "conv_b": np.stack([_a(l.conv.bias) for l in layers]),
    "cond_w": (
      np.stack([_a(l.cond.kernel) for l in layers])
      if cond_dim
      else np.zeros((len(layers), 0, 2 * channels), np.float32)
    ),
    "res_w": np.stack([_a(l.residual.kernel)[0] for l in layers]),
    "res_b": np.stack([_a(l.residual.bias) for l in layers]),
    "skip_w": np.stack([_a(l.skip.kernel)[0] for l in layers]),
    "skip_b": np.stack([_a(l.skip.bias) for l in layers]),
    "head1_w": _a(model.head1.kernel)[0],
    "head1_b": _a(model.head1.bias),
    "head2_w": _a(model.head2.kernel)[0],
    "head2_b": _a(model.head2.bias),
  }
  if model.num_classes > 1:
    w["class_centers"] = np.asarray(mulaw.class_centers(model.num_classes), np.float32)
  if getattr(model, "input_gain", None) is not None:
    # model.input_gain: the DI is scaled by exp(c . input_gain_w) before the first layer. Not an
    # export array: the streamer applies it, an export folds it into input_w at a fixed setting.
    arch["input_gain"] = True
    w[INPUT_GAIN] = _a(model.input_gain.kernel)[:, 0]
  return arch, w


INPUT_GAIN = "input_gain_w"  # [D], packed only for a model with model.input_gain


def shrinks(arch: dict) -> list[int]:
  return [d * (arch["kernel_size"] - 1) for d in arch["dilations"]]


def latency(arch: dict) -> int:
  """Samples by which streamed output lags the input: the model's lookahead (0 when causal)."""
  return int(arch["context"][1])


# ---------------------------------------------------------------- the step (pure functions)
def _gate(w, l: int, taps, cproj):
  h = taps @ w["conv_w"][l] + w["conv_b"][l] + cproj
  f, g = jnp.split(h, 2, axis=-1)
  return jnp.tanh(f) * jax.nn.sigmoid(g)


def _decode(w, logits, decode: str):
  if logits.shape[-1] == 1:
    return logits[..., 0]
  if decode == "argmax":
    return w["class_centers"][jnp.argmax(logits, axis=-1)]
  return jax.nn.softmax(logits, axis=-1) @ w["class_centers"]


def initial_state(w, c, *, arch: dict) -> dict:
  """The state after an endless run of silence at conditioning `c`.

  Offline inference zero-pads the clip's start; on constant input every layer's activation is
  constant, so each queue starts filled with that layer's response to silence.
  """
  c = jnp.asarray(c, jnp.float32)
  k, ch = arch["kernel_size"], arch["channels"]
  h = jnp.asarray(w["input_b"])
  queues = []
  for l, s in enumerate(shrinks(arch)):
    queues.append(jnp.broadcast_to(h, (s, ch)))
    summed = jnp.sum(w["conv_w"][l].reshape(k, ch, 2 * ch), axis=0)
    f, g = jnp.split(h @ summed + w["conv_b"][l] + c @ w["cond_w"][l], 2)
    h = h + (jnp.tanh(f) * jax.nn.sigmoid(g)) @ w["res_w"][l] + w["res_b"][l]
  return {"queues": tuple(queues), "c_from": c, "c_to": c, "ramp_pos": jnp.int32(0)}


def stream_step(w, state: dict, block, c, *, arch: dict, smoothing: int, decode: str):
  """(state, block [B], c [D]) -> (state, audio [B]); B is static under jit."""
  B = block.shape[0]
  k = arch["kernel_size"]
  c = jnp.asarray(c, jnp.float32)
  c_from, alpha, pos = _ramp(state, c, B, smoothing)
  p_from = jnp.einsum("d,ldo->lo", c_from, w["cond_w"])
  p_to = jnp.einsum("d,ldo->lo", c, w["cond_w"])
  if INPUT_GAIN in w:  # the gain's exponent is linear in c: ramped like the layers' projections
    g_from, g_to = c_from @ w[INPUT_GAIN], c @ w[INPUT_GAIN]
    block = block * jnp.exp((1.0 - alpha[:, 0]) * g_from + alpha[:, 0] * g_to)
  # --- layers
  h = block[:, None] * w["input_w"] + w["input_b"]
  skips = 0.0
  queues = []
  for l, (d, q) in enumerate(zip(arch["dilations"], state["queues"])):
    cat = jnp.concatenate([q, h], axis=0)
    taps = jnp.concatenate([cat[j * d : j * d + B] for j in range(k)], axis=-1)
    z = _gate(w, l, taps, (1.0 - alpha) * p_from[l] + alpha * p_to[l])
    queues.append(cat[B:])
    skips = skips + z @ w["skip_w"][l] + w["skip_b"][l]
    h = h + z @ w["res_w"][l] + w["res_b"][l]
  y = jax.nn.relu(jax.nn.relu(skips) @ w["head1_w"] + w["head1_b"]) @ w["head2_w"] + w["head2_b"]
  new_state = {
    "queues": tuple(queues),
    "c_from": c_from,
    "c_to": c,
    "ramp_pos": jnp.minimum(pos + B, max(smoothing, 1)).astype(jnp.int32),
  }
  return new_state, _decode(w, y, decode)


# ---------------------------------------------------------------- the streamer
class Streamer:
  """A jitted block-by-block streamer for one model and one block size.

    s = Streamer(model, block_size=64)
    state = s.init(c)
    for block in blocks:                  # each exactly block_size samples
      state, out = s(state, block, c)     # c may change between blocks; it is ramped

  Output lags input by `s.latency` samples (the model's lookahead; 0 for a causal model).
  """

  def __init__(
    self,
    model,
    block_size: int,
    *,
    smoothing: int = DEFAULT_SMOOTHING,
    decode: str = "expected_value",
  ):
    if int(block_size) < 1:
      raise AmpSpaceError(f"Streamer: block_size must be >= 1, got {block_size}")
    if decode not in DECODES:
      raise AmpSpaceError(f"Streamer: unknown decode {decode!r}; known: {DECODES}")
    if int(smoothing) < 0:
      raise AmpSpaceError(f"Streamer: smoothing must be >= 0 samples, got {smoothing}")
    self.arch, weights = arrays_of(model)
    self.weights = jax.tree.map(jnp.asarray, weights)
    self.block_size = int(block_size)
    self.smoothing = int(smoothing)
    self.latency = latency(self.arch)
    self._step = jax.jit(
      functools.partial(stream_step, arch=self.arch, smoothing=self.smoothing, decode=decode),
      donate_argnums=(1,),
    )
    self._init = jax.jit(functools.partial(initial_state, arch=self.arch))

  @property
  def cond_dim(self) -> int:
    return self.arch["cond_dim"]

  def init(self, c) -> dict:
    return self._init(self.weights, self._cond(c))

  def __call__(self, state: dict, block, c):
    block = jnp.asarray(block, jnp.float32)
    if block.shape != (self.block_size,):
      raise AmpSpaceError(
        f"Streamer: block has shape {tuple(block.shape)}, expected ({self.block_size},)"
      )
    return self._step(self.weights, state, block, self._cond(c))

  def _cond(self, c):
    c = jnp.asarray(c, jnp.float32)
    if c.shape != (self.cond_dim,):
      raise AmpSpaceError(
        f"Streamer: conditioning vector has shape {tuple(c.shape)}, expected ({self.cond_dim},)"
      )
    return c

  def run(self, di: np.ndarray, c, *, changes: dict[int, np.ndarray] | None = None) -> np.ndarray:
    """The whole signal streamed block by block, aligned like offline inference.

    `changes` maps a block index to a new conditioning vector applied from that block on.
    The tail is zero-padded to whole blocks (plus the lookahead) and trimmed again.
    """
    di = np.asarray(di, np.float32)
    n = len(di)
    total = n + self.latency
    n_blocks = -(-total // self.block_size)
    x = np.pad(di, (0, n_blocks * self.block_size - n))
    state = self.init(c)
    outs = []
    for i in range(n_blocks):
      if changes and i in changes:
        c = changes[i]
      state, y = self(state, x[i * self.block_size : (i + 1) * self.block_size], c)
      outs.append(y)
    return np.asarray(jnp.concatenate(outs))[self.latency : self.latency + n]


# ---------------------------------------------------------------- recurrent baselines
def _ramp(state: dict, c, B: int, smoothing: int):
  """(c_from, alpha [B, 1], new ramp_pos): the shared knob-ramp bookkeeping."""
  pos = state["ramp_pos"]
  if smoothing <= 0:
    return c, jnp.ones((B, 1), jnp.float32), pos
  now = state["c_from"] + (state["c_to"] - state["c_from"]) * jnp.minimum(pos / smoothing, 1.0)
  changed = jnp.any(c != state["c_to"])
  c_from = jnp.where(changed, now, state["c_from"])
  pos = jnp.where(changed, 0, pos)
  return c_from, jnp.clip((pos + 1 + jnp.arange(B)) / smoothing, 0.0, 1.0)[:, None], pos


def _recurrent_net_scan(model, x, c_seq, carry):
  """RecurrentNet.scan with a per-sample conditioning c_seq [1, L, D] (for ramped knobs)."""
  from ampspace.models.rnn import run_dilated

  h, new_carry = x, []
  for layer, cr in zip(model.layers, carry):
    x_proj = layer.w_in(h)
    if layer.w_cond is not None:
      x_proj = x_proj + layer.w_cond(c_seq)
    cr, h = run_dilated(layer.cell, layer.w_hh[...], cr, x_proj, layer.dilation)
    new_carry.append(cr)
  if model.head_hidden is not None:
    h = jax.nn.relu(model.head_hidden(h))
  return model.head(h), tuple(new_carry)


def recurrent_step(
  graphdef, params, state: dict, block, c, *, smoothing: int, decode: str, centers
):
  """One block through a recurrent baseline, carrying its state. RNN/LSTM/dilated LSTM ramp the
  conditioning per sample; SampleRNN, whose tiers take one vector per call, per block (the
  ramp's value at the block's middle)."""
  from flax import nnx

  model = nnx.merge(graphdef, params)
  B = block.shape[0]
  c = jnp.asarray(c, jnp.float32)
  c_from, alpha, pos = _ramp(state, c, B, smoothing)
  x = block[None, :, None]
  if hasattr(model, "layers"):
    c_seq = ((1.0 - alpha) * c_from + alpha * c)[None]
    out, carry = _recurrent_net_scan(model, x, c_seq, state["carry"])
  else:
    a = alpha[B // 2]
    out, carry = model.scan(x, ((1.0 - a) * c_from + a * c)[None], state["carry"])
  w = {"class_centers": centers}
  new_state = {
    "carry": carry,
    "c_from": c_from,
    "c_to": c,
    "ramp_pos": jnp.minimum(pos + B, max(smoothing, 1)).astype(jnp.int32),
  }
  return new_state, _decode(w, out[0], decode)


class RecurrentStreamer(Streamer):
  """Streams the recurrent baselines (models with `initial_carry` and `scan`).

  The state is the model's own carry. It starts as offline inference does: from the initial
  carry through `warmup` samples of silence (rounded up to the model's chunk multiple). Block
  sizes must be multiples of `chunk_multiple` (the dilated LSTM's largest dilation,
  SampleRNN's top frame).
  """

  def __init__(
    self,
    model,
    block_size: int,
    *,
    smoothing: int = DEFAULT_SMOOTHING,
    decode: str = "expected_value",
  ):
    from flax import nnx

    if decode not in DECODES:
      raise AmpSpaceError(f"Streamer: unknown decode {decode!r}; known: {DECODES}")
    if int(smoothing) < 0:
      raise AmpSpaceError(f"Streamer: smoothing must be >= 0 samples, got {smoothing}")
    multiple = int(getattr(model, "chunk_multiple", 1))
    if int(block_size) < 1 or int(block_size) % multiple:
      raise AmpSpaceError(
        f"Streamer: block_size {block_size} must be a positive multiple of "
        f"{multiple} for {type(model).__name__}"
      )
    self.block_size, self.smoothing, self.latency = int(block_size), int(smoothing), 0
    self.warmup = model.context[0] + (-model.context[0] % multiple)
    self.graphdef, self.params = nnx.split(model)
    first = model.layers[0] if hasattr(model, "layers") else model.tiers[0]
    self._cond_dim = 0 if first.w_cond is None else int(first.w_cond.kernel.shape[0])
    k = model.num_classes
    centers = jnp.asarray(mulaw.class_centers(k), jnp.float32) if k > 1 else None
    self._carry0 = model.initial_carry(1)
    step = functools.partial(
      recurrent_step, self.graphdef, smoothing=self.smoothing, decode=decode, centers=centers
    )
    self._step_fn = jax.jit(step, donate_argnums=(1,))

    def init(params, c):
      state = {"carry": self._carry0, "c_from": c, "c_to": c, "ramp_pos": jnp.int32(0)}
      if self.warmup:
        state, _ = step(params, state, jnp.zeros(self.warmup, jnp.float32), c)
      return state

    self._init = jax.jit(init)

  @property
  def cond_dim(self) -> int:
    return self._cond_dim

  def init(self, c) -> dict:
    return self._init(self.params, self._cond(c))

  def __call__(self, state: dict, block, c):
    block = jnp.asarray(block, jnp.float32)
    if block.shape != (self.block_size,):
      raise AmpSpaceError(
        f"Streamer: block has shape {tuple(block.shape)}, expected ({self.block_size},)"
      )
    return self._step_fn(self.params, state, block, self._cond(c))


# ---------------------------------------------------------------- model families
ARRAYS_OF = {"Wave2WaveNet": wave2wavenet_arrays}


def arrays_of(model) -> tuple[dict, dict[str, np.ndarray]]:
  name = type(model).__name__
  if name not in ARRAYS_OF:
    raise AmpSpaceError(f"export and the NumPy runtime support {sorted(ARRAYS_OF)}; got {name}")
  return ARRAYS_OF[name](model)


def make_streamer(model, block_size: int, **kwargs) -> Streamer:
  """The streamer for any wave-to-wave model: Wave2WaveNet, or a recurrent baseline."""
  if type(model).__name__ in ARRAYS_OF:
    return Streamer(model, block_size, **kwargs)
  if hasattr(model, "scan") and hasattr(model, "initial_carry"):
    return RecurrentStreamer(model, block_size, **kwargs)
  raise AmpSpaceError(
    f"streaming supports Wave2WaveNet and the recurrent baselines (models with "
    f"scan/initial_carry); got {type(model).__name__}"
  )
