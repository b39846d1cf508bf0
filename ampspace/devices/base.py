"""The Device interface: every amp, pedal, compressor or plugin the project can render through.

A device has identity (name, brand, type, source), knob specs, fixed attributes (the paper's
Table 2: tube type, transistor, bias, ...), and `process(di, knobs, sample_rate)`, which
returns float32 mono audio of the DI's length, aligned to it (any latency compensated).
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import Mapping

import numpy as np

from ampspace import SAMPLE_RATE
from ampspace.audio.wav_io import check_signal
from ampspace.errors import AmpSpaceError

DEVICE_TYPES = (
  "amp",
  "preamp",
  "overdrive",
  "distortion",
  "fuzz",
  "compressor",
  "eq",
  "boost",
  "cabinet",
  "other",
)
SOURCES = ("synthetic", "real")


@dataclasses.dataclass(frozen=True)
class Knob:
  """A control. Native devices use a 0..10 dial like a real amp; plugins keep their own range."""

  name: str
  default: float = 5.0
  minimum: float = 0.0
  maximum: float = 10.0
  taper: str = "linear"  # "linear" or "log": how the dial maps to the underlying parameter

  def check(self, value: float, device: str) -> float:
    value = float(value)
    if not math.isfinite(value):
      raise AmpSpaceError(f"device {device!r}: knob {self.name!r} is not finite ({value})")
    if value < self.minimum - 1e-9 or value > self.maximum + 1e-9:
      raise AmpSpaceError(
        f"device {device!r}: knob {self.name!r}={value} is outside [{self.minimum}, {self.maximum}]"
      )
    return value

  def normalise(self, value: float) -> float:
    """Position of the dial in [0, 1] (the conditioning vector's knob value)."""
    span = self.maximum - self.minimum
    return 0.0 if span == 0 else (float(value) - self.minimum) / span

  def fraction(self, value: float) -> float:
    """The dial position after the taper, in [0, 1]: what DSP code uses as the parameter."""
    f = self.normalise(value)
    if self.taper == "log":  # audio-taper pot: ~10% at half rotation
      return (10.0 ** (2.0 * f) - 1.0) / 99.0
    return f


class Device(abc.ABC):
  """Base class. Subclasses set the class attributes and implement `_process`."""

  name: str = ""
  brand: str = "amp-space"
  device_type: str = "other"
  source: str = "synthetic"
  knobs: tuple[Knob, ...] = ()
  attributes: Mapping[str, str] = {}
  sample_rate: int = SAMPLE_RATE
  latency_samples: int = 0  # measured and already compensated inside process()
  # True: `_process` gets the validated float32 DI itself (native devices convert block by
  # block inside their cached loop, saving two whole-clip conversion passes); False: a float64
  # copy.
  takes_float32: bool = False

  @property
  def knob_names(self) -> tuple[str, ...]:
    return tuple(k.name for k in self.knobs)

  @property
  def defaults(self) -> dict[str, float]:
    return {k.name: k.default for k in self.knobs}

  def resolve(self, knobs: Mapping[str, float] | None) -> dict[str, float]:
    """Full settings: defaults overridden by `knobs`; unknown names and bad values are errors."""
    specs = {k.name: k for k in self.knobs}
    settings = self.defaults
    for name, value in (knobs or {}).items():
      if name not in specs:
        raise AmpSpaceError(
          f"device {self.name!r} has no knob {name!r}; its knobs are {sorted(specs)}"
        )
      settings[name] = specs[name].check(value, self.name)
    return settings

  def process(
    self, di: np.ndarray, knobs: Mapping[str, float] | None = None, sample_rate: int = SAMPLE_RATE
  ) -> np.ndarray:
    if sample_rate != self.sample_rate:
      raise AmpSpaceError(
        f"device {self.name!r}: sample rate {sample_rate} Hz, expected {self.sample_rate} Hz"
      )
    di = check_signal(di, name=f"input to device {self.name!r}")
    settings = self.resolve(knobs)
    x = di if self.takes_float32 else di.astype(np.float64)
    out = np.asarray(self._process(x, settings), dtype=np.float32)
    assert out.shape == di.shape, (self.name, out.shape, di.shape)
    return out

  @abc.abstractmethod
  def _process(self, di: np.ndarray, settings: dict[str, float]) -> np.ndarray:
    """DSP on a mono DI (float64, or float32 with `takes_float32`) with fully resolved,
    validated settings."""

  def describe(self) -> dict:
    """The annotation fields that describe this device (the paper's device columns)."""
    return {
      "device": self.name,
      "brand": self.brand,
      "device_type": self.device_type,
      "source": self.source,
      "attributes": dict(self.attributes),
      "knobs": [dataclasses.asdict(k) for k in self.knobs],
    }
