"""Pedalboard plugins as devices: VST3 files through `pedalboard.load_plugin`, or any pedalboard
plugin object (its built-ins too) with a declared parameter table.

A VST3's float and boolean parameters become knobs (range from pedalboard's parameter
probing, default = the value at load); string-valued (menu) parameters are left at their
default and listed in `fixed_parameters`. Latency is measured with an impulse and removed.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

from ampspace import SAMPLE_RATE
from ampspace.devices import latency as latency_mod
from ampspace.devices.base import Device, Knob
from ampspace.errors import AmpSpaceError


def knobs_from_parameters(
  parameters: Mapping[str, Any], values: Mapping[str, Any]
) -> tuple[tuple[Knob, ...], list[str]]:
  """pedalboard `plugin.parameters` (name -> AudioProcessorParameter) -> (knobs, skipped names).

  float parameters keep their range; booleans become 0..1 knobs (>= 0.5 is on); others
  (string menus) are skipped. The default is the plugin's value when it was loaded.
  """
  knobs, skipped = [], []
  for name, param in parameters.items():
    kind = getattr(param, "type", float)
    if kind is bool:
      lo, hi = 0.0, 1.0
      default = 1.0 if bool(values.get(name, False)) else 0.0
    elif kind is float:
      lo, hi = float(param.min_value), float(param.max_value)
      default = float(values.get(name, lo))
    else:
      skipped.append(name)
      continue
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi < lo:
      skipped.append(name)
      continue
    knobs.append(Knob(name, min(max(default, lo), hi), lo, hi))
  return tuple(knobs), skipped


class PedalboardDevice(Device):
  """A pedalboard plugin object as a Device (mono in, mono out, 44.1 kHz)."""

  brand = "vst3"

  def __init__(
    self,
    plugin,
    name: str,
    knobs: tuple[Knob, ...],
    *,
    vst_name: str | None = None,
    device_type: str = "other",
    bools: tuple[str, ...] = (),
    attributes: Mapping[str, str] | None = None,
  ):
    self.plugin = plugin
    self.name = name
    self.vst_name = vst_name or type(plugin).__name__
    self.device_type = device_type
    self.knobs = knobs
    self._bools = set(bools)
    self.attributes = dict(attributes or {})
    self.latency_samples = latency_mod.measure_latency(
      lambda x: self._run(x, self.defaults), where=f"plugin {name!r}"
    )

  @classmethod
  def from_path(cls, path: str, name: str | None = None, device_type: str = "other"):
    """Loads a .vst3 with pedalboard; its parameters become knobs."""
    import pedalboard

    if not os.path.exists(path):
      raise AmpSpaceError(f"{path}: VST3 plugin not found")
    try:
      plugin = pedalboard.load_plugin(path)
    except Exception as e:  # pedalboard raises ImportError/RuntimeError variants
      raise AmpSpaceError(f"{path}: cannot load plugin ({e})") from None
    params = plugin.parameters
    knobs, _ = knobs_from_parameters(params, {k: getattr(plugin, k) for k in params})
    bools = tuple(k for k, p in params.items() if getattr(p, "type", float) is bool)
    stem = os.path.splitext(os.path.basename(path.rstrip("/")))[0]
    return cls(
      plugin,
      name or "vst3_" + "".join(c if c.isalnum() else "_" for c in stem.lower()),
      knobs,
      vst_name=getattr(plugin, "name", stem) or stem,
      device_type=device_type,
      bools=bools,
    )

  def _run(self, x: np.ndarray, settings: Mapping[str, float]) -> np.ndarray:
    for k, v in settings.items():
      setattr(self.plugin, k, bool(v >= 0.5) if k in self._bools else float(v))
    self.plugin.reset()
    y = self.plugin.process(np.asarray(x, np.float32)[None, :], SAMPLE_RATE, reset=True)
    y = np.asarray(y)
    return (y[0] if y.ndim == 2 else y)[: len(x)]

  def _process(self, di: np.ndarray, s: dict[str, float]) -> np.ndarray:
    return latency_mod.run_compensated(
      lambda x: self._run(x, s), di.astype(np.float32), self.latency_samples
    ).astype(np.float64)

  def describe(self) -> dict:
    return {
      **super().describe(),
      "vst_name": self.vst_name,
      "latency_samples": self.latency_samples,
    }


Vst3Device = PedalboardDevice
