"""A tube amp: preamp gain stage with asymmetric triode-like saturation, tone stack, master."""

from __future__ import annotations

import numpy as np

from ampspace.devices import dsp
from ampspace.devices.base import Device, Knob


class TubeAmp(Device):
  name = "tube_amp"
  device_type = "amp"
  knobs = (Knob("gain", 5.0, taper="log"), Knob("bass"), Knob("mid"), Knob("treble"),
           Knob("master", 5.0))
  attributes = {"preamp_tube": "12AX7", "power_tube": "EL34", "tone_stack": "shelving"}

  def _process(self, di: np.ndarray, s: dict[str, float]) -> np.ndarray:
    x = dsp.apply(dsp.highpass(80.0), di)
    drive = 1.0 + 200.0 * Knob("gain", taper="log").fraction(s["gain"])
    x = dsp.oversampled(lambda v: dsp.asymmetric_tube(drive * v), x)
    x = dsp.apply(dsp.highpass(30.0), x)  # coupling capacitor
    x = dsp.apply(dsp.low_shelf(120.0, 2.4 * (s["bass"] - 5.0)), x)
    x = dsp.apply(dsp.peaking(700.0, 2.0 * (s["mid"] - 5.0), q=0.8), x)
    x = dsp.apply(dsp.high_shelf(2500.0, 2.4 * (s["treble"] - 5.0)), x)
    level = 0.15 + 0.85 * s["master"] / 10.0
    return 0.9 * np.tanh(level * x)
