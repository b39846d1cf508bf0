"""Models: the shared interface, receptive fields, causality, conditioning, streaming carries."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ampspace.errors import AmpSpaceError
from ampspace.models import ALL_MODELS, get_model_cls
from ampspace.models.rnn import run_dilated
from ampspace.models.wave2wavenet import dilation_schedule, with_inverted_output

COND = 6
SMALL = {
  "wave2wavenet": dict(depth=5, channels=4, max_dilation=4),
  "layer_array_wavenet": dict(
    layer_arrays=(
      {"channels": 4, "head_size": 3, "dilations": (1, 2, 4)},
      {"channels": 3, "head_size": 1, "dilations": (1, 2)},
    )
  ),
  "rnn": dict(hidden=6, warmup=8),
  "lstm": dict(hidden=6, warmup=8, num_layers=2),
  "dilated_lstm": dict(hidden=6, warmup=8, num_layers=3),
  "sample_rnn": dict(hidden=6, mlp_channels=5, warmup=8, frame_sizes=(8, 2)),
}


def _model(name, **kw):
  return get_model_cls(name)(COND, **{**SMALL[name], **kw}, rngs=nnx.Rngs(0))


def _inputs(model, t, batch=2, seed=0):
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.uniform(-1, 1, (batch, t + model.receptive_field - 1, 1)).astype(np.float32))
  c = jnp.asarray(rng.uniform(0, 1, (batch, COND)).astype(np.float32))
  return x, c


def test_registry_covers_all_small_configs():
  assert set(SMALL) <= set(ALL_MODELS)
  with pytest.raises(AmpSpaceError, match="unknown model"):
    get_model_cls("transformer")


def test_paper_receptive_field_is_4093():
  assert dilation_schedule(20) == [2**i for i in range(10)] * 2
  abstract = lambda name, **kw: nnx.eval_shape(
    lambda: get_model_cls(name)(COND, **kw, rngs=nnx.Rngs(0))
  )
  m = abstract("wave2wavenet", depth=20, channels=2)
  assert m.receptive_field == 4093 and m.context == (4092, 0)
  assert abstract("layer_array_wavenet").receptive_field == 4093
  nc = abstract("wave2wavenet", depth=20, channels=2, causal=False)
  assert sum(nc.context) == 4092 and nc.context[1] > 0


@pytest.mark.parametrize("name", sorted(SMALL))
def test_interface_causality_and_conditioning(name):
  m = _model(name, num_classes=256)
  apply = jax.jit(lambda x, c: m(x, c))
  x, c = _inputs(m, 32)
  y = np.asarray(apply(x, c))
  assert y.shape == (2, 32, 256) and np.all(np.isfinite(y))
  assert m.context[0] + m.context[1] == m.receptive_field - 1
  # Conditioning reaches the output.
  assert not np.allclose(np.asarray(apply(x, c + 0.5)), y)
  # Causal: output t (input index t + left context) ignores later input.
  k = 20
  y2 = np.asarray(apply(x.at[:, m.context[0] + k :, :].set(0.3), c))
  np.testing.assert_allclose(y2[:, :k], y[:, :k], atol=1e-5)
  assert not np.allclose(y2[:, k:], y[:, k:])


@pytest.mark.parametrize("num_classes", [256, 1])
def test_inverted_output_is_the_negated_prediction(num_classes):
  from ampspace import losses

  m = _model("wave2wavenet", num_classes=num_classes)
  # A trained bias: with the init's zeros, windows the ReLU head silences tie every class.
  m.head2.bias.value = jnp.asarray(np.random.default_rng(1).normal(size=num_classes), jnp.float32)
  x, c = _inputs(m, 40)
  before = np.asarray(m(x, c))
  after = np.asarray(with_inverted_output(m)(x, c))
  if num_classes == 1:
    np.testing.assert_allclose(after, -before, rtol=1e-6, atol=1e-7)
    return
  for decode in losses.DECODERS.values():
    y, y_inv = np.asarray(decode(jnp.asarray(before))), np.asarray(decode(jnp.asarray(after)))
    assert np.abs(y).max() > 1e-3
    np.testing.assert_allclose(y_inv, -y, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dc_free", [False, True])
def test_layer_array_inverted_output_is_the_negated_prediction(dc_free):
  from ampspace import models

  m = _model("layer_array_wavenet", num_classes=1, dc_free=dc_free)
  last = m.arrays[-1].head_rechannel
  last.bias.value = jnp.asarray([0.3], jnp.float32)  # a DC the DC-free head removes
  x, c = _inputs(m, 40)
  before = np.asarray(m(x, c))
  assert np.abs(before).max() > 1e-4
  after = np.asarray(models.with_inverted_output(m)(x, c))
  np.testing.assert_allclose(after, -before, rtol=1e-5, atol=1e-7)


def test_only_invertible_models_invert():
  from ampspace import models

  with pytest.raises(AmpSpaceError, match="cannot invert the output of a RecurrentNet"):
    models.with_inverted_output(_model("lstm", num_classes=1))


@pytest.mark.parametrize("name", ["wave2wavenet", "layer_array_wavenet", "lstm"])
def test_regression_head(name):
  m = _model(name, num_classes=1)
  x, c = _inputs(m, 24)
  assert m(x, c).shape == (2, 24, 1)


@pytest.mark.parametrize("name", ["wave2wavenet", "layer_array_wavenet"])
def test_convolutional_receptive_field_is_exact(name):
  m = _model(name)
  x, c = _inputs(m, 16)
  r = m.receptive_field
  g = jax.grad(lambda x: m(x, c)[0, 5].sum())(x)
  nonzero = np.nonzero(np.asarray(g)[0, :, 0])[0]
  assert nonzero.min() == 5 and nonzero.max() == 5 + r - 1  # exactly inputs t .. t + R - 1


@pytest.mark.parametrize("kw", [{}, {"gated": True, "input_mixin": True}])
def test_dc_free_head_subtracts_the_response_to_silence(kw):
  """dc_free: silence in gives exactly silence out at every setting, and any input gives the
  plain model's output less its output on an all-zero input (run the slow way, at full length)."""
  plain = _model("layer_array_wavenet", num_classes=1, **kw)
  free = _model("layer_array_wavenet", num_classes=1, dc_free=True, **kw)
  x, c = _inputs(plain, 40)
  silent = jnp.zeros_like(x)
  offset = np.asarray(plain(silent, c))
  assert np.abs(offset).min() > 1e-3  # the plain model does answer silence with an offset
  response = np.asarray(plain.silence_response(c))[:, None, :]
  np.testing.assert_allclose(offset, np.broadcast_to(response, offset.shape), atol=1e-6)
  np.testing.assert_allclose(np.asarray(free(silent, c)), 0.0, atol=1e-6)
  np.testing.assert_allclose(np.asarray(free(x, c)), np.asarray(plain(x, c)) - offset, atol=1e-6)
  with pytest.raises(AmpSpaceError, match="dc_free needs a regression head"):
    _model("layer_array_wavenet", num_classes=8, dc_free=True)


def test_non_causal_wave2wavenet_looks_ahead():
  m = _model("wave2wavenet", causal=False)
  left, right = m.context
  x, c = _inputs(m, 16)
  g = np.asarray(jax.grad(lambda x: m(x, c)[0, 5].sum())(x))[0, :, 0]
  assert np.nonzero(g)[0].max() == 5 + left + right  # the sample `right` after its own


@pytest.mark.parametrize("name", ["rnn", "lstm", "dilated_lstm", "sample_rnn"])
def test_recurrent_scan_in_chunks_equals_one_call(name):
  m = _model(name)
  x, c = _inputs(m, 56)
  x = x[:, :64]
  full, _ = m.scan(x, c, m.initial_carry(2))
  parts, carry = [], m.initial_carry(2)
  for i in range(0, 64, 16):
    out, carry = m.scan(x[:, i : i + 16], c, carry)
    parts.append(out)
  np.testing.assert_allclose(np.concatenate(parts, 1), np.asarray(full), atol=1e-5)
  # __call__ is scan from the zero state with the warm-up outputs dropped.
  np.testing.assert_allclose(np.asarray(m(x, c)), np.asarray(full)[:, m.warmup :], atol=1e-5)


def test_dilated_recurrence_is_interleaved_plain_recurrences():
  rng = np.random.default_rng(0)
  h = 3
  w = jnp.asarray(rng.normal(size=(h, 4 * h)).astype(np.float32)) * 0.5
  xp = jnp.asarray(rng.normal(size=(1, 12, 4 * h)).astype(np.float32))
  zero = jnp.zeros((3, 1, h))
  _, got = run_dilated("lstm", w, (zero, zero), xp, 3)
  for r in range(3):  # sub-sequence r, r + 3, r + 6, ... is a plain LSTM of its own
    _, ref = run_dilated("lstm", w, (zero[:1], zero[:1]), xp[:, r::3], 1)
    np.testing.assert_allclose(np.asarray(got)[:, r::3], np.asarray(ref), atol=1e-6)


def test_bad_options_are_clear_errors():
  with pytest.raises(AmpSpaceError, match="cell"):
    get_model_cls("rnn")(COND, cell="gru", rngs=nnx.Rngs(0))
  with pytest.raises(AmpSpaceError, match="frame_sizes"):
    get_model_cls("sample_rnn")(COND, frame_sizes=(16, 5), rngs=nnx.Rngs(0))
  with pytest.raises(AmpSpaceError, match="head_size"):
    get_model_cls("layer_array_wavenet")(
      COND,
      layer_arrays=(
        {"channels": 4, "head_size": 2, "dilations": (1,)},
        {"channels": 3, "head_size": 1, "dilations": (1,)},
      ),
      rngs=nnx.Rngs(0),
    )


def test_layer_array_torch_init_matches_pytorch_bounds():
  """init="torch": every weight and bias uniform in ±1/sqrt(fan_in), as PyTorch's Conv1d."""
  from ampspace.models.layer_array_wavenet import LayerArrayWaveNet

  torch_like = LayerArrayWaveNet(2, init="torch", rngs=nnx.Rngs(0))
  flax_like = LayerArrayWaveNet(2, rngs=nnx.Rngs(0))
  conv = torch_like.arrays[0].layers[3].conv
  bound = 1 / np.sqrt(16 * 3)
  k = np.asarray(conv.kernel[...])
  assert np.abs(k).max() <= bound and np.abs(k).max() > 0.9 * bound
  assert np.isclose(k.std(), bound / np.sqrt(3), rtol=0.1)
  b = np.asarray(conv.bias[...])
  assert np.abs(b).max() <= bound and np.abs(b).max() > 0  # PyTorch biases are not zero
  k_flax = np.asarray(flax_like.arrays[0].layers[3].conv.kernel[...])
  assert np.isclose(k_flax.std() / k.std(), np.sqrt(3), rtol=0.15)
  with pytest.raises(AmpSpaceError, match="model.init"):
    LayerArrayWaveNet(2, init="xavier", rngs=nnx.Rngs(0))


def test_wave2wavenet_torch_init_reaches_every_layer_but_the_conditioning_rows():
  from ampspace.models.wave2wavenet import Wave2WaveNet

  m = Wave2WaveNet(3, depth=4, channels=8, max_dilation=8, init="torch", rngs=nnx.Rngs(0))
  for layer, fan_in in (
    (m.input, 1),
    (m.layers[2].conv, 8 * 3),
    (m.layers[2].skip, 8),
    (m.head2, m.head2.in_features),
  ):
    assert np.abs(np.asarray(layer.kernel[...])).max() <= 1 / np.sqrt(fan_in)
    assert np.abs(np.asarray(layer.bias[...])).max() > 0
  default = Wave2WaveNet(3, depth=4, channels=8, max_dilation=8, rngs=nnx.Rngs(0))
  assert np.all(np.asarray(default.layers[2].conv.bias[...]) == 0)  # Flax's zero biases
  assert np.allclose(m.layers[2].cond.kernel[...], default.layers[2].cond.kernel[...])


def test_wave2wavenet_input_gain_scales_the_di_by_the_conditioning():
  """input_gain starts at exactly 1 (the plain model's output), and a gain w . c acts as the DI
  scaled by exp(w . c)."""
  plain = _model("wave2wavenet", num_classes=1)
  gained = _model("wave2wavenet", num_classes=1, input_gain=True)
  x, c = _inputs(gained, 30)
  np.testing.assert_array_equal(np.asarray(gained(x, c)), np.asarray(plain(x, c)))
  w = np.zeros((COND, 1), np.float32)
  w[2] = 1.5
  gained.input_gain.kernel.value = jnp.asarray(w)
  scale = np.exp(1.5 * np.asarray(c)[:, 2])[:, None, None]
  np.testing.assert_allclose(
    np.asarray(gained(x, c)), np.asarray(plain(x * scale, c)), rtol=1e-5, atol=1e-6
  )
