"""The device zoo. `ALL_DEVICES` maps a name to a zero-argument constructor (a plain dict registry).

Native devices are always present. Guitarix LV2 devices (`gx_*`) are registered when their
bundle is installed (Debian's guitarix-lv2); the LV2 host itself is built on first use. Any
other plugin can be named directly: `lv2:<plugin URI>` or `vst3:<path to .vst3>`.
"""

from __future__ import annotations

import functools
from typing import Callable

from ampspace.devices import lv2, vst3
from ampspace.devices.base import Device, Knob
from ampspace.devices.cabinet import Cabinet
from ampspace.devices.compressor import Compressor
from ampspace.devices.distortion import Distortion
from ampspace.devices.eq import BaxandallEQ, ParametricEQ
from ampspace.devices.fuzz import BigMuff, Fuzz
from ampspace.devices.overdrive import Overdrive
from ampspace.devices.tube_amp import TubeAmp
from ampspace.errors import AmpSpaceError

_p = functools.partial

NATIVE_DEVICES: dict[str, Callable[[], Device]] = {
  # amps: preamp tube, power tube, tone-stack topology, rectifier, cabinet as attributes
  "tube_amp": _p(TubeAmp, "tube_amp"),
  "tube_amp_fender": _p(TubeAmp, "tube_amp_fender", "12AX7", "6L6", "fender", "tube"),
  "tube_amp_mesa": _p(
    TubeAmp, "tube_amp_mesa", "12AX7", "6L6", "mesa", "solid_state", preamp_gain=2.0
  ),
  "tube_amp_el84": _p(TubeAmp, "tube_amp_el84", "12AX7", "EL84", "fender", "tube", "2x12"),
  "tube_amp_12at7": _p(TubeAmp, "tube_amp_12at7", "12AT7", "KT88", "marshall", "solid_state"),
  "tube_amp_4x12": _p(TubeAmp, "tube_amp_4x12", "12AX7", "EL34", "marshall", "solid_state", "4x12"),
  # overdrives: clipping diodes as attributes
  "ts_overdrive": _p(Overdrive, "ts_overdrive", "silicon"),
  "od_asymmetric": _p(Overdrive, "od_asymmetric", "asymmetric"),
  "od_mosfet": _p(Overdrive, "od_mosfet", "mosfet"),
  # distortions
  "rat_distortion": _p(Distortion, "rat_distortion", "silicon"),
  "rat_led": _p(Distortion, "rat_led", "led"),
  "rat_germanium": _p(Distortion, "rat_germanium", "germanium"),
  # fuzzes
  "fuzz_face": _p(Fuzz, "fuzz_face", "germanium"),
  "fuzz_face_si": _p(Fuzz, "fuzz_face_si", "silicon"),
  "gated_fuzz": _p(Fuzz, "gated_fuzz", "silicon", gated=True),
  "big_muff": _p(BigMuff, "big_muff"),
  # dynamics and EQ
  "compressor": _p(Compressor, "compressor", "feedforward"),
  "compressor_feedback": _p(Compressor, "compressor_feedback", "feedback"),
  "eq_parametric": ParametricEQ,
  "eq_baxandall": BaxandallEQ,
  # cabinets
  "cab_4x12": _p(Cabinet, "cab_4x12", "4x12"),
  "cab_2x12": _p(Cabinet, "cab_2x12", "2x12"),
  "cab_1x12": _p(Cabinet, "cab_1x12", "1x12"),
}


def _plugin_devices() -> dict[str, Callable[[], Device]]:
  return {name: _p(lv2.guitarix_device, name) for name in lv2.available_guitarix()}


ALL_DEVICES: dict[str, Callable[[], Device]] = {**NATIVE_DEVICES, **_plugin_devices()}


def get_device(name: str) -> Device:
  """A device by registry name, or a plugin by `lv2:URI` / `vst3:PATH`."""
  if name.startswith("lv2:"):
    return lv2.Lv2Device(name[4:])
  if name.startswith("vst3:"):
    return vst3.Vst3Device.from_path(name[5:])
  if name not in ALL_DEVICES:
    raise AmpSpaceError(
      f"unknown device {name!r}; known devices: {sorted(ALL_DEVICES)} (or lv2:URI, vst3:PATH)"
    )
  return ALL_DEVICES[name]()


__all__ = ["ALL_DEVICES", "NATIVE_DEVICES", "Device", "Knob", "get_device"]
