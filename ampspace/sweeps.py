"""Knob sweeps: lists of settings for a device, deterministic for a seed.

A sweep spec is a string, so it fits on a command line and in a folder name:

  default                 the device's defaults
  one_knob:KNOB           KNOB over the paper's 1..10 grid, the others at their defaults
  one_knob:KNOB=2,5,8     KNOB at the listed dial values
"""

from __future__ import annotations

import numpy as np

from ampspace.devices.base import Device
from ampspace.errors import AmpSpaceError

PAPER_GRID = tuple(float(v) for v in range(1, 11))  # every knob discretised 1..10


def dial_to_value(knob, dial: float) -> float:
  """The paper's 1..10 dial position -> the knob's own range (identity for native 0..10 knobs)."""
  return knob.minimum + (knob.maximum - knob.minimum) * (dial / 10.0)


def one_knob(device: Device, knob: str, dials=PAPER_GRID) -> list[dict[str, float]]:
  specs = {k.name: k for k in device.knobs}
  if knob not in specs:
    raise AmpSpaceError(f"sweep: device {device.name!r} has no knob {knob!r}; "
                        f"its knobs are {sorted(specs)}")
  return [{**device.defaults, knob: dial_to_value(specs[knob], d)} for d in dials]


def parse_sweep(spec: str, device: Device, seed: int = 0) -> list[dict[str, float]]:
  """Turns a sweep spec string into a list of full settings dicts."""
  del seed  # the skeleton's sweeps are all deterministic grids
  kind, _, arg = spec.partition(":")
  if kind == "default":
    return [device.defaults]
  if kind == "one_knob":
    knob, _, dials = arg.partition("=")
    if not knob:
      raise AmpSpaceError(f"sweep {spec!r}: expected one_knob:KNOB or one_knob:KNOB=v1,v2")
    values = PAPER_GRID
    if dials:
      try:
        values = tuple(float(v) for v in dials.split(","))
      except ValueError:
        raise AmpSpaceError(f"sweep {spec!r}: dial values must be numbers") from None
    return one_knob(device, knob, values)
  raise AmpSpaceError(f"unknown sweep kind {kind!r} in {spec!r}; known: default, one_knob")


def sweep_dirname(spec: str) -> str:
  """A folder-safe name for a sweep spec."""
  return "".join(c if c.isalnum() or c in "._-" else "_" for c in spec)


def rng_for(seed: int, *keys: int) -> np.random.Generator:
  return np.random.default_rng([seed, *keys])
