"""GCC-PHAT latency estimation: exact lags through distortion and filtering, bounds, trimming."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from ampspace.audio import alignment
from ampspace.di import karplus
from ampspace.errors import AmpSpaceError


def _delay(x: np.ndarray, lag: int) -> np.ndarray:
  """out[n] = x[n - lag], same length, zeros shifted in (a late or early recording)."""
  out = np.zeros_like(x)
  if lag >= 0:
    out[lag:] = x[: len(x) - lag]
  else:
    out[:lag] = x[-lag:]
  return out


def _heavy_amp(x: np.ndarray) -> np.ndarray:
  """Very high gain, asymmetric clipping, then a cab-like band-pass: a hard case.

  The band-pass is zero-phase (filtfilt), so the only delay is the one the test adds.
  """
  y = np.tanh(80.0 * x + 0.3) - np.tanh(0.3)
  b, a = scipy.signal.butter(2, [90, 4000], btype="bandpass", fs=44100)
  return scipy.signal.filtfilt(b, a, y)


@pytest.mark.parametrize("lag", [0, 1, 3, 37, -5, 900])
def test_gcc_phat_finds_exact_lag_through_heavy_distortion(lag):
  di = karplus.phrase(seed=3, seconds=1.0)
  out = _delay(_heavy_amp(di), lag)
  est = alignment.estimate_latency([(di, out)], max_lag=2048)
  assert est.lag == lag
  assert est.confidence > 5


def test_estimate_over_several_clips_of_a_setting():
  rng = np.random.default_rng(0)
  pairs = []
  for seed in range(4):
    di = karplus.phrase(seed=seed, seconds=0.5)
    out = _delay(_heavy_amp(di), 2) + 1e-3 * rng.standard_normal(len(di))
    pairs.append((di, out))
  est = alignment.estimate_latency(pairs, max_lag=512)
  assert (est.lag, est.num_clips) == (2, 4)


def test_lag_on_the_bound_is_an_error():
  di = karplus.phrase(seed=1, seconds=0.5)
  with pytest.raises(AmpSpaceError, match="beyond the bound"):
    alignment.estimate_latency([(di, _delay(di, 150))], max_lag=100, where="amp/clip.wav")


def test_no_pairs_is_an_error():
  with pytest.raises(AmpSpaceError, match="no usable clip"):
    alignment.estimate_latency([], where="x")


def test_gcc_phat_lag_grid_and_bad_input():
  di = np.random.default_rng(0).standard_normal(1000)
  c = alignment.gcc_phat(di, _delay(di, 4), max_lag=10)
  assert c.shape == (21,) and int(np.argmax(c)) - 10 == 4
  with pytest.raises(AmpSpaceError):
    alignment.gcc_phat(np.zeros((2, 3)), di)


@pytest.mark.parametrize("lag", [3, -3, 0])
def test_apply_latency_lines_up_output_with_di(lag):
  di = np.arange(100, dtype=np.float64)
  out = _delay(di * 2.0, lag)
  d, o, offset = alignment.apply_latency(di, out, lag)
  assert len(d) == len(o) == 100 - abs(lag)
  inside = slice(abs(lag), None) if lag < 0 else slice(None)
  np.testing.assert_array_equal(
    o[inside][: len(d) - abs(lag)], 2.0 * d[inside][: len(d) - abs(lag)]
  )
  assert offset == max(0, -lag) and d[0] == offset


# ---------------------------------------------------------------- measured latency
# Devices as real amps are: causal, minimum-phase filters around a nonlinearity. Unlike
# `_heavy_amp` (zero-phase), their own group delay moves the GCC-PHAT peak off zero.
def _min_phase_amp(x: np.ndarray, polarity: float = 1.0) -> np.ndarray:
  b, a = scipy.signal.butter(2, 700, btype="highpass", fs=44100)
  y = np.tanh(12.0 * scipy.signal.lfilter(b, a, x) + 0.2) - np.tanh(0.2)
  b, a = scipy.signal.butter(4, 3500, fs=44100)  # a cabinet-like low-pass, minimum-phase
  return polarity * 0.5 * scipy.signal.lfilter(b, a, y)


def _fractional_delay(x: np.ndarray, delay: float) -> np.ndarray:
  """Linear interpolation between whole-sample delays: causal, as a real chain is."""
  whole, frac = int(np.floor(delay)), delay - np.floor(delay)
  return (1 - frac) * _delay(x, whole) + frac * _delay(x, whole + 1)


def _capture(delay: float, polarity: float = 1.0, blip_at: int = 4000, noise: float = 1e-5):
  """A re-amped DI file: quiet, a blip, quiet, music; output late by `delay`, with a 24-bit
  interface's noise floor (-100 dBFS)."""
  rng = np.random.default_rng(1)
  di = np.concatenate([np.zeros(8000), karplus.phrase(seed=5, seconds=0.5)])
  di[blip_at] = 0.5
  out = _fractional_delay(_min_phase_amp(di, polarity), delay)
  return di, out + noise * rng.standard_normal(len(out))


@pytest.mark.parametrize("delay", [0, 1, 7, 128, 3.5, 64.25, 12.9])
@pytest.mark.parametrize("polarity", [1.0, -1.0])
def test_blip_latency_is_the_delay_rounded_down(delay, polarity):
  di, out = _capture(delay, polarity)
  assert alignment.blip_latency(di, out, 4000, where="cap.wav") == int(np.floor(delay))


def test_music_correlation_follows_group_delay_not_latency():
  # Why the music estimate is opt-in: on a zero-latency minimum-phase amp it is not 0.
  di, out = _capture(0)
  est = alignment.estimate_latency([(di[8000:], out[8000:])], max_lag=256)
  assert est.lag != 0
  assert alignment.blip_latency(di, out, 4000) == 0


def test_blip_latency_errors_name_the_file():
  di, out = _capture(3)
  with pytest.raises(AmpSpaceError, match="cap.wav: no calibration blip at DI sample 3000"):
    alignment.blip_latency(di, out, 3000, where="cap.wav")
  with pytest.raises(AmpSpaceError, match="cap.wav: the output shows no response"):
    alignment.blip_latency(di, 0 * out, 4000, where="cap.wav")
  with pytest.raises(AmpSpaceError, match="cap.wav: blip_at 9999999 leaves no room"):
    alignment.blip_latency(di, out, 9999999, where="cap.wav")


@pytest.mark.parametrize("delay", [0, 2, 31, 4.5, 200.75])
@pytest.mark.parametrize("polarity", [1.0, -1.0])
def test_loopback_latency_is_the_interface_delay(delay, polarity):
  di = karplus.phrase(seed=9, seconds=0.5)
  rng = np.random.default_rng(2)
  loop = polarity * 0.7 * _fractional_delay(di, delay) + 1e-4 * rng.standard_normal(len(di))
  assert alignment.loopback_latency(di, loop, 512) == int(np.floor(delay))


def test_loopback_latency_rejects_an_unrelated_file():
  di = karplus.phrase(seed=9, seconds=0.5)
  with pytest.raises(AmpSpaceError, match="loop.wav: the loopback peaks at"):
    alignment.loopback_latency(di, _delay(di, -40), 512, where="loop.wav")
