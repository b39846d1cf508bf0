"""NAM's standard capture signal recognised on ingest: blips, training region, replicate check.

NAM's own v3_0_0.wav cannot be shipped or downloaded, so the input here is synthesised with its
structure (48 kHz, 190 s; the validation signal in the first and the last 9 s, blips at 10.5 s
and 11.5 s), the numbers written out from NAM's layout rather than taken from the module under
test, and re-amped through a causal nonlinear minimum-phase "amp" with a known latency and a
24-bit interface's noise floor.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.signal
import soundfile as sf
import yaml

from ampspace.audio import alignment
from ampspace.di import karplus
from ampspace.errors import AmpSpaceError
from tfds_ampspace.amp_space import ingest, layouts, nam_capture

NAM_SR = 48_000
LENGTH = 190 * NAM_SR  # 9_120_000 samples
REPLAY = 9 * NAM_SR  # the validation signal, first and last 9 s
BLIPS = (int(10.5 * NAM_SR), int(11.5 * NAM_SR))
LATENCY_48K = 320  # the interface's latency: 294 samples at 44.1 kHz
TO_44K = 44_100 / NAM_SR
NOISE = 1e-5  # -100 dBFS, a 24-bit interface's floor


def _standard_input() -> np.ndarray:
  rng = np.random.default_rng(0)
  x = np.zeros(LENGTH)
  replay = karplus.phrase(3, 9.0, sr=NAM_SR)
  x[:REPLAY], x[-REPLAY:] = replay, replay
  for b in BLIPS:
    x[b] = 0.5
  t = np.arange(3 * NAM_SR) / NAM_SR  # 0:12-0:15 chirps
  x[12 * NAM_SR : 15 * NAM_SR] = 0.3 * scipy.signal.chirp(t, 30, 3, 18000, method="log")
  x[15 * NAM_SR : 17 * NAM_SR] = 0.1 * rng.standard_normal(2 * NAM_SR)  # 0:15-0:17 noise
  riff = karplus.phrase(4, 10.0, sr=NAM_SR)  # 0:17-3:00.5 training audio
  n = int(180.5 * NAM_SR) - 17 * NAM_SR
  x[17 * NAM_SR : 17 * NAM_SR + n] = np.tile(riff, n // len(riff) + 1)[:n]
  return x


def _amp(x: np.ndarray, gain: float) -> np.ndarray:
  """Causal and minimum-phase around a nonlinearity, as a real amp is."""
  b, a = scipy.signal.butter(2, 700, btype="highpass", fs=NAM_SR)
  y = np.tanh(gain * scipy.signal.lfilter(b, a, x) + 0.2) - np.tanh(0.2)
  b, a = scipy.signal.butter(4, 3500, fs=NAM_SR)
  return 0.5 * scipy.signal.lfilter(b, a, y)


def _record(clean: np.ndarray, seed: int) -> np.ndarray:
  out = np.zeros_like(clean)
  out[LATENCY_48K:] = clean[:-LATENCY_48K]
  return out + NOISE * np.random.default_rng(seed).standard_normal(len(out))


def _to_44k(x: np.ndarray) -> np.ndarray:
  return scipy.signal.resample_poly(x, 147, 160)


def _esr(a, b) -> float:
  return float(np.mean((np.asarray(a, np.float64) - b) ** 2) / np.mean(np.square(b)))


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
  """di/input.wav (NAM's structure), a good capture, one whose gain moved halfway through."""
  d = tmp_path_factory.mktemp("nam")
  di = _standard_input()
  os.makedirs(d / "di")
  sf.write(d / "di" / "input.wav", di, NAM_SR, subtype="PCM_24")
  clean = _amp(di, 12.0)
  sf.write(d / "good.wav", _record(clean, 1), NAM_SR, subtype="PCM_24")
  moved = np.concatenate([clean[: LENGTH // 2], _amp(di, 8.0)[LENGTH // 2 :]])
  sf.write(d / "moved.wav", _record(moved, 2), NAM_SR, subtype="PCM_24")
  return {"dir": d, "di": di, "clean_44k": _to_44k(clean)}


def _folder(tmp_path, capture, name: str, output: str, **fields) -> str:
  """A NAM-layout folder: knobs.yaml with `fields` beside a link to a capture's output."""
  folder = tmp_path / name
  folder.mkdir(parents=True)
  (folder / "knobs.yaml").write_text(
    yaml.safe_dump({"device": "combo", "device_type": "amp", "knobs": {"gain": 5}, **fields})
  )
  os.symlink(capture["dir"] / output, folder / "output.wav")
  return str(folder)


def _read(folder, capture) -> layouts.Clip:
  [clip] = layouts.read_nam_layout(folder, di_dirs=[str(capture["dir"] / "di")])
  return clip


def _s(seconds: float) -> int:
  """A time in the 44.1 kHz samples every Clip position counts."""
  return int(round(seconds * 44_100))


def test_standard_capture_latency_from_blips_regions_and_resampling(tmp_path, capture):
  clip = _read(_folder(tmp_path, capture, "amp", "good.wav"), capture)
  # NAM's 48 kHz positions, converted to the 44.1 kHz the resampled audio has.
  assert (clip.blip_at, clip.more_blips) == (_s(10.5), (_s(11.5),))
  assert clip.replicates == ((0, _s(9)), (_s(181), _s(190)))
  # The training region: after the blips' section (0:12), before the second replay (3:01).
  assert (clip.di_start, clip.di_end) == (_s(12), _s(181))
  assert clip.di_start > max(clip.blip_at, *clip.more_blips) and clip.di_start > _s(9)

  # Strict (44.1 kHz only): the 48 kHz capture must be resampled, said in one line.
  with pytest.raises(AmpSpaceError, match=r"input\.wav: sample rate is 48000 Hz.*resample=True"):
    ingest.load_pair(clip, ingest.IngestOptions())

  pair = ingest.load_pair(clip, ingest.IngestOptions(resample=True))
  # Measured on the blips at 48 kHz, where the onset is sharp: exactly 320 * 44.1/48 = 294
  # (measured on the resampled audio it would read 290: the resampler rings ahead of it).
  assert (pair.latency, pair.latency_source) == (int(LATENCY_48K * TO_44K), "blip")
  assert pair.original_sample_rate == NAM_SR and not pair.warnings
  di_44k = _to_44k(capture["di"])
  assert len(pair.di) == len(pair.out) == _s(181) - _s(12)
  np.testing.assert_allclose(pair.di, di_44k[_s(12) : _s(181)], atol=1e-5)
  # The output lines up with the device's latency-free response (one sample off: ESR ~0.07).
  assert _esr(pair.out, capture["clean_44k"][_s(12) : _s(181)]) < 1e-3


def test_gain_moved_between_the_validation_replays_is_rejected_naming_the_file(tmp_path, capture):
  _folder(tmp_path, capture, "captures/a", "good.wav")
  _folder(tmp_path, capture, "captures/b", "moved.wav")
  clips = layouts.read_nam_layout(str(tmp_path / "captures"), di_dirs=[str(capture["dir"] / "di")])
  assert [c.clip_id for c in clips] == ["a/output.wav", "b/output.wav"]
  opts = ingest.IngestOptions(resample=True, skip_invalid=True)
  result = ingest.validate_clips(clips, opts, progress=False)
  assert [c.output_path for c in result.clips] == [clips[0].output_path]
  [skipped] = result.report["skipped"]
  assert skipped["file"] == clips[1].output_path
  reason = skipped["reason"]
  assert (
    reason.startswith(f"{clips[1].output_path}: the two validation replays differ (self-ESR ")
    and "\n" not in reason
  )
  assert float(reason.split("self-ESR ")[1].split()[0]) > nam_capture.REPLICATE_ESR
  # The good capture's replays agree far below NAM's 0.01 (noise only).
  good = nam_capture.replicate_esr(
    _to_44k(sf.read(clips[0].output_path)[0]), clips[0].replicates, int(LATENCY_48K * TO_44K)
  )
  assert good < 1e-4


def test_an_annotation_wins_over_the_convention(tmp_path, capture):
  lag = int(LATENCY_48K * TO_44K)
  clip = _read(
    _folder(tmp_path, capture, "lat", "good.wav", latency_samples=lag, di_start=_s(20)), capture
  )
  assert (clip.latency_samples, clip.blip_at, clip.more_blips) == (lag, None, ())
  assert (clip.di_start, clip.di_end) == (_s(20), _s(181))  # di_end still the convention's
  assert clip.replicates == ((0, _s(9)), (_s(181), _s(190)))  # and still checked
  pair = ingest.load_pair(clip, ingest.IngestOptions(resample=True))
  assert (pair.latency, pair.latency_source) == (lag, "annotation")
  # The output spans the whole DI file: cut at the annotated di_start, not at its start.
  assert _esr(pair.out, capture["clean_44k"][_s(20) : _s(181)]) < 1e-3

  clip = _read(_folder(tmp_path, capture, "blip", "good.wav", blip_at=_s(11.5)), capture)
  assert (clip.blip_at, clip.more_blips) == (_s(11.5), ())

  clip = _read(_folder(tmp_path, capture, "off", "good.wav", nam_standard=False), capture)
  assert (clip.blip_at, clip.replicates, clip.di_start, clip.di_end) == (None, None, 0, -1)


def test_a_non_standard_input_is_unaffected(tmp_path, capture, monkeypatch):
  # A near miss: NAM's length and rate, but its last 9 s are another signal.
  di = capture["di"].copy()
  di[-REPLAY:] = karplus.phrase(9, 9.0, sr=NAM_SR)
  other = tmp_path / "other"
  other.mkdir()
  sf.write(other / "input.wav", di, NAM_SR, subtype="PCM_24")
  sf.write(other / "output.wav", np.tanh(3 * di[:NAM_SR]), NAM_SR)
  (other / "knobs.yaml").write_text("device: combo\nknobs: {gain: 5}\n")
  [clip] = layouts.read_nam_layout(str(other), di_dirs=[])
  assert (clip.blip_at, clip.more_blips, clip.replicates) == (None, (), None)
  assert (clip.di_start, clip.di_end, clip.latency_samples) == (0, -1, None)
  # Insisting on the standard names the knob file, the input and what is wrong.
  (other / "knobs.yaml").write_text("device: combo\nnam_standard: v3\nknobs: {gain: 5}\n")
  with pytest.raises(
    AmpSpaceError,
    match=r"knobs\.yaml: nam_standard: v3, but .*input\.wav "
    r"is not NAM's standard v3 input: its first and last "
    r"9 s differ",
  ):
    layouts.read_nam_layout(str(other), di_dirs=[])
  # NAM's own recognition, by the file's hash, is honoured whatever the structure says.
  monkeypatch.setattr(nam_capture, "V3_MD5", nam_capture._md5(str(other / "input.wav")))
  assert layouts.read_nam_layout(str(other), di_dirs=[])[0].replicates is not None

  # A short 44.1 kHz pair ingests exactly as before: no shift, no region, no replicate check.
  small = tmp_path / "small"
  small.mkdir()
  x = karplus.phrase(7, 0.3)
  sf.write(small / "input.wav", x, 44_100, subtype="FLOAT")
  sf.write(small / "output.wav", 0.5 * x, 44_100, subtype="FLOAT")
  (small / "knobs.yaml").write_text("device: combo\nknobs: {gain: 5}\n")
  [clip] = layouts.read_nam_layout(str(small), di_dirs=[])
  assert (clip.blip_at, clip.replicates, clip.di_start, clip.di_end) == (None, None, 0, -1)
  pair = ingest.load_pair(clip, ingest.IngestOptions())
  assert pair.latency_source == "none"
  np.testing.assert_allclose(pair.out, 0.5 * x, atol=1e-6)
  (small / "knobs.yaml").write_text("device: combo\nnam_standard: maybe\nknobs: {gain: 5}\n")
  with pytest.raises(AmpSpaceError, match=r"knobs\.yaml: nam_standard must be v3 or false"):
    layouts.read_nam_layout(str(small), di_dirs=[])


def _two_blip_capture(second_extra_delay: int):
  """Blips at 5000 and 15000, the second one's response `second_extra_delay` later still."""
  di = np.zeros(30000)
  di[5000] = di[15000] = 0.5
  response = _amp(di[5000:13000], 12.0)  # the amp's response to one blip
  out = NOISE * np.random.default_rng(1).standard_normal(len(di))
  out[5040:13040] += response
  out[15040 + second_extra_delay : 23040 + second_extra_delay] += response
  return di, out


def test_several_blips_must_agree():
  di, out = _two_blip_capture(0)
  assert alignment.blips_latency(di, out, (5000, 15000), where="cap.wav") == 40
  di, out = _two_blip_capture(30)
  with pytest.raises(
    AmpSpaceError,
    match=r"cap\.wav: the calibration blips at DI samples "
    r"\[5000, 15000\] give latencies \[40, 70\]",
  ):
    alignment.blips_latency(di, out, (5000, 15000), where="cap.wav")


def test_replicates_need_the_second_replay_recorded():
  out = np.ones(1000)
  assert nam_capture.replicate_esr(out, ((0, 300), (600, 900)), 50) == 0.0
  with pytest.raises(AmpSpaceError, match=r"out\.wav: ends at sample 700, before the second"):
    nam_capture.replicate_esr(out[:700], ((0, 300), (600, 900)), 50, where="out.wav")
