"""A tube amp: two triode gain stages, a passive FMV tone stack, presence, a push-pull power amp
with supply sag, and an optional speaker cabinet.

Signal path (each arrow a real circuit element, each nonlinearity antialiased by ADAA):

  input coupling -> V1a (asymmetric triode) -> coupling cap + Miller low-pass -> V1b ->
  FMV tone stack (bass/mid/treble interact as in the circuit) -> presence (a high shelf, as
  the presence control shelves the power amp's negative feedback) -> master -> power amp
  (symmetric push-pull saturation, its drive pulled down by the supply's sag) -> output
  transformer band limits [-> cabinet].

The variants differ by attributes, the way the paper's Table 2 lists them: preamp tube (gain
and grid-conduction asymmetry), power tube (headroom), rectifier (sag), tone-stack component
values, cabinet.
"""

from __future__ import annotations

import numpy as np

from ampspace.devices import dsp
from ampspace.devices.base import Device, Knob
from ampspace.devices.cabinet import cabinet_sos

# preamp tube -> (gain factor relative to a 12AX7 (mu 100), negative-swing softness, grid bias)
PREAMP_TUBES = {
  "12AX7": (1.0, 0.5, 0.2),
  "12AT7": (0.6, 0.6, 0.18),
  "12AU7": (0.2, 0.7, 0.15),
  "ECC83": (1.0, 0.5, 0.2),
}
# power tube -> (drive into the output stage, output asymmetry): EL34 breaks up early and
# mid-forward, 6L6 has more clean headroom, EL84 compresses soonest.
POWER_TUBES = {"EL34": (1.4, 0.9), "6L6": (0.8, 0.95), "EL84": (2.0, 0.85), "KT88": (0.6, 0.97)}
RECTIFIER_SAG = {"tube": 0.8, "solid_state": 0.2}


class TubeAmp(Device):
  device_type = "amp"
  takes_float32 = True
  knobs = (
    Knob("gain", 5.0, taper="log"),
    Knob("bass", taper="log"),
    Knob("mid"),
    Knob("treble"),
    Knob("presence"),
    Knob("master", 5.0),
  )

  def __init__(
    self,
    name: str = "tube_amp",
    preamp_tube: str = "12AX7",
    power_tube: str = "EL34",
    tone_stack: str = "marshall",
    rectifier: str = "solid_state",
    cabinet: str | None = None,
    preamp_gain: float = 1.0,
  ):
    self.name = name
    self.preamp = PREAMP_TUBES[preamp_tube]
    self.power = POWER_TUBES[power_tube]
    self.tone_stack = tone_stack
    self.sag = RECTIFIER_SAG[rectifier]
    self.cabinet = cabinet
    self.preamp_gain = preamp_gain
    self.attributes = {
      "preamp_tube": preamp_tube,
      "power_tube": power_tube,
      "tone_stack": tone_stack,
      "rectifier": rectifier,
      "cabinet": cabinet or "none",
    }
    self._knob = {k.name: k for k in self.knobs}
    self._hp70 = dsp.sos(dsp.highpass(70.0, order=1))
    self._hp25 = dsp.highpass(25.0, order=1)
    self._hp120 = dsp.highpass(120.0, order=1)
    out = [dsp.highpass(40.0, order=1), dsp.lowpass(9000.0, order=2)]  # output transformer
    self._out_sos = dsp.sos(*out)
    if cabinet:
      self._out_sos = np.concatenate([self._out_sos, cabinet_sos(cabinet)])

  def _process(self, di: np.ndarray, s: dict[str, float]) -> np.ndarray:
    # Every gain is folded into the filter before it, and the chain runs on cached blocks
    # (dsp.run_blocks); stages carry their state, so the result is that of one pass.
    mu, neg, bias = self.preamp
    g = self._knob["gain"].fraction(s["gain"])  # audio taper
    # V1a: input coupling, then the triode. Gain: ~x0.4 at 0 to ~x80 at 10 for a 12AX7.
    g1 = (0.4 + 80.0 * g) * mu * self.preamp_gain
    # Coupling cap, and the Miller capacitance: more gain, lower corner (darker at high gain).
    miller = 12000.0 / (1.0 + 1.5 * g)
    g2 = 1.0 + 8.0 * g * mu
    # Tone stack (bass pot audio taper, as fitted in Fender and Marshall amps) and presence.
    stack = dsp.fmv_tone_stack(
      s["treble"] / 10.0, s["mid"] / 10.0, self._knob["bass"].fraction(s["bass"]), self.tone_stack
    )
    presence = dsp.high_shelf(3500.0, 1.2 * (s["presence"] - 5.0))
    # Power amp: master sets how hard it is driven; the supply sags with the output current.
    drive, asym = self.power
    m = s["master"] / 10.0
    scratch = dsp.scratch_for(len(di))
    return dsp.run_blocks(
      dsp.chain(
        dsp.SosFilter(self._hp70, gain=g1),
        dsp.asym_sat_stage(scratch, neg, -bias, remove_dc=True),  # V1a
        dsp.SosFilter(dsp.sos(self._hp120, dsp.lowpass(miller, order=1)), gain=g2),
        dsp.asym_sat_stage(scratch, neg, -0.5 * bias, remove_dc=True),  # V1b
        dsp.SosFilter(
          dsp.sos(dsp.cubic_sections(*stack), presence, self._hp25),
          gain=(0.3 + 3.0 * m * m) * drive,
        ),
        dsp.SagEnvelope(0.06, self.sag, scratch),
        dsp.asym_sat_stage(scratch, asym),  # push-pull power stage
        dsp.SosFilter(self._out_sos, gain=0.7),
      ),
      di,
    )
