"""Losses and decoders against brute-force references (loops, SciPy)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal
import scipy.stats

from ampspace import losses
from ampspace.audio import metrics as audio_metrics
from ampspace.audio import mulaw


def _softmax(z):
  e = np.exp(z - z.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


@pytest.fixture
def batch():
  rng = np.random.default_rng(0)
  k = 16
  logits = rng.normal(size=(3, 5, k)).astype(np.float32) * 2
  classes = rng.integers(0, k, size=(3, 5)).astype(np.int32)
  return logits, classes


def test_emd_squared_matches_brute_force(batch):
  logits, classes = batch
  p = _softmax(logits.astype(np.float64))
  k = logits.shape[-1]
  per = np.zeros(classes.shape)
  for idx in np.ndindex(classes.shape):
    for j in range(k):
      per[idx] += (sum(p[idx][: j + 1]) - (1.0 if j >= classes[idx] else 0.0)) ** 2
  got = float(losses.emd_squared_loss(jnp.asarray(logits), jnp.asarray(classes)))
  assert got == pytest.approx(per.mean(), rel=1e-5)


def test_emd_equals_scipy_wasserstein(batch):
  logits, classes = batch
  p = _softmax(logits.astype(np.float64))
  k = logits.shape[-1]
  ref = np.mean(
    [
      scipy.stats.wasserstein_distance(np.arange(k), [classes[i]], u_weights=p[i])
      for i in np.ndindex(classes.shape)
    ]
  )
  brute = np.mean(
    [
      sum(abs(sum(p[i][: j + 1]) - (j >= classes[i])) for j in range(k))
      for i in np.ndindex(classes.shape)
    ]
  )
  got = float(losses.emd_loss(jnp.asarray(logits), jnp.asarray(classes)))
  assert got == pytest.approx(ref, rel=1e-5)
  assert got == pytest.approx(brute, rel=1e-5)


def test_emd_is_zero_for_a_confident_correct_prediction():
  classes = jnp.asarray([3, 7])
  logits = jax.nn.one_hot(classes, 10) * 1e4
  assert float(losses.emd_squared_loss(logits, classes)) == pytest.approx(0.0, abs=1e-6)
  assert float(losses.emd_loss(logits, classes)) == pytest.approx(0.0, abs=1e-6)
  # ...and grows with the distance of a wrong confident guess (CE would not see the distance).
  near = float(losses.emd_loss(jax.nn.one_hot(jnp.asarray([4, 8]), 10) * 1e4, classes))
  far = float(losses.emd_loss(jax.nn.one_hot(jnp.asarray([9, 0]), 10) * 1e4, classes))
  assert near == pytest.approx(1.0, rel=1e-4) and far > 5 * near


def test_cross_entropy_matches_brute_force(batch):
  logits, classes = batch
  p = _softmax(logits.astype(np.float64))
  ref = np.mean([-np.log(p[i][classes[i]]) for i in np.ndindex(classes.shape)])
  got = float(losses.cross_entropy_loss(jnp.asarray(logits), jnp.asarray(classes)))
  assert got == pytest.approx(ref, rel=1e-5)


def test_class_weights_follow_inverse_count_power():
  counts = np.array([100, 10, 1, 0, 50])
  for sigma in (0.0, 0.5, 1.0):
    w = losses.class_weights(counts, sigma)
    seen = counts > 0
    expected = (1.0 / counts[seen]) ** sigma
    # Proportional to (1/N)^σ on the seen classes, normalised to expected weight 1.
    np.testing.assert_allclose(w[seen] / w[0], expected / expected[0], rtol=1e-6)
    np.testing.assert_allclose(np.sum(counts / counts.sum() * w), 1.0, rtol=1e-6)
    assert w[3] == pytest.approx(w[seen].max())


def test_weighted_loss_uses_the_target_class_weight(batch):
  logits, classes = batch
  weights = np.linspace(0.5, 2.0, logits.shape[-1]).astype(np.float32)
  for fn in (losses.emd_squared_loss, losses.emd_loss, losses.cross_entropy_loss):
    per = np.asarray(
      jax.vmap(jax.vmap(lambda l, c: fn(l[None], c[None])))(
        jnp.asarray(logits), jnp.asarray(classes)
      )
    )
    got = float(fn(jnp.asarray(logits), jnp.asarray(classes), weights))
    assert got == pytest.approx(np.mean(per * weights[classes]), rel=1e-5)


def test_pre_emphasis_matches_lfilter():
  x = np.random.default_rng(1).normal(size=(2, 300)).astype(np.float32)
  ref = scipy.signal.lfilter([1.0, -0.85], [1.0], x, axis=-1)
  np.testing.assert_allclose(np.asarray(losses.pre_emphasis(jnp.asarray(x))), ref, atol=1e-6)


def test_esr_matches_numpy_metric_and_definition():
  rng = np.random.default_rng(2)
  target = rng.normal(size=(1, 1000)).astype(np.float32)
  pred = target + 0.1 * rng.normal(size=(1, 1000)).astype(np.float32)
  got = float(losses.esr_loss(jnp.asarray(pred), jnp.asarray(target)))
  assert got == pytest.approx(audio_metrics.esr(target[0], pred[0]), rel=1e-4)
  t, p = (scipy.signal.lfilter([1, -0.85], [1], v[0]) for v in (target, pred))
  assert got == pytest.approx(np.sum((t - p) ** 2) / np.sum(t**2), rel=1e-4)
  assert float(losses.esr_loss(jnp.asarray(target), jnp.asarray(target))) == 0.0


def test_mse():
  a, b = np.arange(6.0).reshape(2, 3), np.ones((2, 3))
  assert float(losses.mse_loss(jnp.asarray(a), jnp.asarray(b))) == pytest.approx(
    np.mean((a - b) ** 2)
  )


def test_mr_stft_zero_for_identical_positive_otherwise():
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.normal(size=(2, 4096)).astype(np.float32))
  assert float(losses.multi_resolution_stft_loss(x, x)) == pytest.approx(0.0, abs=1e-6)
  y = x + 0.05 * jnp.asarray(rng.normal(size=(2, 4096)).astype(np.float32))
  small = float(losses.multi_resolution_stft_loss(y, x))
  big = float(losses.multi_resolution_stft_loss(0.2 * y, x))
  assert 0 < small < big


def test_expected_value_and_argmax_decoders(batch):
  logits, _ = batch
  k = logits.shape[-1]
  centres = mulaw.class_centers(k)
  p = _softmax(logits.astype(np.float64))
  np.testing.assert_allclose(
    np.asarray(losses.expected_value_decode(jnp.asarray(logits))),
    (p * centres).sum(-1),
    rtol=1e-5,
    atol=1e-6,
  )
  np.testing.assert_allclose(
    np.asarray(losses.argmax_decode(jnp.asarray(logits))), centres[logits.argmax(-1)], atol=1e-6
  )


def test_decoders_invert_quantisation_for_confident_logits():
  x = np.linspace(-0.9, 0.9, 50).astype(np.float32)
  q = mulaw.quantize(x)
  logits = jax.nn.one_hot(jnp.asarray(q), 256) * 50.0
  for decode in (losses.expected_value_decode, losses.argmax_decode):
    np.testing.assert_allclose(np.asarray(decode(logits)), mulaw.dequantize(q), atol=1e-5)


def test_pooled_esr_is_total_error_over_total_energy_and_ignores_silent_windows():
  import scipy.signal

  rng = np.random.default_rng(3)
  target = rng.standard_normal((3, 256)).astype(np.float32)
  target[2] *= 1e-4  # a nearly silent window
  pred = target + 0.1 * rng.standard_normal((3, 256)).astype(np.float32)
  t = scipy.signal.lfilter([1.0, -0.85], [1.0], target, axis=-1)
  p = scipy.signal.lfilter([1.0, -0.85], [1.0], pred, axis=-1)
  expected = np.sum((t - p) ** 2) / np.sum(t**2)
  got = float(losses.pooled_esr(jnp.asarray(pred), jnp.asarray(target)))
  np.testing.assert_allclose(got, expected, rtol=1e-4)
  assert got < 0.05 < float(losses.esr_loss(jnp.asarray(pred), jnp.asarray(target)))
