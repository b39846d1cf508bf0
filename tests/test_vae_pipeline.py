"""The mel-window Grain pipeline: windows equal whole-clip frames, determinism, checkpointable state."""

from __future__ import annotations

import numpy as np
import pytest

from ampspace.audio import spectral
from ampspace.data import mel_pipeline
from ampspace.di import karplus
from ampspace.errors import AmpSpaceError

SPEC = mel_pipeline.MelSpec(num_frames=16)


def record(seed: int, seconds: float = 0.5, device_id: int = 1, gain: float = 0.5) -> dict:
  """An amp_space-like record: int16 PCM audio and numeric labels."""
  y = np.tanh(4 * karplus.phrase(seed, seconds)) * 0.8
  knobs = np.zeros(4, np.float32)
  knobs[0] = gain
  return {
    "output": np.round(y * 32767).astype(np.int16),
    "device_id": np.int32(device_id),
    "knobs": knobs,
    "knob_mask": np.array([1, 0, 0, 0], np.float32),
  }


@pytest.mark.parametrize("start", [0, 3, 40, 80])
def test_window_equals_the_same_frames_of_the_whole_clip(start):
  y = np.asarray(record(0)["output"], np.float32) / 32767.0
  whole = spectral.log_mel(y).T  # [frames, mels]
  win = mel_pipeline.log_mel_window(y, start, SPEC)
  assert win.shape == (16, 256)
  n = min(16, len(whole) - start)
  np.testing.assert_allclose(win[:n], whole[start : start + n], atol=2e-5)
  # frames whose analysis window lies wholly past the clip's end are silence: log1p(0) = 0
  beyond = [k for k in range(16) if (start + k) * SPEC.hop - SPEC.n_fft // 2 >= len(y)]
  assert all(np.all(win[k] == 0.0) for k in beyond)
  if start == 80:
    assert beyond


def test_split_and_join_windows_round_trip():
  m = np.random.default_rng(0).random((37, 256)).astype(np.float32)
  w = mel_pipeline.split_windows(m, 16)
  assert w.shape == (3, 16, 256)
  np.testing.assert_array_equal(mel_pipeline.join_windows(w, 37), m)
  assert np.all(w[2, 5:] == 0)
  assert (
    SPEC.frames_of(len(record(0)["output"]))
    == spectral.log_mel(np.zeros(len(record(0)["output"]), np.float32)).shape[1]
  )


def _batches(source, n, seed=0):
  it = iter(mel_pipeline.train_dataset(source, SPEC, batch_size=2, seed=seed, read_threads=1))
  return it, [next(it) for _ in range(n)]


def test_batches_are_deterministic_and_resumable():
  source = [record(i, device_id=1 + i % 2) for i in range(5)]
  _, a = _batches(source, 4)
  _, b = _batches(source, 4)
  assert a[0]["mel"].shape == (2, 16, 256) and a[0]["device_id"].shape == (2,)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["mel"], y["mel"])
  _, c = _batches(source, 1, seed=1)
  assert not np.array_equal(a[0]["mel"], c[0]["mel"])
  # Grain's iterator state: restoring it after batch 2 replays batches 3 and 4
  it, _ = _batches(source, 2)
  state = it.get_state()
  fresh = iter(mel_pipeline.train_dataset(source, SPEC, batch_size=2, seed=0, read_threads=1))
  fresh.set_state(state)
  np.testing.assert_array_equal(next(fresh)["mel"], a[2]["mel"])
  np.testing.assert_array_equal(next(fresh)["mel"], a[3]["mel"])


def test_fixed_batch_and_empty_source():
  source = [record(i) for i in range(3)]
  b1 = mel_pipeline.fixed_batch(source, SPEC, 8)
  b2 = mel_pipeline.fixed_batch(source, SPEC, 8)
  assert b1["mel"].shape == (3, 16, 256)
  np.testing.assert_array_equal(b1["mel"], b2["mel"])
  assert mel_pipeline.fixed_batch([], SPEC, 8) is None
  with pytest.raises(AmpSpaceError, match="empty"):
    mel_pipeline.train_dataset([], SPEC, batch_size=2, seed=0)
