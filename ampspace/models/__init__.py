"""Models. `ALL_MODELS` maps a config's `model.name` to its class (a plain dict registry)."""

from __future__ import annotations

from ampspace.errors import AmpSpaceError
from ampspace.models.vae import MelVAE
from ampspace.models.wave2wavenet import Wave2WaveNet

ALL_MODELS = {
    "wave2wavenet": Wave2WaveNet,
    "vae": MelVAE,
}


def get_model_cls(name: str):
  if name not in ALL_MODELS:
    raise AmpSpaceError(f"unknown model {name!r}; known models: {sorted(ALL_MODELS)}")
  return ALL_MODELS[name]
