"""Equalisers: a four-band parametric (shelves and peaks, RBJ cookbook) and a Baxandall
bass/treble (the hi-fi tone control: broad shelves that pivot around 1 kHz).

Every band is a dial at 5 = flat, 0 = -15 dB, 10 = +15 dB; all bands run as one sosfilt call.
"""

from __future__ import annotations

import numpy as np

from ampspace.devices import dsp
from ampspace.devices.base import Device, Knob


def _db(dial: float, span: float = 15.0) -> float:
  return (dial - 5.0) / 5.0 * span


class ParametricEQ(Device):
  name = "eq_parametric"
  device_type = "eq"
  takes_float32 = True
  knobs = (Knob("low"), Knob("low_mid"), Knob("high_mid"), Knob("high"), Knob("level"))
  attributes = {"tone_stack": "none", "topology": "none"}

  def _process(self, di: np.ndarray, s: dict[str, float]) -> np.ndarray:
    sections = dsp.sos(
      dsp.low_shelf(100.0, _db(s["low"])),
      dsp.peaking(400.0, _db(s["low_mid"]), q=1.0),
      dsp.peaking(2500.0, _db(s["high_mid"]), q=1.0),
      dsp.high_shelf(6000.0, _db(s["high"])),
    )
    level = 10.0 ** (_db(s["level"], 12.0) / 20.0)
    return dsp.run_blocks(dsp.chain(dsp.SosFilter(sections, gain=level)), di)


class BaxandallEQ(Device):
  name = "eq_baxandall"
  device_type = "eq"
  takes_float32 = True
  knobs = (Knob("bass"), Knob("treble"), Knob("level"))
  attributes = {"tone_stack": "baxandall", "topology": "none"}

  def _process(self, di: np.ndarray, s: dict[str, float]) -> np.ndarray:
    sections = dsp.sos(
      dsp.low_shelf(250.0, _db(s["bass"]), s=0.5), dsp.high_shelf(3000.0, _db(s["treble"]), s=0.5)
    )
    level = 10.0 ** (_db(s["level"], 12.0) / 20.0)
    return dsp.run_blocks(dsp.chain(dsp.SosFilter(sections, gain=level)), di)
