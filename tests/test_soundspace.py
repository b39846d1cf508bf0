"""Soundspace tools: encoding, nearest-neighbour recipes, persistence, plots, latent walks."""

from __future__ import annotations

import os

import numpy as np
import pytest
from flax import nnx

from ampspace import soundspace
from ampspace.di import karplus
from ampspace.errors import AmpSpaceError
from ampspace.models.vae import MelVAE


@pytest.fixture(scope="module")
def model():
  return MelVAE(num_frames=16, channels=(16, 16, 32, 32), hidden=64, rngs=nnx.Rngs(0))


def record(i: int, device: str, gain: float) -> dict:
  y = np.tanh(gain * karplus.phrase(i, 0.3)) * 0.7
  return {
    "output": np.round(y * 32767).astype(np.int16),
    "device": device.encode(),
    "knob_names": np.array([b"gain", b"bass"], dtype=object),
    "knob_values": np.array([gain, 5.0], np.float32),
    "clip_id": f"clip{i}".encode(),
  }


@pytest.fixture(scope="module")
def space(model):
  source = [record(i, ("amp_a", "amp_b")[i % 2], float(1 + i)) for i in range(6)]
  return soundspace.SoundSpace.from_source(model, source, progress=False), source


def test_encode_audio_shapes(model):
  x = karplus.phrase(0, 0.3)
  means = soundspace.encode_audio(model, x)
  frames = 1 + len(x) // 256
  assert means.shape == (-(-frames // 16), 3)
  np.testing.assert_array_equal(means, soundspace.encode_audio(model, x))
  assert soundspace.embedding(means).shape == (3,)


def test_nearest_names_device_and_knobs(model, space):
  space, source = space
  assert space.embeddings.shape == (6, 3)
  query = source[3]["output"].astype(np.float32) / 32767.0
  best = space.nearest_to_audio(model, query, k=3)
  assert best[0].entry.clip_id == "clip3" and best[0].distance < 1e-5
  assert best[0].entry.recipe() == "amp_b with gain=4, bass=5"
  assert best[0].distance <= best[1].distance <= best[2].distance
  only_a = space.nearest_to_audio(model, query, k=2, device="amp_a")
  assert {m.entry.device for m in only_a} == {"amp_a"}
  with pytest.raises(AmpSpaceError, match="no indexed sound"):
    space.nearest(np.zeros(3), device="amp_z")
  with pytest.raises(AmpSpaceError, match="dimensions"):
    space.nearest(np.zeros(2))


def test_save_and_load(space, tmp_path):
  space, _ = space
  path = str(tmp_path / "index.npz")
  space.save(path)
  back = soundspace.SoundSpace.load(path)
  np.testing.assert_array_equal(back.embeddings, space.embeddings)
  assert back.entries == space.entries
  with pytest.raises(AmpSpaceError, match="not found"):
    soundspace.SoundSpace.load(str(tmp_path / "missing.npz"))


def test_latent_plots(space, tmp_path):
  space, _ = space
  for color_by in ("device", "knob:gain"):
    for dims in (2, 3):
      path = soundspace.latent_plot(
        space, str(tmp_path / f"{color_by}_{dims}.png"), color_by=color_by, dims=dims
      )
      assert os.path.getsize(path) > 1000
  with pytest.raises(AmpSpaceError, match="no indexed sound has a knob"):
    soundspace.latent_plot(space, str(tmp_path / "x.png"), color_by="knob:treble")
  with pytest.raises(AmpSpaceError, match="color_by"):
    soundspace.latent_plot(space, str(tmp_path / "x.png"), color_by="colour")


def test_walk_smoothness_of_a_straight_even_walk():
  a, b = np.zeros((10, 4)), np.ones((10, 4))
  walk = [a + t * (b - a) for t in np.linspace(0, 1, 5)]
  s = soundspace.walk_smoothness(walk)
  assert s["evenness"] == pytest.approx(1.0) and s["path_ratio"] == pytest.approx(1.0)
  jumpy = [a, a, a, b, b]  # all the change in one step
  assert soundspace.walk_smoothness(jumpy)["evenness"] == pytest.approx(4.0)
  detour = [a, 2 * b, b]
  assert soundspace.walk_smoothness(detour)["path_ratio"] == pytest.approx(3.0)


def test_latent_walk_and_decoding(model):
  z_a, z_b = np.zeros((2, 3)), np.ones((2, 3))
  walk = soundspace.latent_walk(model, z_a, z_b, num_frames_total=20, steps=3)
  assert len(walk) == 3 and walk[0].shape == (20, 256)
  np.testing.assert_allclose(walk[0], soundspace.decode_log_mel(model, z_a, 20), atol=1e-6)
  np.testing.assert_allclose(walk[-1], soundspace.decode_log_mel(model, z_b, 20), atol=1e-6)
  audio = soundspace.decode_audio_from_latents(model, z_a, 4000, n_iter=2, method="pinv")
  assert audio.shape == (4000,) and np.all(np.isfinite(audio))
  with pytest.raises(AmpSpaceError, match="steps"):
    soundspace.latent_walk(model, z_a, z_b, 20, steps=1)
