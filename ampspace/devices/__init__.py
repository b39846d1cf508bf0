"""The device zoo. `ALL_DEVICES` maps a name to a zero-argument constructor (a plain dict registry)."""

from __future__ import annotations

from typing import Callable

from ampspace.devices.base import Device, Knob
from ampspace.devices.tube_amp import TubeAmp
from ampspace.errors import AmpSpaceError

ALL_DEVICES: dict[str, Callable[[], Device]] = {
    "tube_amp": TubeAmp,
}


def get_device(name: str) -> Device:
  if name not in ALL_DEVICES:
    raise AmpSpaceError(f"unknown device {name!r}; known devices: {sorted(ALL_DEVICES)}")
  return ALL_DEVICES[name]()


__all__ = ["ALL_DEVICES", "Device", "Knob", "get_device"]
