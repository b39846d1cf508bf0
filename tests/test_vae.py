"""The mel VAE: shapes, the KL term and its annealing, and the ELBO falling on a tiny set."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from ampspace.data import mel_pipeline
from ampspace.di import karplus
from ampspace.errors import AmpSpaceError
from ampspace.models import get_model_cls
from ampspace.models import vae as vae_lib

SMALL = dict(num_frames=32, channels=(32, 32, 64, 64), hidden=128)


def test_registered():
  assert get_model_cls("vae") is vae_lib.MelVAE


def test_shapes_of_the_paper_model():
  # abstract evaluation: the paper-size model's shapes without paying for its arithmetic
  abstract = nnx.eval_shape(lambda: vae_lib.MelVAE(rngs=nnx.Rngs(0)))  # 256 mels, 64 frames
  graphdef, state = nnx.split(abstract)
  x = jax.ShapeDtypeStruct((3, 64, 256), jnp.float32)
  mean, logvar = jax.eval_shape(lambda st, x: nnx.merge(graphdef, st).encode(x), state, x)
  assert mean.shape == logvar.shape == (3, 3)
  assert abstract.enc_dense.out_features == 512  # the paper's 512-d representation
  assert len(abstract.enc_convs) == len(abstract.dec_convs) == 4
  recon, _, _ = jax.eval_shape(
    lambda st, x, k: nnx.merge(graphdef, st)(x, k), state, x, jax.random.key(0)
  )
  assert recon.shape == (3, 64, 256)
  z = jax.ShapeDtypeStruct((5, 3), jnp.float32)
  assert jax.eval_shape(lambda st, z: nnx.merge(graphdef, st).decode(z), state, z).shape == (
    5,
    64,
    256,
  )


def test_a_hidden_layer_for_each_factor():
  """factor_hidden=True: each latent factor has its own hidden units (the paper's "512 for
  each factor"); a factor's mean moves only with its own units, and the decoder reads each
  factor through its own units."""
  model = vae_lib.MelVAE(**SMALL, factor_hidden=True, rngs=nnx.Rngs(0))
  D, H = model.latent_dim, SMALL["hidden"]
  assert model.enc_dense.out_features == D * H and model.mean_w[...].shape == (D, H)
  assert model.dec_expand.in_features == D * H
  x = jax.random.uniform(jax.random.key(0), (2, 32, 256), maxval=4.0)
  mean, logvar = model.encode(x)
  assert mean.shape == logvar.shape == (2, D) and np.allclose(logvar, 0.0)  # zero-init head
  w = np.array(model.mean_w[...])
  w[1] = 0.0  # factor 1 loses its own units; the others keep theirs
  model.mean_w[...] = jnp.asarray(w)
  mean2, _ = model.encode(x)
  np.testing.assert_allclose(mean2[:, [0, 2]], mean[:, [0, 2]], rtol=1e-6)
  np.testing.assert_allclose(mean2[:, 1], model.mean_b[...][1], atol=1e-7)
  # the decoder reads every factor (through its own units)
  z = jnp.zeros((1, D))
  grads = jax.jacobian(lambda z: jnp.sum(model.decode(z) ** 2))(z + 0.3)
  assert model.decode(z).shape == (1, 32, 256) and np.all(np.abs(np.asarray(grads)) > 0)


def test_sampling_and_mean_paths():
  model = vae_lib.MelVAE(**SMALL, rngs=nnx.Rngs(0))
  x = jax.random.uniform(jax.random.key(0), (3, 32, 256), maxval=4.0)

  @nnx.jit
  def paths(model, x, key):
    mean, _ = model.encode(x)
    return mean, model(x, key), model(x)[0], model.decode(mean)

  mean, (recon, mean2, _), from_mean, decoded_mean = paths(model, x, jax.random.key(1))
  assert recon.shape == x.shape
  np.testing.assert_allclose(mean2, mean, rtol=1e-5, atol=1e-6)
  # without a key the reconstruction is decoded from the mean: deterministic
  np.testing.assert_allclose(from_mean, decoded_mean, rtol=1e-5, atol=1e-5)
  assert not np.allclose(recon, decoded_mean)  # with a key it is a sample


def test_bad_configuration_and_input_raise():
  with pytest.raises(AmpSpaceError, match="multiple of 16"):
    vae_lib.MelVAE(num_frames=40, rngs=nnx.Rngs(0))
  with pytest.raises(AmpSpaceError, match="channels"):
    vae_lib.MelVAE(channels=(8, 8), rngs=nnx.Rngs(0))
  model = nnx.eval_shape(lambda: vae_lib.MelVAE(**SMALL, rngs=nnx.Rngs(0)))
  with pytest.raises(AmpSpaceError, match="windows"):
    model.encode(jnp.zeros((1, 64, 256)))


def test_gaussian_kl_matches_closed_form():
  assert float(vae_lib.gaussian_kl(jnp.zeros(3), jnp.zeros(3))) == 0.0
  mean, logvar = jnp.array([1.0, -2.0, 0.5]), jnp.array([0.3, -0.7, 0.0])
  var = np.exp(np.asarray(logvar))
  expected = 0.5 * np.sum(var + np.asarray(mean) ** 2 - 1 - np.asarray(logvar))
  assert float(vae_lib.gaussian_kl(mean, logvar)) == pytest.approx(expected, rel=1e-6)


def test_kl_annealing_is_linear_then_constant():
  beta = lambda s: float(vae_lib.kl_beta(s, beta=1.0, warmup_steps=100, beta_start=0.0))
  assert beta(0) == 0.0 and beta(50) == pytest.approx(0.5) and beta(100) == 1.0
  assert beta(1000) == 1.0
  assert float(vae_lib.kl_beta(3, beta=0.2, warmup_steps=0)) == pytest.approx(0.2)


def tiny_windows(spec: mel_pipeline.MelSpec, n_clips: int = 4) -> np.ndarray:
  """Log-mel windows of a plucked phrase clean and through two strengths of clipping."""
  out = []
  for i in range(n_clips):
    di = karplus.phrase(10 + i, 1.0)
    for drive in (1.0, 4.0, 16.0):
      y = np.tanh(drive * di) / np.tanh(drive)
      m = mel_pipeline.clip_log_mel(y, spec)
      out.append(mel_pipeline.split_windows(m, spec.num_frames))
  return np.concatenate(out)


@pytest.mark.parametrize("factor_hidden", [False, True])
def test_elbo_falls_on_a_tiny_set(factor_hidden):
  """50 Adam steps on 72 windows; measured: whole-set ELBO 1837 -> ~1000 (ratio ~0.55)."""
  spec = mel_pipeline.MelSpec(num_frames=SMALL["num_frames"])
  data = jnp.asarray(tiny_windows(spec))
  model = vae_lib.MelVAE(**SMALL, factor_hidden=factor_hidden, rngs=nnx.Rngs(0))
  graphdef, params = nnx.split(model)
  whole_set = lambda p: float(
    vae_lib.elbo_terms(nnx.merge(graphdef, p), data, jax.random.key(1), 1.0)[1]["elbo"]
  )
  start = whole_set(params)
  tx = optax.adam(3e-3)
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, batch, i):
    beta = vae_lib.kl_beta(i, beta=1.0, warmup_steps=20)
    key = jax.random.fold_in(jax.random.key(0), i)
    (_, m), g = jax.value_and_grad(
      lambda p: vae_lib.elbo_terms(nnx.merge(graphdef, p), batch, key, beta), has_aux=True
    )(params)
    updates, opt_state = tx.update(g, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, m

  rng = np.random.default_rng(0)
  elbos = []
  for i in range(50):
    batch = data[rng.choice(len(data), 16, replace=False)]
    params, opt_state, m = step(params, opt_state, batch, i)
    elbos.append(float(m["elbo"]))
    assert np.isfinite(elbos[-1])
  assert np.mean(elbos[-5:]) < 0.85 * np.mean(elbos[:5]), elbos
  end = whole_set(params)
  assert end < 0.7 * start, (start, end)
