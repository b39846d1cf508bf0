"""Distortion (RAT-like): a high-gain op-amp stage into diodes to ground (hard clipping).

The RAT's op-amp gain (up to ~67 dB) meets its gain-bandwidth product, so the more drive,
the lower the stage's upper corner: high drive is darker *before* the clip, as on the pedal.
The diodes clamp hard (ADAA-antialiased hard clip); the "filter" knob is the RAT's
post-clipping low-pass, turned clockwise to cut treble.
"""

from __future__ import annotations

import numpy as np

from ampspace.devices import dsp
from ampspace.devices.base import Device, Knob

# diode -> clipping threshold relative to silicon: LEDs clip later (louder, more open),
# germanium earlier and softer.
DIODES = {"silicon": 1.0, "led": 2.6, "germanium": 0.45}


class Distortion(Device):
  device_type = "distortion"
  takes_float32 = True
  knobs = (Knob("drive", 5.0, taper="log"), Knob("filter", 3.0), Knob("volume"))

  def __init__(self, name: str = "rat_distortion", clipping: str = "silicon"):
    self.name = name
    self.threshold = DIODES[clipping]
    self.attributes = {"clipping": clipping, "topology": "hard_clip", "transistor": "op_amp"}
    self._knob = {k.name: k for k in self.knobs}
    self._hp = dsp.highpass(60.0, order=1)

  def _process(self, di: np.ndarray, s: dict[str, float]) -> np.ndarray:
    d = self._knob["drive"].fraction(s["drive"])
    gain = 2.0 + 2000.0 * d
    gbw_corner = min(20000.0, 1.0e6 / gain**0.75)  # an OP07's GBW, loosely
    pre = dsp.sos(
      self._hp, dsp.highpass(560.0 * (1 - d) + 30.0, order=1), dsp.lowpass(gbw_corner, order=1)
    )
    scratch = dsp.scratch_for(len(di))
    if self.threshold < 1.0:
      clip = dsp.tanh_stage(scratch)  # germanium: rounder knee
    else:
      clip = dsp.hard_clip_stage(scratch)
    cutoff = 32000.0 * 2.0 ** (-s["filter"] / 10.0 * 6.0)  # 32 kHz .. 500 Hz
    post = dsp.sos(dsp.lowpass(cutoff, order=1), dsp.highpass(20.0, order=1))
    volume = 0.02 + 0.6 * (s["volume"] / 10.0) ** 2
    return dsp.run_blocks(
      dsp.chain(
        dsp.SosFilter(pre, gain=gain / self.threshold),
        clip,
        dsp.SosFilter(post, gain=volume * self.threshold),
      ),
      di,
    )
