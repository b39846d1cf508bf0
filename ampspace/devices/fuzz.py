"""Fuzz: a Fuzz-Face-like two-transistor fuzz, a *gated* (starved, biased) fuzz, a Big Muff.

A fuzz transistor stage clips asymmetrically: one swing saturates, the other runs into cutoff.
Moving the bias point toward cutoff (the gated fuzz's `bias` knob, a "starve" control) makes
small signals fall below conduction entirely: notes decay into sputter and then silence. The
paper names gated fuzzes as the hardest case for a model, because the output is a
discontinuous function of the input's envelope.
"""

from __future__ import annotations

import numpy as np

from ampspace.devices import dsp
from ampspace.devices.base import Device, Knob

# transistor -> (gain, negative-swing softness): germanium is lower gain and rounder.
TRANSISTORS = {"germanium": (60.0, 0.5), "silicon": (200.0, 0.3)}


def gated_stage(x: np.ndarray, bias: float, neg: float) -> np.ndarray:
  """A transistor biased `bias` below conduction: below it, only the `neg`-scaled leakage.

  The positive swing is an algebraic sigmoid of (x - bias); the part below threshold is
  attenuated by `neg`**2, so with a large bias small inputs are nearly silent: the gate.
  """
  stage = dsp.asym_sat_stage(dsp.scratch_for(len(x)), neg, -bias, remove_dc=True)
  return dsp.run_blocks(lambda b, _: stage(b), x, np.float64)


class Fuzz(Device):
  device_type = "fuzz"
  takes_float32 = True

  def __init__(self, name: str = "fuzz_face", transistor: str = "germanium", gated: bool = False):
    self.name = name
    self.gain, self.neg = TRANSISTORS[transistor]
    self.gated = gated
    knobs = [Knob("fuzz", 7.0), Knob("volume")]
    if gated:
      knobs.append(Knob("bias", 3.0))
      self.neg = 0.08  # the starved stage: almost nothing passes below cutoff
    self.knobs = tuple(knobs)
    self.attributes = {
      "transistor": transistor,
      "topology": "gated" if gated else "soft_clip",
      "clipping": "asymmetric",
    }
    self._pre = dsp.sos(dsp.highpass(90.0, order=1), dsp.lowpass(9000.0, order=1))
    self._post = dsp.sos(dsp.highpass(40.0, order=1), dsp.lowpass(7000.0, order=2))

  def _process(self, di: np.ndarray, s: dict[str, float]) -> np.ndarray:
    gain = 1.0 + self.gain * (s["fuzz"] / 10.0) ** 2
    scratch = dsp.scratch_for(len(di))
    if self.gated:
      # The bias is input-referred: at 10 a note must swing above ~0.15 (a DI's peaks are
      # ~0.5) to conduct, so it sputters as it decays; at 0 it is an ordinary fuzz (gated_stage).
      bias = gain * 0.15 * (s["bias"] / 10.0) ** 2
      stage = dsp.asym_sat_stage(scratch, self.neg, -bias, remove_dc=True)
    else:
      stage = dsp.asym_sat_stage(scratch, self.neg, 0.2, remove_dc=True)
    volume = 0.02 + 0.8 * (s["volume"] / 10.0) ** 2
    return dsp.run_blocks(
      dsp.chain(dsp.SosFilter(self._pre, gain=gain), stage, dsp.SosFilter(self._post, gain=volume)),
      di,
    )


class BigMuff(Device):
  """Big-Muff-like: very high gain soft clipping and the Muff's tone pot, which crossfades a
  low-pass and a high-pass, scooping the mids at its centre."""

  device_type = "fuzz"
  takes_float32 = True
  knobs = (Knob("sustain", 6.0, taper="log"), Knob("tone"), Knob("volume"))
  attributes = {
    "transistor": "silicon",
    "clipping": "silicon",
    "tone_stack": "big_muff",
    "topology": "soft_clip",
  }

  def __init__(self, name: str = "big_muff"):
    self.name = name
    self._knob = {k.name: k for k in self.knobs}
    self._pre = dsp.sos(dsp.highpass(100.0, order=1), dsp.lowpass(5000.0, order=1))
    self._lp = dsp.lowpass(480.0, order=1)
    self._hp = dsp.highpass(1200.0, order=1)

  def _process(self, di: np.ndarray, s: dict[str, float]) -> np.ndarray:
    g = 5.0 + 800.0 * self._knob["sustain"].fraction(s["sustain"])
    tone = dsp.blend_filters(self._lp, self._hp, s["tone"] / 10.0)
    volume = 0.02 + 0.8 * (s["volume"] / 10.0) ** 2
    return dsp.run_blocks(
      dsp.chain(
        dsp.SosFilter(self._pre, gain=g),
        dsp.tanh_stage(dsp.scratch_for(len(di))),
        dsp.SosFilter(dsp.sos(tone, dsp.highpass(30.0, order=1)), gain=volume),
      ),
      di,
    )
