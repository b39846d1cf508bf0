"""LV2 plugins as devices, through the project's own small C host (ampspace.devices.lv2host).

Each control input port becomes a knob (its range and default from the plugin's TTL; name =
the port symbol in lower case, or a rename where the symbol is cryptic such as Guitarix's
`fslider0_`). Ports that select a model (gx_amp's tube/tone-stack/cabinet model) are fixed
per registered variant and reported as attributes, as the paper's Table 2 does. An unknown
knob name is an error (Device.resolve), never silently ignored.

Guitarix devices (`gx_*`) are registered only when their bundle is installed
(apt: guitarix-lv2); `lv2:URI` names any other installed plugin.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
from typing import Mapping

import numpy as np

from ampspace import SAMPLE_RATE
from ampspace.devices import dsp
from ampspace.devices import latency as latency_mod
from ampspace.devices import lv2host
from ampspace.devices.base import Device, Knob
from ampspace.errors import AmpSpaceError

BLOCK = 512
PREROLL = 16 * BLOCK  # 8192 samples: see Lv2Device._run
_DC_BLOCK = dsp.sos(dsp.highpass(5.0, order=1))
LV2_DIRS = [d for d in os.environ.get("LV2_PATH", "").split(":") if d] + [
  os.path.expanduser("~/.lv2"),
  "/usr/local/lib/lv2",
  "/usr/lib/lv2",
  "/usr/lib/x86_64-linux-gnu/lv2",
  "/usr/lib/aarch64-linux-gnu/lv2",
]


@dataclasses.dataclass(frozen=True)
class PluginSpec:
  """How a registered plugin device is exposed: which ports are fixed, renamed, its identity."""

  uri: str
  bundle: str
  device_type: str
  rename: Mapping[str, str] = dataclasses.field(default_factory=dict)
  fixed: Mapping[str, float] = dataclasses.field(default_factory=dict)
  attributes: Mapping[str, str] = dataclasses.field(default_factory=dict)


_GX = "http://guitarix.sourceforge.net/plugins/"
_ON = {"BYPASS": 1.0}  # lv2:enabled designation: 1 = effect on
_GX_AMP_KNOBS = {
  "PreGain": "gain",
  "MasterGain": "master",
  "Distortion": "saturation",
  "Drive": "drive",
  "Middle": "mid",
  "Cabinet": "cabinet",
}


def _gx_amp(model: int, tone: int, cab: int, **attributes) -> PluginSpec:
  return PluginSpec(
    _GX + "gx_amp#GUITARIX",
    "gx_amp.lv2",
    "amp",
    _GX_AMP_KNOBS,
    {**_ON, "SCHEDULE": 1.0, "HIGHGAIN": 0.0, "model": model, "t_model": tone, "c_model": cab},
    attributes,
  )


GUITARIX: dict[str, PluginSpec] = {
  "gx_ts9": PluginSpec(
    _GX + "gxts9#ts9sim",
    "gxts9.lv2",
    "overdrive",
    {"fslider0_": "level", "fslider1_": "tone", "fslider2_": "drive"},
    _ON,
    {"clipping": "silicon", "transistor": "op_amp"},
  ),
  "gx_bossds1": PluginSpec(
    _GX + "gx_bossds1_#_bossds1_",
    "gx_bossds1.lv2",
    "distortion",
    {},
    _ON,
    {"clipping": "silicon", "transistor": "op_amp"},
  ),
  "gx_fuzzface": PluginSpec(
    _GX + "gx_fuzzface_#_fuzzface_", "gx_fuzzface.lv2", "fuzz", {}, {}, {"transistor": "germanium"}
  ),
  "gx_muff": PluginSpec(
    _GX + "gx_muff_#_muff_",
    "gx_muff.lv2",
    "fuzz",
    {},
    {},
    {"transistor": "silicon", "tone_stack": "big_muff"},
  ),
  "gx_jcm800pre": PluginSpec(
    _GX + "gx_jcm800pre_#_jcm800pre_",
    "gx_jcm800pre.lv2",
    "preamp",
    {"P6v": "gain", "Middle": "mid", "WET_DRY": "presence", "GAIN": "master"},
    {},
    {"preamp_tube": "ECC83", "tone_stack": "marshall"},
  ),
  "gx_compressor": PluginSpec(
    _GX + "gx_compressor#_compressor",
    "gx_compressor.lv2",
    "compressor",
    {},
    _ON,
    {"topology": "feedforward"},
  ),
  "gx_amp": _gx_amp(
    0, 1, 0, preamp_tube="12AX7", power_tube="none", tone_stack="fender", cabinet="4x12"
  ),
  "gx_amp_jcm800": _gx_amp(
    0, 4, 8, preamp_tube="12AX7", power_tube="none", tone_stack="marshall", cabinet="4x12"
  ),
  "gx_amp_ac30": _gx_amp(
    2, 8, 9, preamp_tube="12AT7", power_tube="none", tone_stack="vox", cabinet="2x12"
  ),
  "gx_amp_6v6": _gx_amp(
    14, 23, 6, preamp_tube="12AX7", power_tube="6V6", tone_stack="fender", cabinet="2x12"
  ),
}


def find_bundle(bundle: str) -> str | None:
  for d in LV2_DIRS:
    path = os.path.join(d, bundle)
    if os.path.isdir(path):
      return path
  return None


def available_guitarix() -> list[str]:
  """Registered Guitarix devices whose bundle is installed (no library is loaded to check)."""
  return [name for name, spec in GUITARIX.items() if find_bundle(spec.bundle)]


class Lv2Device(Device):
  """One instance of an LV2 plugin, reset before every render so renders are deterministic."""

  brand = "lv2"

  def __init__(self, uri: str, name: str | None = None, spec: PluginSpec | None = None):
    lib = lv2host.load()
    err = ctypes.create_string_buffer(1024)
    handle = lib.ah_open(uri.encode(), float(SAMPLE_RATE), BLOCK, err, len(err))
    if not handle:
      raise AmpSpaceError(err.value.decode() or f"cannot open LV2 plugin <{uri}>")
    self._lib, self._h = lib, handle
    spec = spec or PluginSpec(uri, "", "other")
    self.uri = uri
    buf = ctypes.create_string_buffer(256)
    lib.ah_plugin_name(handle, buf, len(buf))
    self.vst_name = buf.value.decode() or uri.rsplit("/", 1)[-1]
    self.name = name or "lv2_" + "".join(c if c.isalnum() else "_" for c in self.vst_name.lower())
    self.device_type = spec.device_type
    self.attributes = {
      **spec.attributes,
      **{f"port_{k}": str(v) for k, v in spec.fixed.items() if k not in ("BYPASS", "SCHEDULE")},
    }
    knobs, self._port_of = [], {}
    mn, mx, df = ctypes.c_float(), ctypes.c_float(), ctypes.c_float()
    known = set()
    for p in range(lib.ah_num_ports(handle)):
      kind = lib.ah_port_info(
        handle, p, buf, len(buf), ctypes.byref(mn), ctypes.byref(mx), ctypes.byref(df)
      )
      symbol = buf.value.decode()
      known.add(symbol)
      if lv2host.KINDS[kind] != "control_in":
        continue
      if symbol in spec.fixed:
        lib.ah_set_control(handle, p, float(spec.fixed[symbol]))
        continue
      lo, hi = float(mn.value), float(mx.value)
      default = float(df.value) if np.isfinite(df.value) else lo
      knob = Knob(spec.rename.get(symbol, symbol.lower()), min(max(default, lo), hi), lo, hi)
      knobs.append(knob)
      self._port_of[knob.name] = p
    unknown = set(spec.fixed) - known
    if unknown:
      raise AmpSpaceError(f"LV2 plugin <{uri}> has no port(s) {sorted(unknown)}")
    self.knobs = tuple(knobs)
    self.latency_samples = latency_mod.measure_latency(
      lambda x: self._run(x, self.defaults), where=f"LV2 plugin {self.name!r}"
    )

  def _run(self, x: np.ndarray, settings: Mapping[str, float]) -> np.ndarray:
    for name, value in settings.items():
      self._lib.ah_set_control(self._h, self._port_of[name], float(value))
    if self._lib.ah_reset(self._h) != 0:
      raise AmpSpaceError(f"LV2 plugin {self.name!r}: re-instantiation failed")
    # Pre-roll: a fresh instance is not settled at once: Guitarix pedals fade in from bypass
    # over a few thousand samples (with 2048 the dry path leaks through and gx_bossds1's
    # measured latency drops from 31 to 0), and gx_amp's worker switches models in the first
    # blocks. 8192 samples of silence first, so renders start from the settled state.
    x = np.concatenate([np.zeros(PREROLL, np.float32), np.asarray(x, np.float32)])
    out = np.empty_like(x)
    ptr = ctypes.POINTER(ctypes.c_float)
    self._lib.ah_process(self._h, x.ctypes.data_as(ptr), out.ctypes.data_as(ptr), len(x))
    return out[PREROLL:]

  def _process(self, di: np.ndarray, s: dict[str, float]) -> np.ndarray:
    out = latency_mod.run_compensated(
      lambda x: self._run(x, s), di.astype(np.float32), self.latency_samples
    )
    # Some models (ts9sim) leave a DC offset that a real pedal's output capacitor and any
    # audio interface's AC-coupled input would remove; do the same, at 5 Hz.
    return dsp.run_sos(_DC_BLOCK, out.astype(np.float64))

  def describe(self) -> dict:
    return {
      **super().describe(),
      "vst_name": self.vst_name,
      "uri": self.uri,
      "latency_samples": self.latency_samples,
    }

  def __del__(self):
    if getattr(self, "_h", None):
      self._lib.ah_close(self._h)
      self._h = None


def guitarix_device(name: str) -> Lv2Device:
  spec = GUITARIX[name]
  if not find_bundle(spec.bundle):
    raise AmpSpaceError(
      f"device {name!r}: LV2 bundle {spec.bundle} not found in {LV2_DIRS} "
      "(apt install guitarix-lv2)"
    )
  dev = Lv2Device(spec.uri, name, spec)
  dev.brand = "guitarix"
  return dev
