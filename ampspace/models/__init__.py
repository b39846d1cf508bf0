"""Models. `ALL_MODELS` maps a config's `model.name` to its constructor (a plain dict registry).

Every model takes the conditioning dimension first and keyword options after, and shares one
interface: `model(x [B, T + receptive_field - 1, 1], c [B, C]) -> [B, T, num_classes]` with
properties `receptive_field` and `context` (left, right); recurrent models define their left
context as a warm-up whose outputs are discarded.
"""

from __future__ import annotations

from ampspace.errors import AmpSpaceError
from ampspace.models import layer_array_wavenet, wave2wavenet
from ampspace.models.layer_array_wavenet import LayerArrayWaveNet
from ampspace.models.rnn import RNN, LSTM, DilatedLSTM
from ampspace.models.sample_rnn import SampleRNN
from ampspace.models.vae import MelVAE
from ampspace.models.wave2wavenet import Wave2WaveNet

ALL_MODELS = {
  "wave2wavenet": Wave2WaveNet,
  "layer_array_wavenet": LayerArrayWaveNet,
  "rnn": RNN,
  "lstm": LSTM,
  "dilated_lstm": DilatedLSTM,
  "sample_rnn": SampleRNN,
  "vae": MelVAE,  # not wave-to-wave: MelVAE(*, n_mels, num_frames, ...), trainers/vae.py builds it
}


def get_model_cls(name: str):
  if name not in ALL_MODELS:
    raise AmpSpaceError(f"unknown model {name!r}; known models: {sorted(ALL_MODELS)}")
  return ALL_MODELS[name]


# Models whose output polarity can be inverted exactly (fine-tuning's init_polarity=match).
INVERTERS = {
  Wave2WaveNet: wave2wavenet.with_inverted_output,
  LayerArrayWaveNet: layer_array_wavenet.with_inverted_output,
}


def with_inverted_output(model):
  """`model` with its output negated, y(x) -> -y(x) (in place), for the models that allow it."""
  invert = INVERTERS.get(type(model))
  if invert is None:
    raise AmpSpaceError(
      f"cannot invert the output of a {type(model).__name__}; "
      f"models that can: {sorted(c.__name__ for c in INVERTERS)}"
    )
  return invert(model)
