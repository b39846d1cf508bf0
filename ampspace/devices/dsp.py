"""Pure DSP building blocks for native devices: filters (RBJ biquads), oversampled waveshaping."""

from __future__ import annotations

import numpy as np
import scipy.signal

from ampspace import SAMPLE_RATE


def _biquad(b0, b1, b2, a0, a1, a2):
  return np.array([b0, b1, b2]) / a0, np.array([a0, a1, a2]) / a0


def peaking(f0: float, gain_db: float, q: float = 0.7, sr: int = SAMPLE_RATE):
  a = 10 ** (gain_db / 40)
  w = 2 * np.pi * f0 / sr
  alpha = np.sin(w) / (2 * q)
  return _biquad(1 + alpha * a, -2 * np.cos(w), 1 - alpha * a, 1 + alpha / a, -2 * np.cos(w),
                 1 - alpha / a)


def low_shelf(f0: float, gain_db: float, sr: int = SAMPLE_RATE, s: float = 1.0):
  a = 10 ** (gain_db / 40)
  w = 2 * np.pi * f0 / sr
  alpha = np.sin(w) / 2 * np.sqrt((a + 1 / a) * (1 / s - 1) + 2)
  c, sq = np.cos(w), 2 * np.sqrt(a) * alpha
  return _biquad(a * ((a + 1) - (a - 1) * c + sq), 2 * a * ((a - 1) - (a + 1) * c),
                 a * ((a + 1) - (a - 1) * c - sq), (a + 1) + (a - 1) * c + sq,
                 -2 * ((a - 1) + (a + 1) * c), (a + 1) + (a - 1) * c - sq)


def high_shelf(f0: float, gain_db: float, sr: int = SAMPLE_RATE, s: float = 1.0):
  a = 10 ** (gain_db / 40)
  w = 2 * np.pi * f0 / sr
  alpha = np.sin(w) / 2 * np.sqrt((a + 1 / a) * (1 / s - 1) + 2)
  c, sq = np.cos(w), 2 * np.sqrt(a) * alpha
  return _biquad(a * ((a + 1) + (a - 1) * c + sq), -2 * a * ((a - 1) + (a + 1) * c),
                 a * ((a + 1) + (a - 1) * c - sq), (a + 1) - (a - 1) * c + sq,
                 2 * ((a - 1) - (a + 1) * c), (a + 1) - (a - 1) * c - sq)


def highpass(f0: float, sr: int = SAMPLE_RATE, order: int = 1):
  """Butterworth high-pass. Orders 1 and 2 are closed-form (knob-dependent filters are
  redesigned on every call, and scipy's general designer costs as much as filtering)."""
  if order == 1:
    k = np.tan(np.pi * f0 / sr)
    return np.array([1.0, -1.0]) / (1 + k), np.array([1.0, (k - 1) / (1 + k)])
  if order == 2:
    return _biquad_pass(f0, 1 / np.sqrt(2), sr, high=True)
  return scipy.signal.butter(order, f0, btype="highpass", fs=sr)


def lowpass(f0: float, sr: int = SAMPLE_RATE, order: int = 1):
  f0 = min(f0, 0.45 * sr)
  if order == 1:
    k = np.tan(np.pi * f0 / sr)
    return np.array([k, k]) / (1 + k), np.array([1.0, (k - 1) / (1 + k)])
  if order == 2:
    return _biquad_pass(f0, 1 / np.sqrt(2), sr, high=False)
  return scipy.signal.butter(order, f0, btype="lowpass", fs=sr)


def _biquad_pass(f0: float, q: float, sr: int, high: bool):
  k = np.tan(np.pi * f0 / sr)
  norm = 1.0 / (1.0 + k / q + k * k)
  a = np.array([1.0, 2.0 * (k * k - 1.0) * norm, (1.0 - k / q + k * k) * norm])
  b = np.array([1.0, -2.0, 1.0]) * norm if high else np.array([1.0, 2.0, 1.0]) * k * k * norm
  return b, a


def lowpass_sections(f0: float, order: int = 4, sr: int = SAMPLE_RATE) -> list:
  """An even-order Butterworth low-pass as closed-form biquads (cheap to redesign per call)."""
  f0 = min(f0, 0.45 * sr)
  qs = [1.0 / (2.0 * np.cos(np.pi * (2 * i + 1) / (2 * order))) for i in range(order // 2)]
  return [_biquad_pass(f0, q, sr, high=False) for q in qs]


def apply(ba, x: np.ndarray) -> np.ndarray:
  return scipy.signal.lfilter(ba[0], ba[1], x)


def oversampled(shaper, x: np.ndarray, factor: int = 4) -> np.ndarray:
  """Applies a memoryless nonlinearity at `factor`× the rate so its harmonics do not alias."""
  if factor == 1:
    return shaper(x)
  up = scipy.signal.resample_poly(x, factor, 1)
  return scipy.signal.resample_poly(shaper(up), 1, factor)[: len(x)]


def asymmetric_tube(x: np.ndarray, bias: float = 0.2) -> np.ndarray:
  """Triode-like saturation: softer on the positive swing, harder on the negative, DC removed."""
  y = np.where(x + bias >= 0, np.tanh(x + bias), np.tanh(1.6 * (x + bias)) / 1.6)
  return y - (np.tanh(bias) if bias >= 0 else np.tanh(1.6 * bias) / 1.6)


# --- antiderivative anti-aliasing (ADAA) -------------------------------------------------------
#
# First-order ADAA (Parker, Zavalishin & Le Bihan, DAFx 2016) replaces y = f(x[n]) by
# (F(x[n]) - F(x[n-1])) / (x[n] - x[n-1]), F the antiderivative of f. It is a handful of
# vectorised NumPy operations, about 6x cheaper than 4x polyphase oversampling here, which is
# what lets the pedals run at >1000x real time while their harmonics alias far less than
# naive waveshaping. It adds half a sample of delay, which we leave (below any alignment need).

_LOG2 = float(np.log(2.0))


def logcosh(x: np.ndarray) -> np.ndarray:
  """log(cosh(x)) without overflow: the antiderivative of tanh."""
  a = np.abs(x)
  return a + np.log1p(np.exp(-2.0 * a)) - _LOG2


ADAA_CHUNK = 8192  # samples per pass: keeps the temporaries in L2 cache


def adaa(f, F, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
  """First-order ADAA of the memoryless f with antiderivative F (both vectorised, F(0) = 0).

  Works in chunks carrying the previous sample: on a 10 s clip the whole-array version is
  memory-bound (a dozen 3.5 MB temporaries) and ~10x slower per sample than on cached chunks.
  """
  y = np.empty_like(x)
  x_prev, F_prev = 0.0, 0.0
  for start in range(0, len(x), ADAA_CHUNK):
    xc = x[start:start + ADAA_CHUNK]
    Fx = F(xc)
    dF = np.empty_like(Fx)
    dF[0] = Fx[0] - F_prev
    np.subtract(Fx[1:], Fx[:-1], out=dF[1:])
    dx = np.empty_like(xc)
    dx[0] = xc[0] - x_prev
    np.subtract(xc[1:], xc[:-1], out=dx[1:])
    small = np.abs(dx) < eps
    any_small = small.any()
    if any_small:
      dx[small] = 1.0
    yc = np.divide(dF, dx, out=y[start:start + ADAA_CHUNK])
    if any_small:  # ill-conditioned: fall back to f at the midpoint
      idx = np.flatnonzero(small)
      prev = np.where(idx > 0, xc[np.maximum(idx - 1, 0)], x_prev)
      yc[idx] = f(0.5 * (xc[idx] + prev))
    x_prev, F_prev = float(xc[-1]), float(Fx[-1])
  return y


def tanh_adaa(x: np.ndarray) -> np.ndarray:
  """Symmetric soft clipping (diodes in an op-amp's feedback loop; a push-pull stage)."""
  return adaa(np.tanh, logcosh, x)


def hard_clip(x: np.ndarray) -> np.ndarray:
  return np.clip(x, -1.0, 1.0)


def _hard_clip_F(x: np.ndarray) -> np.ndarray:
  a = np.abs(x)
  return np.where(a <= 1.0, 0.5 * x * x, a - 0.5)


def hard_clip_adaa(x: np.ndarray) -> np.ndarray:
  """Diodes to ground driven hard (RAT-like), antialiased."""
  return adaa(hard_clip, _hard_clip_F, x)


def asym_sat(x: np.ndarray, neg: float) -> np.ndarray:
  """Asymmetric algebraic saturation: x/sqrt(1+x^2) above zero, neg-scaled below.

  With neg < 1 the negative swing saturates earlier and harder (a triode's grid conducting,
  a transistor near cutoff), so the stage makes even harmonics. The algebraic sigmoid's
  antiderivative is a square root, several times cheaper than tanh's log-cosh, and
  u = min(x, x/neg) selects the branch without a np.where pass.
  """
  u = np.minimum(x, x * (1.0 / neg))
  return x / np.sqrt(1.0 + u * u)


def asym_sat_adaa(x: np.ndarray, neg: float) -> np.ndarray:
  def F(v):  # = k^-2 (sqrt(1 + u^2) - 1), k = u/v, written without cancellation or branches
    u = np.minimum(v, v * (1.0 / neg))
    return v * v / (1.0 + np.sqrt(1.0 + u * u))
  return adaa(lambda v: asym_sat(v, neg), F, x)


def biased_stage(x: np.ndarray, bias: float, neg: float) -> np.ndarray:
  """An asymmetric stage around operating point `bias`, its static DC output removed."""
  dc = float(asym_sat(np.array([bias]), neg)[0])
  return asym_sat_adaa(x + bias, neg) - dc


# --- filters as second-order sections: a whole linear chain in one sosfilt call --------------

def _to_sos(b, a=None) -> np.ndarray:
  if a is None:  # already second-order sections
    return np.atleast_2d(b)
  b, a = np.atleast_1d(b).astype(float), np.atleast_1d(a).astype(float)
  if len(a) <= 3 and len(b) <= 3:  # already a biquad: no root finding needed
    row = np.zeros(6)
    row[: len(b)] = b / a[0]
    row[3: 3 + len(a)] = a / a[0]
    return row[None, :]
  return scipy.signal.tf2sos(b, a)


def sos(*bas) -> np.ndarray:
  """(b, a) pairs (any order) or SOS arrays -> one SOS array.

  One sosfilt call costs about the same for one section or eight (the per-call and per-sample
  overhead dominates), so a device runs each linear stretch of its circuit as one call.
  """
  return np.concatenate([_to_sos(f) if isinstance(f, np.ndarray) else _to_sos(*f) for f in bas],
                        axis=0)


def run_sos(sections: np.ndarray, x: np.ndarray) -> np.ndarray:
  return scipy.signal.sosfilt(sections, x)


def one_pole_env(x: np.ndarray, tau_s: float, sr: int = SAMPLE_RATE, block: int = 32) -> np.ndarray:
  """A slow envelope (power-supply sag, ...) at block rate, held back to sample rate.

  Working on `block`-sample means makes the recursion 32x shorter; a supply's time constant
  (tens of ms) is far longer than a block (0.7 ms), so nothing audible is lost.
  """
  n = len(x)
  pad = (-n) % block
  m = np.pad(np.abs(x), (0, pad)).reshape(-1, block).mean(axis=1)
  alpha = 1.0 - np.exp(-block / (tau_s * sr))
  env = scipy.signal.lfilter([alpha], [1.0, alpha - 1.0], m)
  return np.repeat(env, block)[:n]


# --- passive tone stacks -----------------------------------------------------------------------

# Component values (R1..R4 in ohm, C1..C3 in farad) of the classic Fender/Marshall/Vox-style
# "FMV" treble/middle/bass stack, as tabulated by Yeh & Smith and in Guitarix's tonestack list.
TONE_STACKS = {
    "fender": dict(R1=250e3, R2=1e6, R3=25e3, R4=56e3, C1=250e-12, C2=20e-9, C3=20e-9),
    "marshall": dict(R1=220e3, R2=1e6, R3=22e3, R4=33e3, C1=470e-12, C2=22e-9, C3=22e-9),
    "mesa": dict(R1=250e3, R2=250e3, R3=25e3, R4=100e3, C1=250e-12, C2=100e-9, C3=47e-9),
}


def fmv_tone_stack(t: float, m: float, l: float, stack: str = "fender", sr: int = SAMPLE_RATE):
  """The FMV passive tone stack's exact transfer function (Yeh & Smith, DAFx 2006), bilinear.

  t, m, l are the treble, middle and bass pot fractions in [0, 1]. The three controls load
  each other through one passive network, so, as on the real amp, turning up the bass also
  moves the mid scoop and the treble changes the overall level: the interaction is not
  modelled, it falls out of the circuit equations.
  """
  c = TONE_STACKS[stack]
  R1, R2, R3, R4 = c["R1"], c["R2"], c["R3"], c["R4"]
  C1, C2, C3 = c["C1"], c["C2"], c["C3"]
  b1 = t * C1 * R1 + m * C3 * R3 + l * (C1 * R2 + C2 * R2) + (C1 * R3 + C2 * R3)
  b2 = (t * (C1 * C2 * R1 * R4 + C1 * C3 * R1 * R4) - m * m * (C1 * C3 * R3 ** 2 + C2 * C3 * R3 ** 2)
        + m * (C1 * C3 * R1 * R3 + C1 * C3 * R3 ** 2 + C2 * C3 * R3 ** 2)
        + l * (C1 * C2 * R1 * R2 + C1 * C2 * R2 * R4 + C1 * C3 * R2 * R4)
        + l * m * (C1 * C3 * R2 * R3 + C2 * C3 * R2 * R3)
        + (C1 * C2 * R1 * R3 + C1 * C2 * R3 * R4 + C1 * C3 * R3 * R4))
  k = C1 * C2 * C3
  b3 = (l * m * (k * R1 * R2 * R3 + k * R2 * R3 * R4) - m * m * (k * R1 * R3 ** 2 + k * R3 ** 2 * R4)
        + m * (k * R1 * R3 ** 2 + k * R3 ** 2 * R4) + t * k * R1 * R3 * R4 - t * m * k * R1 * R3 * R4
        + t * l * k * R1 * R2 * R4)
  a1 = ((C1 * R1 + C1 * R3 + C2 * R3 + C2 * R4 + C3 * R4) + m * C3 * R3 + l * (C1 * R2 + C2 * R2))
  a2 = (m * (C1 * C3 * R1 * R3 - C2 * C3 * R3 * R4 + C1 * C3 * R3 ** 2 + C2 * C3 * R3 ** 2)
        + l * m * (C1 * C3 * R2 * R3 + C2 * C3 * R2 * R3) - m * m * (C1 * C3 * R3 ** 2 + C2 * C3 * R3 ** 2)
        + l * (C1 * C2 * R2 * R4 + C1 * C2 * R1 * R2 + C1 * C3 * R2 * R4 + C2 * C3 * R2 * R4)
        + (C1 * C2 * R1 * R4 + C1 * C3 * R1 * R4 + C1 * C2 * R3 * R4 + C1 * C2 * R1 * R3
           + C1 * C3 * R3 * R4 + C2 * C3 * R3 * R4))
  a3 = (l * m * (k * R1 * R2 * R3 + k * R2 * R3 * R4) - m * m * (k * R1 * R3 ** 2 + k * R3 ** 2 * R4)
        + m * (k * R3 ** 2 * R4 + k * R1 * R3 ** 2 - k * R1 * R3 * R4) + l * k * R1 * R2 * R4
        + k * R1 * R3 * R4)
  return bilinear3((0.0, b1, b2, b3), (1.0, a1, a2, a3), sr)


def bilinear3(b_s, a_s, sr: int = SAMPLE_RATE):
  """Bilinear transform of a cubic H(s) = sum b_i s^i / sum a_i s^i, in closed form."""
  c = 2.0 * sr
  def z(p):
    p0, p1, p2, p3 = p[0], p[1] * c, p[2] * c * c, p[3] * c ** 3
    return np.array([p0 + p1 + p2 + p3, 3 * p0 + p1 - p2 - 3 * p3,
                     3 * p0 - p1 - p2 + 3 * p3, p0 - p1 + p2 - p3])
  b, a = z(b_s), z(a_s)
  return b / a[0], a / a[0]


def cubic_sections(b: np.ndarray, a: np.ndarray) -> np.ndarray:
  """A third-order (b, a) split into a first- and a second-order section, without tf2sos.

  A real cubic has a real root; factoring it out of numerator and denominator leaves a
  biquad. Two np.roots calls cost ~40 us, a tenth of scipy.signal.tf2sos.
  """
  def split(p):
    r = np.roots(p)
    real = r[np.argmin(np.abs(r.imag))].real
    quad, _ = np.polydiv(p, [1.0, -real])
    return real, quad
  rb, qb = split(b)
  ra, qa = split(a)
  first = [1.0, -rb, 0.0, 1.0, -ra, 0.0]
  second = np.concatenate([qb, qa]) / qa[0]
  return np.array([first, second])


def blend_filters(ba1, ba2, w: float):
  """(1-w)*H1 + w*H2 as one transfer function (a pot crossfading two filters, Big-Muff style)."""
  b1, a1 = ba1
  b2, a2 = ba2
  b = np.polyadd((1.0 - w) * np.polymul(b1, a2), w * np.polymul(b2, a1))
  return b, np.polymul(a1, a2)
