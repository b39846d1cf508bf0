"""Pure DSP building blocks for native devices: filters (RBJ biquads, tone stacks), ADAA
waveshaping, and the stateful block stages (SosFilter, AdaaStage, SagEnvelope) that devices
chain with run_blocks so that a whole circuit runs on cache-sized blocks."""

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
  return _biquad(
    1 + alpha * a, -2 * np.cos(w), 1 - alpha * a, 1 + alpha / a, -2 * np.cos(w), 1 - alpha / a
  )


def low_shelf(f0: float, gain_db: float, sr: int = SAMPLE_RATE, s: float = 1.0):
  a = 10 ** (gain_db / 40)
  w = 2 * np.pi * f0 / sr
  alpha = np.sin(w) / 2 * np.sqrt((a + 1 / a) * (1 / s - 1) + 2)
  c, sq = np.cos(w), 2 * np.sqrt(a) * alpha
  return _biquad(
    a * ((a + 1) - (a - 1) * c + sq),
    2 * a * ((a - 1) - (a + 1) * c),
    a * ((a + 1) - (a - 1) * c - sq),
    (a + 1) + (a - 1) * c + sq,
    -2 * ((a - 1) + (a + 1) * c),
    (a + 1) + (a - 1) * c - sq,
  )


def high_shelf(f0: float, gain_db: float, sr: int = SAMPLE_RATE, s: float = 1.0):
  a = 10 ** (gain_db / 40)
  w = 2 * np.pi * f0 / sr
  alpha = np.sin(w) / 2 * np.sqrt((a + 1 / a) * (1 / s - 1) + 2)
  c, sq = np.cos(w), 2 * np.sqrt(a) * alpha
  return _biquad(
    a * ((a + 1) + (a - 1) * c + sq),
    -2 * a * ((a - 1) + (a + 1) * c),
    a * ((a + 1) + (a - 1) * c - sq),
    (a + 1) - (a - 1) * c + sq,
    2 * ((a - 1) - (a + 1) * c),
    (a + 1) - (a - 1) * c - sq,
  )


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


# Antiderivatives written into caller-owned buffers (no temporaries): F(x, out, tmp). A
# constant offset does not matter (ADAA differences it away); the stage starts from F(0).


def _logcosh_into(x, out, tmp):
  """|x| + log(1 + exp(-2|x|)) = log(cosh x) + log 2. np.log of a value in (1, 2] instead of
  log1p: log1p is not vectorised in NumPy (3x slower), and the absolute error (~1e-16) is all
  ADAA's difference quotient sees."""
  np.abs(x, out=out)
  np.multiply(out, -2.0, out=tmp)
  np.exp(tmp, out=tmp)
  tmp += 1.0
  np.log(tmp, out=tmp)
  out += tmp


def _hard_clip_F_into(x, out, tmp):
  """0.5 x^2 inside [-1, 1], |x| - 0.5 outside, as c (x - c/2) with c = clip(x): no branches."""
  np.clip(x, -1.0, 1.0, out=tmp)
  np.multiply(tmp, -0.5, out=out)
  out += x
  out *= tmp


def _asym_sat_F_into(neg: float):
  inv = 1.0 / neg

  def F(x, out, tmp):  # x^2 / (1 + sqrt(1 + u^2)), u = min(x, x/neg): see asym_sat_adaa
    if neg != 1.0:
      np.multiply(x, inv, out=tmp)
      np.minimum(x, tmp, out=tmp)
      tmp *= tmp
    else:
      np.multiply(x, x, out=tmp)
    tmp += 1.0
    np.sqrt(tmp, out=tmp)
    tmp += 1.0
    np.multiply(x, x, out=out)
    out /= tmp

  return F


def _plain_F_into(F):
  def F_into(x, out, tmp):
    out[:] = F(x)

  return F_into


class AdaaStage:
  """ADAA of a memoryless f as a block processor: filters each block in place and carries the
  previous input sample and F value across blocks, so any block size gives the same output.

  `bias` is added before the nonlinearity and `dc` subtracted after it (a stage around an
  operating point). `scratch` is three float64 rows at least as long as a block, shared by
  every stage of a render (stages run one after the other on a block).
  """

  def __init__(
    self, f, F_into, scratch: np.ndarray, bias: float = 0.0, dc: float = 0.0, eps: float = 1e-6
  ):
    self.f, self.F_into, self.scratch = f, F_into, scratch
    self.bias, self.dc, self.eps = float(bias), float(dc), eps
    zero, F0 = np.zeros(1), np.empty(1)
    F_into(zero, F0, np.empty(1))
    self.x_prev, self.F_prev = 0.0, float(F0[0])  # as if the signal before t=0 were silence

  def __call__(self, x: np.ndarray) -> np.ndarray:
    n = len(x)
    Fx, dF, tmp = self.scratch[0, :n], self.scratch[1, :n], self.scratch[2, :n]
    if self.bias:
      x += self.bias
    self.F_into(x, Fx, tmp)
    np.subtract(Fx[1:], Fx[:-1], out=dF[1:])
    dF[0] = Fx[0] - self.F_prev
    self.F_prev = float(Fx[-1])
    dx = Fx  # F(x) is no longer needed
    np.subtract(x[1:], x[:-1], out=dx[1:])
    dx[0] = x[0] - self.x_prev
    x_prev, self.x_prev = self.x_prev, float(x[-1])
    np.abs(dx, out=tmp)
    if tmp.min() < self.eps:  # ill-conditioned where the input barely moves: f at the midpoint
      idx = np.flatnonzero(tmp < self.eps)
      prev = x[np.maximum(idx - 1, 0)]
      if idx[0] == 0:
        prev[0] = x_prev
      mid = self.f(0.5 * (x[idx] + prev))
      dx[idx] = 1.0
      np.divide(dF, dx, out=x)
      x[idx] = mid
    else:
      np.divide(dF, dx, out=x)
    if self.dc:
      x -= self.dc
    return x


BLOCK_SIZE = 16384  # samples per block: the block and the shared scratch (512 KB) stay in L2
_ENV_BLOCK = 32  # see SagEnvelope; BLOCK_SIZE is a multiple of it


def scratch_for(n: int, block_size: int | None = None) -> np.ndarray:
  size = min(block_size or BLOCK_SIZE, n)
  return np.empty((3, -(-size // _ENV_BLOCK) * _ENV_BLOCK))


def run_blocks(fn, x: np.ndarray, dtype=np.float32, block_size: int | None = None) -> np.ndarray:
  """fn over x in blocks: each block is copied into one float64 working buffer (fn may work
  in place on it) and fn's result is stored into the output (of `dtype`).

  A whole-clip pass over a 10 s clip streams each intermediate array through memory; on a
  block of a few thousand samples the same NumPy calls run on cached data, several times
  faster. The stateful stages (SosFilter, AdaaStage, SagEnvelope) carry their state, so the
  output does not depend on the block size (tests/test_devices.py checks it).
  """
  size = block_size or BLOCK_SIZE
  if size % _ENV_BLOCK:
    raise ValueError(f"block size {size} is not a multiple of {_ENV_BLOCK}")
  n = len(x)
  out = np.empty(n, dtype)
  buf = np.empty(min(size, n))
  for start in range(0, n, size):
    stop = min(start + size, n)
    block = buf[: stop - start]
    np.copyto(block, x[start:stop])
    np.copyto(out[start:stop], fn(block, start), casting="same_kind")
  return out


def chain(*stages):
  """The stages (each block -> block, in place) as one run_blocks function."""

  def run(block: np.ndarray, start: int) -> np.ndarray:
    for stage in stages:
      block = stage(block)
    return block

  return run


def adaa(f, F, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
  """First-order ADAA of the memoryless f with antiderivative F (both vectorised, F(0) = 0)."""
  stage = AdaaStage(f, _plain_F_into(F), scratch_for(len(x)), eps=eps)
  return run_blocks(lambda b, _: stage(b), x, np.float64)


def tanh_adaa(x: np.ndarray) -> np.ndarray:
  """Symmetric soft clipping (diodes in an op-amp's feedback loop; a push-pull stage)."""
  stage = tanh_stage(scratch_for(len(x)))
  return run_blocks(lambda b, _: stage(b), x, np.float64)


def tanh_stage(scratch: np.ndarray, bias: float = 0.0, dc: float = 0.0) -> AdaaStage:
  return AdaaStage(np.tanh, _logcosh_into, scratch, bias, dc)


def hard_clip(x: np.ndarray) -> np.ndarray:
  return np.clip(x, -1.0, 1.0)


def _hard_clip_F(x: np.ndarray) -> np.ndarray:
  a = np.abs(x)
  return np.where(a <= 1.0, 0.5 * x * x, a - 0.5)


def hard_clip_stage(scratch: np.ndarray) -> AdaaStage:
  return AdaaStage(hard_clip, _hard_clip_F_into, scratch)


def hard_clip_adaa(x: np.ndarray) -> np.ndarray:
  """Diodes to ground driven hard (RAT-like), antialiased."""
  stage = hard_clip_stage(scratch_for(len(x)))
  return run_blocks(lambda b, _: stage(b), x, np.float64)


def asym_sat(x: np.ndarray, neg: float) -> np.ndarray:
  """Asymmetric algebraic saturation: x/sqrt(1+x^2) above zero, neg-scaled below.

  With neg < 1 the negative swing saturates earlier and harder (a triode's grid conducting,
  a transistor near cutoff), so the stage makes even harmonics. The algebraic sigmoid's
  antiderivative is a square root, several times cheaper than tanh's log-cosh, and
  u = min(x, x/neg) selects the branch without a np.where pass.
  """
  u = np.minimum(x, x * (1.0 / neg))
  return x / np.sqrt(1.0 + u * u)


def asym_sat_stage(
  scratch: np.ndarray, neg: float, bias: float = 0.0, remove_dc: bool = False
) -> AdaaStage:
  """asym_sat antialiased around operating point `bias`; `remove_dc`: minus its static output."""
  dc = float(asym_sat(np.array([bias]), neg)[0]) if remove_dc else 0.0
  return AdaaStage(lambda v: asym_sat(v, neg), _asym_sat_F_into(neg), scratch, bias, dc)


def asym_sat_adaa(x: np.ndarray, neg: float) -> np.ndarray:
  # F = k^-2 (sqrt(1 + u^2) - 1), k = u/v, written without cancellation or branches
  stage = asym_sat_stage(scratch_for(len(x)), neg)
  return run_blocks(lambda b, _: stage(b), x, np.float64)


def biased_stage(x: np.ndarray, bias: float, neg: float) -> np.ndarray:
  """An asymmetric stage around operating point `bias`, its static DC output removed."""
  stage = asym_sat_stage(scratch_for(len(x)), neg, bias, remove_dc=True)
  return run_blocks(lambda b, _: stage(b), x, np.float64)


# --- filters as second-order sections: a whole linear chain in one sosfilt call --------------


def _to_sos(b, a=None) -> np.ndarray:
  if a is None:  # already second-order sections
    return np.atleast_2d(b)
  b, a = np.atleast_1d(b).astype(float), np.atleast_1d(a).astype(float)
  if len(a) <= 3 and len(b) <= 3:  # already a biquad: no root finding needed
    row = np.zeros(6)
    row[: len(b)] = b / a[0]
    row[3 : 3 + len(a)] = a / a[0]
    return row[None, :]
  return scipy.signal.tf2sos(b, a)


def sos(*bas) -> np.ndarray:
  """(b, a) pairs (any order) or SOS arrays -> one SOS array.

  One filter pass costs about the same for one section or four (the per-sample recursion
  dominates, see SosFilter), so a device runs each linear stretch of its circuit as one pass.
  """
  return np.concatenate(
    [_to_sos(f) if isinstance(f, np.ndarray) else _to_sos(*f) for f in bas], axis=0
  )


def run_sos(sections: np.ndarray, x: np.ndarray) -> np.ndarray:
  return scipy.signal.sosfilt(sections, x)


try:  # the in-place kernel behind scipy.signal.sosfilt, without its per-call checks and copies
  from scipy.signal._sosfilt import _sosfilt as _sosfilt_kernel
except ImportError:  # pragma: no cover - a SciPy that moved it: the public function still works
  _sosfilt_kernel = None


def merge_first_order(sections: np.ndarray) -> np.ndarray:
  """The same cascade with pairs of first-order sections (b2 = a2 = 0) multiplied into biquads."""
  first = [i for i, r in enumerate(sections) if r[2] == 0.0 and r[5] == 0.0]
  rows = [r for i, r in enumerate(sections) if i not in first]
  for i, j in zip(first[::2], first[1::2]):
    p, q = sections[i], sections[j]
    rows.append(np.concatenate([np.convolve(p[:2], q[:2]), np.convolve(p[3:5], q[3:5])]))
  if len(first) % 2:
    rows.append(sections[first[-1]])
  return np.array(rows, dtype=np.float64)


_SUB = 32  # samples per sub-block of the block state-space filter
_TOEPLITZ = np.subtract.outer(np.arange(_SUB), np.arange(_SUB))
_TOEPLITZ = np.where(_TOEPLITZ >= 0, _TOEPLITZ + 1, 0)  # indexes [0, h0, h1, ...]


class _BlockForm:
  """A cascade as a state-space system stepped _SUB samples at a time (block filtering).

  The state is the sosfilt kernel's zi (transposed direct form II per section). Over a
  sub-block x_j of _SUB samples with state s_j:  y_j = D_L x_j + C_L s_j  and
  s_{j+1} = M s_j + B_L x_j  (M = A^_SUB). The first two are matrix products over all
  sub-blocks at once (BLAS); only the state recursion is serial, and per section it is a
  two-dimensional recursion run by the sosfilt kernel on one value per sub-block (Cayley-
  Hamilton: each state follows the scalar recursion with denominator 1 - tr(N) q + det(N) q^2,
  driven by adj(I - N q) applied to the input). A 10 s clip then costs ~3.3 ns a sample for
  a biquad instead of the kernel's ~5.8 (its per-sample recursion latency).
  """

  def __init__(self, sections: np.ndarray):
    A, B, C, D = np.zeros((0, 0)), np.zeros(0), np.zeros(0), 1.0
    for b0, b1, b2, _, a1, a2 in sections:  # series connection, section by section
      k = len(B)
      bs = np.array([b1 - a1 * b0, b2 - a2 * b0])
      grown = np.zeros((k + 2, k + 2))
      grown[:k, :k], grown[k:, :k] = A, np.outer(bs, C)
      grown[k:, k:] = [[-a1, 1.0], [-a2, 0.0]]
      A, B, C, D = grown, np.concatenate([B, bs * D]), np.concatenate([b0 * C, [1.0, 0.0]]), b0 * D
    CA, AB, P = C[None, :], B[None, :], A  # rows C A^i and A^i B for i < _SUB, by doubling
    while len(CA) < _SUB:
      CA, AB, P = np.concatenate([CA, CA @ P]), np.concatenate([AB, AB @ P.T]), P @ P
    self.M = P
    h = np.concatenate([[0.0, D], CA[: _SUB - 1] @ B])
    self.DLt = np.ascontiguousarray(h[_TOEPLITZ].T)  # Y = X @ DLt: the zero-state responses
    self.CL = np.ascontiguousarray(CA.T)  # (K, _SUB)
    self.BL = np.ascontiguousarray(AB[::-1].T)  # (K, _SUB): column j is A^(_SUB-1-j) B
    self.sections = []
    for k in range(0, len(B), 2):
      N = P[k : k + 2, k : k + 2]
      self.sections.append(
        (
          np.array([[-N[1, 1], N[0, 1]], [N[1, 0], -N[0, 0]]]),
          np.array([[1.0, 0.0, 0.0, 1.0, -np.trace(N), np.linalg.det(N)]]),
        )
      )

  def scaled(self, gain: float) -> "_BlockForm":
    out = object.__new__(_BlockForm)
    out.__dict__.update(self.__dict__, DLt=self.DLt * gain, BL=self.BL * gain)
    return out

  def __call__(self, x: np.ndarray, zi: np.ndarray) -> None:
    m = len(x) // _SUB
    X = x.reshape(m, _SUB)
    s = zi.reshape(-1)
    S = np.empty((len(s), m + 1))  # the state at each sub-block's start, and the final one
    G = self.BL @ X.T
    for k, (adj, den) in zip(range(0, len(s), 2), self.sections):
      u = S[k : k + 2]
      u[:, 0] = s[k : k + 2]
      u[:, 1:] = G[k : k + 2]
      if k:  # driven by the earlier sections' states too
        u[:, 1:] += self.M[k : k + 2, :k] @ S[:k, :m]
      u[:, 1:] += adj @ u[:, :-1]
      _sosfilt_kernel(den, u, np.zeros((2, 1, 2)))
    Y = X @ self.DLt
    Y += S[:, :m].T @ self.CL
    X[:] = Y
    s[:] = S[:, m]


_BLOCK_FORMS: dict[bytes, _BlockForm] = {}


class SosFilter:
  """A cascade of second-order sections with its state, filtering blocks in place.

  `gain` is folded into the filter, saving a pass over the data. The sosfilt kernel's cost is
  its per-sample recursion latency (~6 ns a sample here), the same for one section or four,
  which is why each linear stretch of a circuit is one cascade; cascades of up to two
  sections (after merging first-order pairs) run in block state-space form instead, ~1.8x
  faster (_BlockForm). Both give the same output to ~1e-13.
  """

  def __init__(self, sections: np.ndarray, gain: float = 1.0):
    self.sos = merge_first_order(np.asarray(sections, dtype=np.float64))
    self.zi = np.zeros((1, len(self.sos), 2))
    self.block = None
    if len(self.sos) <= 2 and _sosfilt_kernel is not None:
      key = self.sos.tobytes()
      form = _BLOCK_FORMS.get(key)
      if form is None:
        form = _BlockForm(self.sos)
        if len(_BLOCK_FORMS) < 256:  # the fixed filters of every device, and some more
          _BLOCK_FORMS[key] = form
      self.block = form.scaled(gain)
    self.sos[0, :3] *= gain

  def __call__(self, x: np.ndarray) -> np.ndarray:
    if _sosfilt_kernel is None:  # pragma: no cover
      x[:], self.zi[0] = scipy.signal.sosfilt(self.sos, x, zi=self.zi[0])
      return x
    head = len(x) // _SUB * _SUB if self.block is not None and len(x) >= 4 * _SUB else 0
    if head:
      self.block(x[:head], self.zi)
    if head < len(x):
      _sosfilt_kernel(self.sos, x[head:].reshape(1, -1), self.zi)
    return x


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


class SagEnvelope:
  """x / (1 + depth * env), env the one_pole_env of |x|, as a block processor (in place).

  Same 32-sample means and one-pole recursion as one_pole_env, state carried across blocks;
  every block but the last must hold whole 32-sample groups (run_blocks sees to it).
  """

  def __init__(self, tau_s: float, depth: float, scratch: np.ndarray, sr: int = SAMPLE_RATE):
    alpha = 1.0 - np.exp(-_ENV_BLOCK / (tau_s * sr))
    self.sos = np.array([[alpha, 0.0, 0.0, 1.0, alpha - 1.0, 0.0]])
    self.zi = np.zeros((1, 1, 2))
    self.depth, self.scratch = depth, scratch

  def __call__(self, x: np.ndarray) -> np.ndarray:
    n = len(x)
    groups = -(-n // _ENV_BLOCK)
    a = self.scratch[0, : groups * _ENV_BLOCK]
    np.abs(x, out=a[:n])
    a[n:] = 0.0  # a short last block: the zero padding of one_pole_env
    m = np.add.reduce(a.reshape(groups, _ENV_BLOCK), axis=1)
    m /= _ENV_BLOCK
    if _sosfilt_kernel is not None:
      _sosfilt_kernel(self.sos, m.reshape(1, -1), self.zi)
    else:  # pragma: no cover
      m[:], self.zi[0] = scipy.signal.sosfilt(self.sos, m, zi=self.zi[0])
    m *= self.depth
    m += 1.0
    full = n // _ENV_BLOCK
    body = x[: full * _ENV_BLOCK].reshape(full, _ENV_BLOCK)
    body /= m[:full, None]
    if full < groups:
      x[full * _ENV_BLOCK :] /= m[full]
    return x


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
  b2 = (
    t * (C1 * C2 * R1 * R4 + C1 * C3 * R1 * R4)
    - m * m * (C1 * C3 * R3**2 + C2 * C3 * R3**2)
    + m * (C1 * C3 * R1 * R3 + C1 * C3 * R3**2 + C2 * C3 * R3**2)
    + l * (C1 * C2 * R1 * R2 + C1 * C2 * R2 * R4 + C1 * C3 * R2 * R4)
    + l * m * (C1 * C3 * R2 * R3 + C2 * C3 * R2 * R3)
    + (C1 * C2 * R1 * R3 + C1 * C2 * R3 * R4 + C1 * C3 * R3 * R4)
  )
  k = C1 * C2 * C3
  b3 = (
    l * m * (k * R1 * R2 * R3 + k * R2 * R3 * R4)
    - m * m * (k * R1 * R3**2 + k * R3**2 * R4)
    + m * (k * R1 * R3**2 + k * R3**2 * R4)
    + t * k * R1 * R3 * R4
    - t * m * k * R1 * R3 * R4
    + t * l * k * R1 * R2 * R4
  )
  a1 = (C1 * R1 + C1 * R3 + C2 * R3 + C2 * R4 + C3 * R4) + m * C3 * R3 + l * (C1 * R2 + C2 * R2)
  a2 = (
    m * (C1 * C3 * R1 * R3 - C2 * C3 * R3 * R4 + C1 * C3 * R3**2 + C2 * C3 * R3**2)
    + l * m * (C1 * C3 * R2 * R3 + C2 * C3 * R2 * R3)
    - m * m * (C1 * C3 * R3**2 + C2 * C3 * R3**2)
    + l * (C1 * C2 * R2 * R4 + C1 * C2 * R1 * R2 + C1 * C3 * R2 * R4 + C2 * C3 * R2 * R4)
    + (
      C1 * C2 * R1 * R4
      + C1 * C3 * R1 * R4
      + C1 * C2 * R3 * R4
      + C1 * C2 * R1 * R3
      + C1 * C3 * R3 * R4
      + C2 * C3 * R3 * R4
    )
  )
  a3 = (
    l * m * (k * R1 * R2 * R3 + k * R2 * R3 * R4)
    - m * m * (k * R1 * R3**2 + k * R3**2 * R4)
    + m * (k * R3**2 * R4 + k * R1 * R3**2 - k * R1 * R3 * R4)
    + l * k * R1 * R2 * R4
    + k * R1 * R3 * R4
  )
  return bilinear3((0.0, b1, b2, b3), (1.0, a1, a2, a3), sr)


def bilinear3(b_s, a_s, sr: int = SAMPLE_RATE):
  """Bilinear transform of a cubic H(s) = sum b_i s^i / sum a_i s^i, in closed form."""
  c = 2.0 * sr

  def z(p):
    p0, p1, p2, p3 = p[0], p[1] * c, p[2] * c * c, p[3] * c**3
    return np.array(
      [p0 + p1 + p2 + p3, 3 * p0 + p1 - p2 - 3 * p3, 3 * p0 - p1 - p2 + 3 * p3, p0 - p1 + p2 - p3]
    )

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
