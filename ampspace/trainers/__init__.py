"""Trainers: one `train_and_evaluate(config, workdir)` per model family, in a plain dict registry."""

from __future__ import annotations

from ampspace.errors import AmpSpaceError

TRAINERS = {
  "wave2wavenet": "ampspace.trainers.wave2wavenet",
  "vae": "ampspace.trainers.vae",
}


def get_trainer(name: str):
  import importlib

  if name not in TRAINERS:
    raise AmpSpaceError(f"unknown trainer {name!r}; known trainers: {sorted(TRAINERS)}")
  return importlib.import_module(TRAINERS[name]).train_and_evaluate
