"""Griffin-Lim inversion of log-mels: round-trip quality bound, iterations, determinism, errors.

Bound: the mel -> audio -> mel spectral convergence at 64 iterations measured 0.044-0.090 on
this file's 0.75 s signals (a plucked phrase, the same through tanh distortion, a harmonic
tone) and 0.052-0.089 on 2 s ones, against 0.69-0.73 for the same magnitudes with random phase
(`python -m ampspace.audio.griffin_lim 0.75` and `... 2` print the tables). We assert <= 0.25.
"""

from __future__ import annotations

import numpy as np
import pytest

from ampspace import SAMPLE_RATE
from ampspace.audio import griffin_lim as gl
from ampspace.audio import spectral
from ampspace.di import karplus
from ampspace.errors import AmpSpaceError

ROUND_TRIP_BOUND = 0.25  # spectral convergence at 64 iterations


def _signals():  # the same as griffin_lim.round_trip_table's
  di = karplus.phrase(3, 0.75)
  t = np.arange(int(0.75 * SAMPLE_RATE)) / SAMPLE_RATE
  harmonic = (
    0.3 * np.sin(2 * np.pi * 196 * t)
    + 0.15 * np.sin(2 * np.pi * 392 * t)
    + 0.05 * np.sin(2 * np.pi * 1176 * t)
  )
  return {"pluck": di, "distorted": 0.5 * np.tanh(8 * di), "harmonic": harmonic.astype(np.float32)}


@pytest.mark.parametrize("name", ["pluck", "distorted", "harmonic"])
def test_round_trip_within_bound_and_better_with_more_iterations(name):
  x = _signals()[name]
  sc_random = gl.round_trip_convergence(x, n_iter=0, method="pinv")
  sc_8 = gl.round_trip_convergence(x, n_iter=8, method="pinv")
  sc_64 = gl.round_trip_convergence(x, n_iter=64, method="pinv")
  assert sc_64 <= ROUND_TRIP_BOUND, (name, sc_64)
  assert sc_64 <= sc_8 + 1e-3, (name, sc_8, sc_64)
  assert sc_64 < 0.5 * sc_random, (name, sc_random, sc_64)


def test_nnls_magnitude_within_bound():
  x = _signals()["distorted"]
  assert gl.round_trip_convergence(x, n_iter=32, method="nnls") <= ROUND_TRIP_BOUND


def test_output_length_and_determinism():
  x = _signals()["pluck"]
  m = spectral.log_mel(x)
  a = gl.log_mel_to_audio(m, n_iter=4, method="pinv", length=len(x), seed=7)
  b = gl.log_mel_to_audio(m, n_iter=4, method="pinv", length=len(x), seed=7)
  c = gl.log_mel_to_audio(m, n_iter=4, method="pinv", seed=7)
  assert a.shape == x.shape and a.dtype == np.float32
  np.testing.assert_array_equal(a, b)
  assert len(c) == (m.shape[1] - 1) * gl.HOP


def test_spectral_convergence_basics():
  m = spectral.log_mel(_signals()["harmonic"])
  assert gl.spectral_convergence(m, m) == 0.0
  assert gl.spectral_convergence(m, np.zeros_like(m)) == pytest.approx(1.0)
  # a decoded log-mel may dip below zero: it is read as zero power, not as a negative one
  assert gl.spectral_convergence(np.zeros_like(m), -np.ones_like(m)) == 0.0


def test_bad_input_raises():
  with pytest.raises(AmpSpaceError, match="shape"):
    gl.log_mel_to_audio(np.zeros(20), n_iter=2)
  with pytest.raises(AmpSpaceError, match="NaN"):
    gl.log_mel_to_audio(np.full((256, 20), np.nan), n_iter=2)
  with pytest.raises(AmpSpaceError, match="n_iter"):
    gl.log_mel_to_audio(np.zeros((256, 20)), n_iter=-1)
  with pytest.raises(AmpSpaceError, match="method"):
    gl.log_mel_to_audio(np.zeros((256, 20)), n_iter=2, method="magic")
