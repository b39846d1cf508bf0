"""Native devices: every knob moves what it should, determinism, errors, the zoo's coverage."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from ampspace import SAMPLE_RATE
from ampspace.conditioning import DEVICE_VOCAB, KNOB_VOCAB, canonical_knob
from ampspace.devices import NATIVE_DEVICES, dsp, get_device
from ampspace.devices.fuzz import Fuzz
from ampspace.devices.latency import measure_latency, run_compensated
from ampspace.di.karplus import phrase
from ampspace.errors import AmpSpaceError

SR = SAMPLE_RATE


@pytest.fixture(scope="module")
def di():
  return phrase(3, 0.75)


def sine(freq, seconds=0.5, amp=0.5):
  t = np.arange(int(seconds * SR)) / SR
  return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def thd(y, f0):
  """Total harmonic distortion of a steady tone: harmonic power over fundamental power."""
  y = y[len(y) // 4 :] * np.hanning(len(y) - len(y) // 4)
  spec = np.abs(np.fft.rfft(y)) ** 2
  freqs = np.fft.rfftfreq(len(y), 1 / SR)

  def band(f):
    return spec[np.abs(freqs - f) < 15].sum()

  return sum(band(k * f0) for k in range(2, 10)) / band(f0)


def crest(y):
  return np.max(np.abs(y)) / np.sqrt(np.mean(y.astype(np.float64) ** 2))


def band_energy(y, lo, hi, ref=(150.0, 1000.0)):
  """Energy in [lo, hi) relative to a reference band (level-independent, tilt-sensitive)."""
  spec = np.abs(np.fft.rfft(y)) ** 2
  freqs = np.fft.rfftfreq(len(y), 1 / SR)
  ref_e = spec[(freqs >= ref[0]) & (freqs < ref[1])].sum()
  return spec[(freqs >= lo) & (freqs < hi)].sum() / ref_e


def test_zoo_has_six_families_and_ten_variants():
  types = {get_device(n).device_type for n in NATIVE_DEVICES}
  assert {"amp", "overdrive", "distortion", "fuzz", "compressor", "eq"} <= types
  assert len(NATIVE_DEVICES) >= 10


@pytest.mark.parametrize("name", sorted(NATIVE_DEVICES))
def test_device_contract(name, di):
  dev = get_device(name)
  out = dev.process(di, None, SR)
  assert out.dtype == np.float32 and out.shape == di.shape
  assert np.all(np.isfinite(out)) and np.sqrt(np.mean(out**2)) > 1e-4
  np.testing.assert_array_equal(out, get_device(name).process(di, None, SR))  # deterministic
  assert name in DEVICE_VOCAB
  canon = [canonical_knob(k) for k in dev.knob_names]
  assert all(k in KNOB_VOCAB for k in canon), canon
  assert len(set(canon)) == len(canon)
  assert all(k.minimum <= k.default <= k.maximum for k in dev.knobs)
  desc = dev.describe()
  assert desc["device"] == name and desc["device_type"] == dev.device_type


@pytest.mark.parametrize(
  "name,knob",
  [
    ("tube_amp", "gain"),
    ("tube_amp_fender", "gain"),
    ("ts_overdrive", "drive"),
    ("rat_distortion", "drive"),
    ("fuzz_face", "fuzz"),
    ("big_muff", "sustain"),
  ],
)
def test_gain_raises_distortion(name, knob):
  dev = get_device(name)
  x = sine(220.0, amp=0.3)
  lo, hi = (thd(dev.process(x, {knob: v}), 220.0) for v in (1.0, 9.0))
  assert hi > 2.0 * lo, (lo, hi)
  di = phrase(1, 0.75)
  assert crest(dev.process(di, {knob: 9.0})) < crest(dev.process(di, {knob: 1.0}))


@pytest.mark.parametrize("name", ["tube_amp", "tube_amp_mesa", "eq_baxandall"])
def test_treble_raises_high_band(name, di):
  dev = get_device(name)
  noise = np.random.default_rng(0).normal(0, 0.05, SR // 2).astype(np.float32)
  for x in (noise, di):
    lo, hi = (band_energy(dev.process(x, {"treble": v}), 3000, 12000) for v in (1.0, 9.0))
    assert hi > 1.5 * lo, (lo, hi)


def test_bass_raises_low_band(di):
  for name in ("tube_amp", "eq_baxandall"):
    dev = get_device(name)
    lo, hi = (
      band_energy(dev.process(di, {"bass": v}), 40, 200, (1000.0, 4000.0)) for v in (1.0, 9.0)
    )
    assert hi > 1.5 * lo, (name, lo, hi)


def test_tone_stack_controls_interact():
  """In a passive FMV stack the bass pot also moves the mids (it loads the same network)."""

  def mag(t, m, l, f):
    b, a = dsp.fmv_tone_stack(t, m, l, "fender")
    return abs(scipy.signal.freqz(b, a, [f], fs=SR)[1][0])

  assert abs(20 * np.log10(mag(0.5, 0.5, 1.0, 700) / mag(0.5, 0.5, 0.0, 700))) > 1.0
  assert mag(0.5, 1.0, 0.5, 700) > 1.5 * mag(0.5, 0.0, 0.5, 700)  # mid does its own job


def test_presence_and_master():
  dev = get_device("tube_amp")
  noise = np.random.default_rng(1).normal(0, 0.05, SR // 2).astype(np.float32)
  lo, hi = (band_energy(dev.process(noise, {"presence": v}), 3000, 12000) for v in (0.0, 10.0))
  assert hi > 1.3 * lo
  quiet, loud = (np.std(dev.process(noise, {"master": v})) for v in (1.0, 9.0))
  assert loud > 2 * quiet


def test_compressor_ratio_shrinks_dynamic_range():
  x = np.concatenate([sine(440, 0.5, 0.9), sine(440, 0.5, 0.05)])

  def spread_db(y):
    loud, quiet = y[SR // 8 : SR // 2], y[SR // 2 + SR // 8 :]
    return 20 * np.log10(np.std(loud) / np.std(quiet))

  for name in ("compressor", "compressor_feedback"):
    dev = get_device(name)
    spreads = [spread_db(dev.process(x, {"ratio": r, "threshold": 4.0})) for r in (0.0, 5.0, 10.0)]
    assert spreads[0] > spreads[1] > spreads[2], (name, spreads)
    assert spreads[0] - spreads[2] > 10.0
  dev = get_device("compressor")
  fast, slow = (dev.process(x, {"attack": a, "ratio": 10.0}) for a in (0.0, 10.0))
  onset = slice(0, SR // 200)  # the first 5 ms of the loud note: a slow attack lets it through
  assert np.max(np.abs(slow[onset])) > 1.2 * np.max(np.abs(fast[onset]))


def test_gated_fuzz_gates():
  """With the bias toward cutoff, a decaying note sputters and goes silent before the input."""
  t = np.arange(SR) / SR
  x = (0.5 * np.exp(-t / 0.15) * np.sin(2 * np.pi * 196 * t)).astype(np.float32)
  dev = get_device("gated_fuzz")
  tail = slice(int(0.45 * SR), int(0.8 * SR))  # input still audible here (~-30 dB)
  open_, gated = (dev.process(x, {"bias": b}) for b in (0.0, 10.0))
  head = slice(0, int(0.1 * SR))
  open_ratio = np.std(open_[tail]) / np.std(open_[head])
  gated_ratio = np.std(gated[tail]) / np.std(gated[head])
  assert gated_ratio < 0.1 * open_ratio, (open_ratio, gated_ratio)
  assert isinstance(dev, Fuzz) and dev.attributes["topology"] == "gated"


def test_adaa_reduces_aliasing():
  """A 5 kHz tone driven hard: energy off the harmonic series (aliases) drops with ADAA."""
  f0, n = 4987.0, SR
  x = 8.0 * np.sin(2 * np.pi * f0 * np.arange(n) / SR)

  def alias_energy(y):
    spec = np.abs(np.fft.rfft(y * np.hanning(n))) ** 2
    freqs = np.fft.rfftfreq(n, 1 / SR)
    harmonic = np.zeros_like(freqs, bool)
    for k in range(1, 5):
      harmonic |= np.abs(freqs - k * f0) < 30
    return spec[~harmonic].sum() / spec.sum()

  for naive, aa in ((np.tanh, dsp.tanh_adaa), (dsp.hard_clip, dsp.hard_clip_adaa)):
    assert alias_energy(aa(x)) < 0.5 * alias_energy(naive(x))


def test_adaa_matches_shaper_on_slow_signals():
  x = 3.0 * np.sin(2 * np.pi * 50 * np.arange(4410) / SR)
  np.testing.assert_allclose(dsp.tanh_adaa(x)[1:], np.tanh(0.5 * (x[1:] + x[:-1])), atol=1e-3)


@pytest.mark.parametrize(
  "knobs,message",
  [
    ({"volume": 3.0}, "no knob 'volume'"),
    ({"gain": 11.0}, "outside"),
    ({"gain": float("nan")}, "not finite"),
  ],
)
def test_bad_knobs_are_named(knobs, message, di):
  with pytest.raises(AmpSpaceError, match=message) as e:
    get_device("tube_amp").process(di, knobs, SR)
  assert "tube_amp" in str(e.value)


def test_bad_input_is_named(di):
  dev = get_device("ts_overdrive")
  bad = di.copy()
  bad[10] = np.nan
  with pytest.raises(AmpSpaceError, match="NaN"):
    dev.process(bad, None, SR)
  with pytest.raises(AmpSpaceError, match="mono"):
    dev.process(np.stack([di, di], axis=1), None, SR)
  with pytest.raises(AmpSpaceError, match="48000 Hz"):
    dev.process(di, None, 48000)
  with pytest.raises(AmpSpaceError, match="unknown device 'nope'"):
    get_device("nope")


def test_latency_measured_and_compensated():
  delay = 37

  def delayed(x):
    return np.concatenate([np.zeros(delay, x.dtype), x[:-delay]]) * 0.5

  assert measure_latency(delayed) == delay
  x = sine(300, 0.1)
  np.testing.assert_allclose(run_compensated(delayed, x, delay), 0.5 * x, atol=1e-7)
  with pytest.raises(AmpSpaceError, match="no response"):
    measure_latency(lambda x: np.zeros_like(x), where="mute")


def test_cabinet_ir_matches_filters_and_blend_darkens():
  from ampspace.devices.cabinet import convolve_ir, impulse_response

  x = np.random.default_rng(2).normal(0, 0.1, 8192)
  cab = get_device("cab_4x12")
  np.testing.assert_allclose(
    convolve_ir(x, impulse_response("4x12", 8192, 0.3)),
    cab.process(x.astype(np.float32), {"blend": 3.0}),
    atol=1e-5,
  )
  on, off = (
    band_energy(cab.process(x.astype(np.float32), {"blend": b}), 3000, 12000) for b in (0.0, 10.0)
  )
  assert off < 0.7 * on


@pytest.mark.parametrize("name", sorted(NATIVE_DEVICES))
def test_block_size_does_not_change_the_sound(name, di, monkeypatch):
  """Devices run on cached blocks with state carried across them: the block size must not
  matter. A silent gap (where ADAA falls back to the midpoint) straddles block edges."""
  x = np.concatenate([di[:5000], np.zeros(300, np.float32), di[5000:]])  # 33375 samples
  dev = get_device(name)
  knobs = {k.name: k.minimum + 0.8 * (k.maximum - k.minimum) for k in dev.knobs}
  monkeypatch.setattr(dsp, "BLOCK_SIZE", 1 << 20)  # one block: the whole signal at once
  whole = dev.process(x, knobs)
  for size in (96, 4096):
    monkeypatch.setattr(dsp, "BLOCK_SIZE", size)
    np.testing.assert_allclose(
      dev.process(x, knobs),
      whole,
      rtol=0,
      atol=1e-6 * np.max(np.abs(whole)),
      err_msg=f"block {size}",
    )


@pytest.mark.parametrize(
  "stage,f,F",
  [
    (lambda s: dsp.tanh_stage(s), np.tanh, dsp.logcosh),
    (lambda s: dsp.hard_clip_stage(s), dsp.hard_clip, dsp._hard_clip_F),
    (
      lambda s: dsp.asym_sat_stage(s, 0.5, bias=-0.2, remove_dc=True),
      lambda v: dsp.asym_sat(v, 0.5),
      None,
    ),
  ],
)
def test_adaa_stage_is_the_difference_quotient(stage, f, F):
  """Blockwise ADAA equals (F(x[n]) - F(x[n-1])) / (x[n] - x[n-1]) over the whole signal, and
  f at the midpoint where the input does not move."""
  rng = np.random.default_rng(4)
  x = np.concatenate([rng.normal(0, 2.0, 300), np.full(40, 0.3), rng.normal(0, 2.0, 300)])
  st = stage(dsp.scratch_for(len(x), 64))
  y = dsp.run_blocks(lambda b, _: st(b), x, np.float64, block_size=64)
  v = x + st.bias
  if F is None:  # asym_sat's antiderivative by numerical integration from 0
    grid = np.linspace(-10, 10, 400001)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (f(grid[1:]) + f(grid[:-1])) * np.diff(grid))])
    F = lambda u: np.interp(u, grid, cum - np.interp(0.0, grid, cum))  # noqa: E731
  prev = np.concatenate([[0.0], v[:-1]])
  with np.errstate(divide="ignore", invalid="ignore"):
    ref = (F(v) - F(prev)) / (v - prev)
  flat = np.abs(v - prev) < 1e-6
  ref[flat] = f(0.5 * (v + prev))[flat]
  ref -= st.dc
  assert flat.sum() >= 39
  np.testing.assert_allclose(y, ref, atol=1e-6)


def test_sag_envelope_blocks_match_one_pole_env():
  x = np.random.default_rng(5).normal(0, 1.0, 5000)  # not a multiple of 32
  env = dsp.SagEnvelope(0.06, 0.8, dsp.scratch_for(len(x), 128))
  y = dsp.run_blocks(lambda b, _: env(b), x, np.float64, block_size=128)
  np.testing.assert_allclose(y, x / (1.0 + 0.8 * dsp.one_pole_env(x, 0.06)), rtol=1e-12)


@pytest.mark.parametrize(
  "cascade",
  [
    lambda: dsp.sos(dsp.highpass(720.0), dsp.lowpass(6000.0)),  # two first-order: one biquad
    lambda: dsp.sos(dsp.highpass(20.0), dsp.lowpass(15000.0, order=2)),
    lambda: dsp.sos(dsp.highpass(60.0), dsp.highpass(300.0), dsp.lowpass(19000.0)),
    lambda: scipy.signal.cheby1(4, 1.0, 3000.0, fs=SR, output="sos"),  # resonant, two sections
    lambda: dsp.sos(dsp.peaking(100.0, 5.0, q=1.4), *dsp.lowpass_sections(5000.0)),
  ],
)  # kernel
def test_sos_filter_blocks_equal_sosfilt(cascade):
  """SosFilter (block state-space form or the kernel, state carried) equals one sosfilt call
  over the whole signal, for any split into blocks, gain folded in."""
  sections = cascade()
  x = np.random.default_rng(6).normal(0, 1.0, 20000)
  ref = 0.3 * scipy.signal.sosfilt(sections, x)
  f = dsp.SosFilter(sections, gain=0.3)
  y = x.copy()
  edges = [0, 5, 1000, 1001, 4096 + 77, 12000, 20000]  # ragged: sub-block remainders everywhere
  for a, b in zip(edges[:-1], edges[1:]):
    f(y[a:b])
  np.testing.assert_allclose(y, ref, rtol=0, atol=1e-11 * np.max(np.abs(ref)))
