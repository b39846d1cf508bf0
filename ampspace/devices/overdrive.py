"""Overdrive (Tube-Screamer-like): a mid-hump drive path soft-clipped and added to the dry signal.

In the TS808/TS9 the clipping diodes sit in the op-amp's feedback loop, with a 720 Hz
high-pass in the gain leg: the clipped signal is the *high-passed* input, and the op-amp adds
the clean signal back (unity gain at DC). That is where the mid hump and the "transparent"
low end come from. The tone control is a variable low-pass after the clipper. Soft clipping
is antialiased by ADAA (no oversampling: the pedals must run at >1000x real time).
"""

from __future__ import annotations

import numpy as np

from ampspace.devices import dsp
from ampspace.devices.base import Device, Knob

# clipping -> (diode knee, asymmetry of the negative swing: 1 = symmetric)
CLIPPING = {
  "silicon": (1.0, 1.0),
  "asymmetric": (1.0, 0.6),
  "led": (2.5, 1.0),
  "germanium": (0.5, 1.0),
  "mosfet": (1.6, 0.8),
}


class Overdrive(Device):
  device_type = "overdrive"
  takes_float32 = True
  knobs = (Knob("drive", 5.0, taper="log"), Knob("tone"), Knob("level"))

  def __init__(self, name: str = "ts_overdrive", clipping: str = "silicon"):
    self.name = name
    self.knee, self.neg = CLIPPING[clipping]
    self.attributes = {"clipping": clipping, "topology": "soft_clip", "transistor": "op_amp"}
    self._knob = {k.name: k for k in self.knobs}
    self._pre = dsp.sos(dsp.highpass(720.0, order=1), dsp.lowpass(6000.0, order=1))

  def _process(self, di: np.ndarray, s: dict[str, float]) -> np.ndarray:
    gain = 1.0 + 110.0 * self._knob["drive"].fraction(s["drive"])  # 51k + 500k pot over 4.7k
    scratch = dsp.scratch_for(len(di))
    pre = dsp.SosFilter(self._pre, gain=gain / self.knee)
    if self.neg == 1.0:
      clip = dsp.tanh_stage(scratch)
    else:
      clip = dsp.asym_sat_stage(scratch, self.neg)
    tone = 500.0 * 2.0 ** (s["tone"] / 10.0 * 4.0)  # 500 Hz .. 8 kHz low-pass corner
    level = 0.05 + 1.2 * (s["level"] / 10.0) ** 2
    post = dsp.SosFilter(
      dsp.sos(dsp.lowpass(tone, order=1), dsp.highpass(30.0, order=1)), gain=level
    )
    wet = 0.5 * self.knee

    def block(x: np.ndarray, start: int) -> np.ndarray:
      x = clip(pre(x))
      x *= wet
      x += di[start : start + len(x)]  # the op-amp adds the clean signal back
      return post(x)

    return dsp.run_blocks(block, di)
