"""Speaker cabinets: a loudspeaker-and-box response as filters, or a user's impulse response.

No impulse responses are downloaded: the built-in cabinets are small IIR models of the
features every guitar cab shares (a low-frequency box resonance, the cone's break-up peak
around 2-3 kHz, a steep roll-off above 5-7 kHz). As second-order sections they cost nothing
when appended to an amp's output filter chain. A measured IR from a WAV file is convolved.
"""

from __future__ import annotations

import numpy as np
import scipy.signal

from ampspace import SAMPLE_RATE
from ampspace.audio.wav_io import read_wav
from ampspace.devices import dsp
from ampspace.devices.base import Device, Knob
from ampspace.errors import AmpSpaceError

# kind -> (box resonance Hz, resonance dB, break-up Hz, break-up dB, low-pass Hz)
CABINETS = {
  "4x12": (105.0, 5.0, 2400.0, 4.0, 5000.0),
  "2x12": (120.0, 3.5, 2000.0, 3.0, 6000.0),
  "1x12": (140.0, 3.0, 1700.0, 2.5, 7000.0),
}


def cabinet_sos(kind: str, off_axis: float = 0.0, sr: int = SAMPLE_RATE) -> np.ndarray:
  """SOS of a cabinet; `off_axis` in [0, 1] moves the microphone off the cone (darker)."""
  if kind not in CABINETS:
    raise AmpSpaceError(f"unknown cabinet {kind!r}; known: {sorted(CABINETS)}")
  res_f, res_db, brk_f, brk_db, lp_f = CABINETS[kind]
  return dsp.sos(
    dsp.highpass(0.6 * res_f, sr, order=2),
    dsp.peaking(res_f, res_db, q=1.4, sr=sr),
    dsp.peaking(brk_f, brk_db * (1.0 - 0.8 * off_axis), q=1.2, sr=sr),
    dsp.peaking(500.0, -3.0, q=1.0, sr=sr),
    dsp.lowpass(lp_f * (1.0 - 0.45 * off_axis), sr, order=4),
  )


def impulse_response(kind: str, length: int = 2048, off_axis: float = 0.0) -> np.ndarray:
  """The cabinet as an FIR impulse response (to export, or to compare against a measured IR)."""
  impulse = np.zeros(length)
  impulse[0] = 1.0
  return scipy.signal.sosfilt(cabinet_sos(kind, off_axis), impulse)


def convolve_ir(x: np.ndarray, ir: np.ndarray) -> np.ndarray:
  """A measured IR applied to x, same length, aligned (the IR's own onset is kept)."""
  return scipy.signal.oaconvolve(x, ir)[: len(x)]


class Cabinet(Device):
  """A speaker cabinet as a device of its own (after a preamp or a pedal)."""

  device_type = "cabinet"
  takes_float32 = True
  knobs = (Knob("blend", 3.0),)  # microphone position: 0 on the cone's axis, 10 far off axis

  def __init__(self, name: str = "cab_4x12", kind: str = "4x12", ir_path: str | None = None):
    self.name = name
    self.kind = kind
    self.ir = None
    if ir_path is not None:
      self.ir, _ = read_wav(ir_path)
      self.ir = self.ir.astype(np.float64) / max(1e-9, float(np.sum(np.abs(self.ir))))
      self.knobs = ()
    self.attributes = {"cabinet": kind if ir_path is None else "ir"}
    cabinet_sos(kind)  # validates the kind

  def _process(self, di: np.ndarray, s: dict[str, float]) -> np.ndarray:
    if self.ir is not None:
      return convolve_ir(di.astype(np.float64), self.ir)
    return dsp.run_blocks(dsp.chain(dsp.SosFilter(cabinet_sos(self.kind, s["blend"] / 10.0))), di)
