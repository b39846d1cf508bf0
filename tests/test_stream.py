"""Streaming inference equals offline inference, block by block, and ramps knob changes."""

from __future__ import annotations

import numpy as np
import pytest
from flax import nnx

from ampspace import conditioning as cond
from ampspace.runtime import inference, stream
from ampspace.errors import AmpSpaceError
from ampspace.models.wave2wavenet import Wave2WaveNet

D = cond.conditioning_dim()


def small_w2w(causal: bool = True, num_classes: int = 256, seed: int = 0) -> Wave2WaveNet:
  # depth 8, dilations 1..64 twice-ish: receptive field 255, small enough to compile quickly
  return Wave2WaveNet(
    D,
    depth=8,
    channels=6,
    max_dilation=64,
    num_classes=num_classes,
    causal=causal,
    rngs=nnx.Rngs(seed),
  )


def offline(model, di, c, chunk: int = 16384):
  graphdef, params = nnx.split(model)
  return inference.run_clip(
    inference.make_apply(graphdef, params), di, c, model.context, chunk=chunk
  )


def signal(n: int, seed: int = 0) -> np.ndarray:
  rng = np.random.default_rng(seed)
  t = np.arange(n) / 44100
  return (0.5 * np.sin(2 * np.pi * 220 * t) + 0.1 * rng.standard_normal(n)).astype(np.float32)


def cond_vector(seed: int = 1) -> np.ndarray:
  return np.random.default_rng(seed).uniform(size=D).astype(np.float32)


@pytest.mark.parametrize("block", [32, 2048])
def test_wave2wavenet_stream_equals_offline(block):
  model = small_w2w()
  di, c = signal(3001), cond_vector()  # 3001: not a multiple of any block size
  y = stream.Streamer(model, block).run(di, c)
  np.testing.assert_allclose(y, offline(model, di, c), atol=1e-5)


def test_regression_head_and_lookahead_model_stream_equal_offline():
  model = small_w2w(causal=False, num_classes=1)
  di, c = signal(1000), cond_vector()
  s = stream.Streamer(model, 64)
  assert s.latency == model.context[1] > 0
  np.testing.assert_allclose(s.run(di, c), offline(model, di, c), atol=1e-5)


def input_gain_w2w() -> Wave2WaveNet:
  """small_w2w's layout with model.input_gain, its gain weights drawn (they start at zero)."""
  model = Wave2WaveNet(
    D, depth=8, channels=6, max_dilation=64, num_classes=1, input_gain=True, rngs=nnx.Rngs(4)
  )
  model.input_gain.kernel[...] = np.random.default_rng(2).normal(size=(D, 1)).astype(np.float32)
  return model


def test_input_gain_model_streams_like_offline_and_ramps_its_gain():
  model = input_gain_w2w()
  di, a, b = signal(4000), cond_vector(1), cond_vector(2)
  arch, w = stream.arrays_of(model)
  assert arch["input_gain"] and w[stream.INPUT_GAIN].shape == (D,)
  assert abs(float(a @ w[stream.INPUT_GAIN] - b @ w[stream.INPUT_GAIN])) > 0.5  # gains differ
  s = stream.Streamer(model, 64)
  np.testing.assert_allclose(s.run(di, a), offline(model, di, a), atol=1e-5)
  # a knob change at block 10: once the ramp (1024) and the receptive field (255) have passed,
  # the output is the model's at the new setting, so the gain followed the knobs too
  y = s.run(di, a, changes={10: b})
  settled = 640 + stream.DEFAULT_SMOOTHING + model.receptive_field
  np.testing.assert_allclose(y[settled:], offline(model, di, b)[settled:], atol=1e-5)
  assert np.abs(y[700:900] - offline(model, di, a)[700:900]).max() > 1e-3  # still ramping


def test_initial_state_is_the_response_to_silence():
  """Streaming a block of zeros from the initial state leaves the state unchanged."""
  model = small_w2w()
  s = stream.Streamer(model, 256)
  c = cond_vector()
  state = s.init(c)
  before = [np.asarray(q) for q in state["queues"]]
  state, _ = s(state, np.zeros(256, np.float32), c)
  for q0, q1 in zip(before, state["queues"]):
    np.testing.assert_allclose(np.asarray(q1), q0, atol=1e-6)


def click_case(smoothing: int):
  """A model whose output level depends strongly on the knobs, fed a slow sine, with a step
  change of knobs and device at block 16 (the 256-class head's output moves ~1e-3 per
  sample on it, the knob step ~5e-2); returns (output, first changed sample)."""
  model = small_w2w(seed=3)
  for layer in model.layers:
    layer.cond.kernel[...] = layer.cond.kernel[...] * 30.0
  c0, m0 = cond.knob_vector({"gain": 0.1, "bass": 0.5})
  c1, m1 = cond.knob_vector({"gain": 0.9, "bass": 0.5})
  attrs = np.zeros(len(cond.ATTRIBUTE_VOCAB), np.int32)
  a = cond.conditioning_vector(c0, m0, np.int32(1), attrs).astype(np.float32)
  b = cond.conditioning_vector(c1, m1, np.int32(7), attrs).astype(np.float32)
  block, change = 64, 16
  t = np.arange(64 * block) / 44100
  di = (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
  s = stream.Streamer(model, block, smoothing=smoothing)
  return s.run(di, a, changes={change: b}), change * block


def test_knob_step_is_ramped_without_a_click():
  hard, at = click_case(smoothing=0)
  smooth, at2 = click_case(smoothing=1024)
  assert at == at2
  jumps_h, jumps_s = np.abs(np.diff(hard)), np.abs(np.diff(smooth))
  # the signal's own sample-to-sample movement, before the change and after the ramp settled
  calm = max(jumps_h[300 : at - 2].max(), jumps_h[at + 1024 + 300 :].max())
  # unsmoothed: the knob step is a jump far beyond anything the signal does (a click)
  assert jumps_h[at - 1] > 20 * calm
  # smoothed: no sample-to-sample step anywhere around the change exceeds the signal's own
  assert jumps_s[at - 2 : at + 1100].max() <= 1.5 * calm
  # and once the ramp and the receptive field have passed, both give the same output
  np.testing.assert_allclose(smooth[at + 1024 + 300 :], hard[at + 1024 + 300 :], atol=1e-5)


def test_streamer_rejects_bad_blocks_and_conditioning():
  model = small_w2w()
  s = stream.Streamer(model, 32)
  state = s.init(cond_vector())
  with pytest.raises(AmpSpaceError, match="block"):
    s(state, np.zeros(31, np.float32), cond_vector())
  with pytest.raises(AmpSpaceError, match="conditioning"):
    s(state, np.zeros(32, np.float32), np.zeros(3, np.float32))
  with pytest.raises(AmpSpaceError, match="block_size"):
    stream.Streamer(model, 0)
  with pytest.raises(AmpSpaceError, match="decode"):
    stream.Streamer(model, 32, decode="mode")


# ---------------------------------------------------------------- recurrent baselines
def recurrent_models():
  from ampspace.models.rnn import LSTM, RNN, DilatedLSTM
  from ampspace.models.sample_rnn import SampleRNN

  return {
    "rnn": RNN(D, hidden=8, warmup=64, rngs=nnx.Rngs(0)),
    "lstm": LSTM(D, hidden=8, warmup=64, rngs=nnx.Rngs(0)),
    "dilated_lstm": DilatedLSTM(D, hidden=8, num_layers=3, warmup=64, rngs=nnx.Rngs(0)),
    "sample_rnn": SampleRNN(
      D, frame_sizes=(16, 4), hidden=8, mlp_channels=8, warmup=64, rngs=nnx.Rngs(0)
    ),
  }


@pytest.mark.parametrize(
  "name", [pytest.param("rnn", marks=pytest.mark.slow), "lstm", "dilated_lstm", "sample_rnn"]
)
def test_recurrent_stream_equals_offline(name):
  model = recurrent_models()[name]
  di, c = signal(1024), cond_vector()
  ref = offline(model, di, c, chunk=1024)  # one chunk: the whole clip from the initial carry
  s = stream.make_streamer(model, 64)
  assert isinstance(s, stream.RecurrentStreamer)
  np.testing.assert_allclose(s.run(di, c), ref, atol=1e-5)


def test_recurrent_block_must_be_a_chunk_multiple():
  model = recurrent_models()["sample_rnn"]
  with pytest.raises(AmpSpaceError, match="multiple of 16"):
    stream.make_streamer(model, 40)
