"""ampspace.fit: input.wav / output.wav to a model. The pure pieces (segments, splits, the
latency shift, pooled ESR), the one-line errors, the capture folder (written whole, pinned
splits the builder honours, reused only for the same call), and (slow) the whole command on a
40 s synthetic capture, held to a test ESR below 0.1."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import scipy.signal
import soundfile as sf
import yaml

from ampspace import fit
from ampspace.audio.metrics import pre_emphasis
from ampspace.di import karplus
from ampspace.errors import AmpSpaceError
from tfds_ampspace.amp_space import layouts

SR = 44100
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def no_di_dir_from_the_environment(monkeypatch):
  monkeypatch.delenv(layouts.DI_DIR_ENV, raising=False)


def device(x: np.ndarray) -> np.ndarray:
  """The test's device: tanh distortion, then a one-pole lowpass at 3 kHz."""
  a = np.exp(-2 * np.pi * 3000 / SR)
  return (0.5 * scipy.signal.lfilter([1 - a], [1, -a], np.tanh(4 * x))).astype(np.float32)


def write_pair(folder, seconds=12.0, seed=0, latency=0, rate=SR, channels=1):
  """input.wav and output.wav of `seconds` of DI through `device`, the output `latency`
  samples late (as an interface records it)."""
  os.makedirs(folder, exist_ok=True)
  x = karplus.phrase(seed, seconds).astype(np.float32)
  y = np.concatenate([np.zeros(latency, np.float32), device(x)])
  paths = (os.path.join(folder, "input.wav"), os.path.join(folder, "output.wav"))
  for path, data in zip(paths, (x, y)):
    sf.write(
      path, np.stack([data] * channels, axis=1) if channels > 1 else data, rate, subtype="PCM_24"
    )
  return paths


def options(tmp_path, inp, out, **kw):
  return {
    "input": inp,
    "output": out,
    "workdir": str(tmp_path / "run"),
    "model": "nam_layout",
    "minutes": 1.0,
    "device": "my_amp",
    "knobs": {},
    "latency": 0,
    "test_input": None,
    "test_output": None,
    "test_fraction": 0.15,
    "segment_seconds": 2.0,
    "nam": None,
    "init_from": "",
    **kw,
  }


# ---------------------------------------------------------------- pure pieces
def test_segment_bounds_cover_everything_in_whole_segments():
  assert fit.segment_bounds(10, 5) == ((0, 5), (5, 10))
  assert fit.segment_bounds(13, 5) == ((0, 5), (5, 10), (10, 13))  # a remainder >= half
  assert fit.segment_bounds(11, 5) == ((0, 5), (5, 11))  # a shorter one joins
  assert fit.segment_bounds(3, 5) == ((0, 3),)
  assert fit.segment_bounds(0, 5) == ()
  for n in (1, 7, 99, 1000):
    b = fit.segment_bounds(n, 10)
    assert b[0][0] == 0 and b[-1][1] == n and all(p[1] == q[0] for p, q in zip(b, b[1:]))
  with pytest.raises(AmpSpaceError):
    fit.segment_bounds(10, 0)


def test_split_segments_train_then_validation_then_the_held_out_end():
  assert fit.split_segments(8, 0.15) == ("train",) * 6 + ("validation", "test")
  assert fit.split_segments(20, 0.15) == ("train",) * 15 + ("validation",) * 2 + ("test",) * 3
  assert fit.split_segments(3, 0.15) == ("train", "validation", "test")
  # a separate test pair: the capture gives train and validation only
  assert fit.split_segments(4, 0.0) == ("train",) * 3 + ("validation",)
  with pytest.raises(AmpSpaceError, match="2 usable segment.*at least 3"):
    fit.split_segments(2, 0.15)
  with pytest.raises(AmpSpaceError, match="at least 2"):
    fit.split_segments(1, 0.0)


def test_latency_shift_moves_the_output_earlier():
  x = np.arange(100, dtype=np.float32)
  y = np.concatenate([np.zeros(7, np.float32), x])  # 7 samples late
  np.testing.assert_array_equal(fit.shift_earlier(y, 7)[:100], x)
  np.testing.assert_array_equal(fit.shift_earlier(y, 0), y)
  with pytest.raises(AmpSpaceError, match=">= 0"):
    fit.shift_earlier(y, -1)
  with pytest.raises(AmpSpaceError, match="longer than the output"):
    fit.shift_earlier(y, 107)


def test_pooled_esr_is_total_error_over_total_target():
  rng = np.random.default_rng(0)
  t = [rng.standard_normal(1000), 0.1 * rng.standard_normal(500)]
  p = [v + 0.05 * rng.standard_normal(len(v)) for v in t]
  esr, esr_pre = fit.pooled_esr(zip(t, p))
  err = sum(np.sum((a - b) ** 2) for a, b in zip(t, p))
  assert esr == pytest.approx(err / sum(np.sum(a**2) for a in t))
  err_pre = sum(np.sum((pre_emphasis(a) - pre_emphasis(b)) ** 2) for a, b in zip(t, p))
  assert esr_pre == pytest.approx(err_pre / sum(np.sum(pre_emphasis(a) ** 2) for a in t))
  assert fit.pooled_esr([(t[0], t[0])]) == (0.0, 0.0)
  with pytest.raises(AmpSpaceError, match="silent"):
    fit.pooled_esr([(np.zeros(10), np.ones(10))])


def test_knobs_are_dials_of_known_names():
  assert fit.parse_knobs("gain=6, tone=4") == {"gain": 6.0, "tone": 4.0}
  assert fit.parse_knobs("") == {}
  with pytest.raises(AmpSpaceError, match="'wobble' is not a knob name"):
    fit.parse_knobs("wobble=3")
  with pytest.raises(AmpSpaceError, match="outside the dial"):
    fit.parse_knobs("gain=11")
  with pytest.raises(AmpSpaceError, match="name=value"):
    fit.parse_knobs("gain")


def test_final_line():
  line = fit.final_line(
    "runs/a/model", {"test_esr": 0.01234, "test_esr_pre_emphasised": 0.0456, "test_seconds": 12.34}
  )
  assert line == (
    "model: runs/a/model  test ESR 0.0123 (pre-emphasised 0.0456) on 12.3 s of held-out audio"
  )


# ---------------------------------------------------------------- reading: one-line errors
def one_line(excinfo) -> str:
  text = str(excinfo.value)
  assert "\n" not in text
  return text


def test_read_pair_trims_and_shifts_by_the_given_latency(tmp_path):
  inp, out = write_pair(str(tmp_path), seconds=2.0, latency=117)
  x, y = fit.read_pair(inp, out, 117)
  assert len(x) == len(y) == 2 * SR
  expected = device(sf.read(inp, dtype="float32")[0])
  assert np.max(np.abs(y - expected)) < 1e-4  # aligned: 24-bit rounding only
  _, y0 = fit.read_pair(inp, out, 0)  # not shifted: nothing is guessed
  assert np.max(np.abs(y0 - expected)) > 0.1


def test_missing_file_is_one_line_naming_it(tmp_path):
  inp, _ = write_pair(str(tmp_path), seconds=1.0)
  missing = str(tmp_path / "nope.wav")
  with pytest.raises(AmpSpaceError) as e:
    fit.read_pair(inp, missing, 0)
  assert one_line(e) == f"--output={missing}: file not found"
  with pytest.raises(AmpSpaceError, match=re.escape(f"--input={missing}: file not found")):
    fit.check_options(options(tmp_path, missing, inp))


def test_mismatched_sample_rates_are_one_line_naming_both(tmp_path):
  inp, _ = write_pair(str(tmp_path / "a"), seconds=1.0)
  _, out48 = write_pair(str(tmp_path / "b"), seconds=1.0, rate=48000)
  with pytest.raises(AmpSpaceError) as e:
    fit.read_pair(inp, out48, 0)
  text = one_line(e)
  assert out48 in text and inp in text and "48000 Hz" in text and "44100 Hz" in text
  in48, out48 = write_pair(str(tmp_path / "c"), seconds=1.0, rate=48000)
  with pytest.raises(AmpSpaceError) as e:
    fit.read_pair(in48, out48, 0)
  assert in48 in one_line(e) and "does not resample" in str(e.value)


def test_stereo_is_one_line_asking_for_a_downmix(tmp_path):
  inp, _ = write_pair(str(tmp_path / "a"), seconds=1.0)
  _, stereo = write_pair(str(tmp_path / "b"), seconds=1.0, channels=2)
  with pytest.raises(AmpSpaceError) as e:
    fit.read_pair(inp, stereo, 0)
  assert one_line(e).startswith(f"--output={stereo}: has 2 channels") and "downmix" in str(e.value)


def test_lengths_more_than_a_second_apart_are_refused(tmp_path):
  inp, _ = write_pair(str(tmp_path / "a"), seconds=3.0)
  _, short = write_pair(str(tmp_path / "b"), seconds=1.5)
  with pytest.raises(AmpSpaceError) as e:
    fit.read_pair(inp, short, 0)
  assert short in one_line(e) and "more than 1 s" in str(e.value)
  _, nearly = write_pair(str(tmp_path / "c"), seconds=2.5)
  x, y = fit.read_pair(inp, nearly, 0)  # within 1 s: the longer one's tail is trimmed
  assert len(x) == len(y) == int(2.5 * SR)


def test_option_errors_are_one_line(tmp_path):
  inp, out = write_pair(str(tmp_path), seconds=1.0)
  for bad, message in (
    ({"minutes": 0}, "--minutes"),
    ({"test_input": inp}, "go together"),
    ({"segment_seconds": 0.2}, "--segment_seconds"),
    ({"nam": "x.json"}, "must end in .nam"),
    ({"latency": -3}, "--latency"),
    ({"device": ""}, "--device"),
  ):
    with pytest.raises(AmpSpaceError, match=message) as e:
      fit.check_options(options(tmp_path, inp, out, **bad))
    one_line(e)
  with pytest.raises(AmpSpaceError, match="only --model=nam_layout maps to NAM") as e:
    fit.fit(options(tmp_path, inp, out, model="lstm", nam=str(tmp_path / "a.nam")))
  one_line(e)
  with pytest.raises(AmpSpaceError, match="finetune needs --init_from"):
    fit.fit(options(tmp_path, inp, out, model="finetune"))
  assert not os.path.exists(tmp_path / "run")  # refused before anything was written


def test_command_line_error_is_one_line(tmp_path):
  r = subprocess.run(
    [
      sys.executable,
      "-m",
      "ampspace.fit",
      f"--input={tmp_path}/no.wav",
      f"--output={tmp_path}/no.wav",
      f"--workdir={tmp_path}/run",
    ],
    capture_output=True,
    text=True,
    cwd=REPO,
    timeout=120,
  )
  assert r.returncode == 2 and r.stdout == ""
  assert r.stderr == f"error: --input={tmp_path}/no.wav: file not found\n"


# ---------------------------------------------------------------- the capture folder
def test_capture_folder_is_the_nam_layout_with_pinned_splits(tmp_path):
  inp, out = write_pair(str(tmp_path / "rec"), seconds=12.0, latency=50)
  opts = options(tmp_path, inp, out, latency=50, knobs={"gain": 6.0})
  s = fit.prepare_capture(opts["workdir"], opts)
  assert s["segments"] == {"train": 4, "validation": 1, "test": 1}
  root = os.path.join(opts["workdir"], "capture")
  with open(os.path.join(root, "device.yaml")) as f:
    assert yaml.safe_load(f) == {
      "device": "my_amp",
      "device_type": "other",
      "source": "real",
      "knobs": {"gain": 6.0},
    }
  for split in ("train", "validation", "test"):
    with open(os.path.join(root, split, "capture.yaml")) as f:
      assert yaml.safe_load(f) == {"split": split}
  assert sorted(os.listdir(os.path.join(root, "test"))) == ["capture.yaml", "seg005_10.0s"]
  clips = layouts.read_nam_layout(root)
  assert len(clips) == 6 and len({c.di_id for c in clips}) == 6
  assert {c.split for c in clips if c.clip_id.startswith("test/")} == {"test"}
  assert [c.split for c in clips].count("train") == 4
  for c in clips:
    assert c.settings == {"gain": 6.0} and c.device == "my_amp" and c.latency_samples is None
    assert sf.info(c.output_path).subtype == "PCM_16"
    di, _ = sf.read(c.di_path, dtype="float32")
    y, _ = sf.read(c.output_path, dtype="float32")
    # the latency was removed before cutting: each output is its own DI through the device
    err = y[10:] - device(di)[10:]
    assert np.sum(err**2) / np.sum(y[10:] ** 2) < 1e-3, c.clip_id


def test_separate_test_pair_is_the_test_split(tmp_path):
  inp, out = write_pair(str(tmp_path / "rec"), seconds=8.0)
  tin, tout = write_pair(str(tmp_path / "held"), seconds=5.0, seed=3)
  opts = options(tmp_path, inp, out, test_input=tin, test_output=tout)
  s = fit.prepare_capture(opts["workdir"], opts)
  assert s["segments"] == {"train": 3, "validation": 1, "test": 3}  # 2 + 2 + 1 s
  assert s["seconds"]["test"] == 5.0 and s["identity"]["test_fraction"] is None


def test_silent_segments_are_left_out_and_clipping_is_an_error(tmp_path):
  x = karplus.phrase(1, 10.0).astype(np.float32)
  x[4 * SR : 6 * SR] = 0.0  # a pause: segment 2 of five 2-s segments
  y = device(x)
  segments, silent = fit.plan_segments(x, y, 2 * SR, 0.15)
  assert silent == ["seg002_4.0s"] and len(segments) == 4
  assert [s.split for s in segments] == ["train", "train", "validation", "test"]
  loud = y.copy()
  loud[6 * SR : 8 * SR] = np.clip(40 * loud[6 * SR : 8 * SR], -1, 1)
  with pytest.raises(
    AmpSpaceError,
    match=r"out.wav: .*% of samples clipped between 6.0 s and "
    r"8.0 s",
  ) as e:
    fit.plan_segments(x, loud, 2 * SR, 0.15, paths=("in.wav", "out.wav"))
  one_line(e)


def test_capture_folder_is_reused_only_for_the_same_call(tmp_path):
  inp, out = write_pair(str(tmp_path / "rec"), seconds=8.0)
  opts = options(tmp_path, inp, out)
  first = fit.prepare_capture(opts["workdir"], opts)
  stamp = os.path.getmtime(os.path.join(opts["workdir"], "capture", fit.CAPTURE_FILE))
  assert fit.prepare_capture(opts["workdir"], dict(opts)) == first
  assert os.path.getmtime(os.path.join(opts["workdir"], "capture", fit.CAPTURE_FILE)) == stamp
  with pytest.raises(AmpSpaceError, match="latency differ.*pick another --workdir") as e:
    fit.prepare_capture(opts["workdir"], {**opts, "latency": 5})
  one_line(e)
  _, other = write_pair(str(tmp_path / "rec2"), seconds=8.0, seed=9)
  with pytest.raises(AmpSpaceError, match="output_sha256 differ"):
    fit.prepare_capture(opts["workdir"], {**opts, "output": other})


def test_an_error_while_writing_leaves_no_capture_folder(tmp_path, monkeypatch):
  inp, out = write_pair(str(tmp_path / "rec"), seconds=8.0)
  opts = options(tmp_path, inp, out)
  calls, real_write = [], sf.write

  def failing_write(*args, **kwargs):
    calls.append(args[0])
    if len(calls) == 3:
      raise OSError("No space left on device")
    return real_write(*args, **kwargs)

  monkeypatch.setattr(fit.sf, "write", failing_write)
  with pytest.raises(OSError, match="No space left"):
    fit.prepare_capture(opts["workdir"], opts)
  assert os.listdir(opts["workdir"]) == []  # neither capture/ nor capture.partial/
  monkeypatch.undo()
  # and a clipped recording fails before anything is written
  loud_dir = tmp_path / "loud"
  loud_dir.mkdir()
  sf.write(str(loud_dir / "out.wav"), np.clip(40 * sf.read(out)[0], -1, 1), SR)
  with pytest.raises(AmpSpaceError, match="clipped"):
    fit.prepare_capture(opts["workdir"], {**opts, "output": str(loud_dir / "out.wav")})
  assert os.listdir(opts["workdir"]) == []


def test_the_builder_honours_the_pinned_splits(tmp_path):
  import tensorflow_datasets as tfds

  inp, out = write_pair(str(tmp_path / "rec"), seconds=12.0)
  opts = options(tmp_path, inp, out)
  fit.prepare_capture(opts["workdir"], opts)
  data_dir = os.path.join(opts["workdir"], "tfds")
  fit.build_dataset(os.path.join(opts["workdir"], "capture"), data_dir)
  sources = tfds.data_source("amp_space/real", data_dir=data_dir, download=False)
  ids = {
    split: sorted(sources[split][i]["clip_id"].decode() for i in range(len(sources[split])))
    for split in ("train", "validation", "test")
  }
  assert ids["test"] == ["test/seg005_10.0s/output.wav"]
  assert ids["validation"] == ["validation/seg004_8.0s/output.wav"]
  assert len(ids["train"]) == 4 and all(i.startswith("train/") for i in ids["train"])
  record = sources["test"][0]
  assert record["device"].decode() == "my_amp" and int(record["latency_samples"]) == 0
  from ampspace.data.pipeline import conditioning_of

  np.testing.assert_allclose(conditioning_of(record), fit.capture_conditioning("my_amp", {}))


# ---------------------------------------------------------------- the whole command
@pytest.mark.slow
def test_fit_command_models_a_device_below_esr_0_1(tmp_path):
  """40 s of DI through tanh + lowpass, 37 samples of interface latency, 1.5 minutes of the
  NAM-layout WaveNet: test ESR below 0.1, fit.json, a .nam file, and a rerun that returns."""
  inp, out = write_pair(str(tmp_path / "rec"), seconds=40.0, seed=7, latency=37)
  workdir = str(tmp_path / "run")
  nam = str(tmp_path / "my_amp.nam")
  cmd = [
    sys.executable,
    "-m",
    "ampspace.fit",
    f"--input={inp}",
    f"--output={out}",
    f"--workdir={workdir}",
    "--model=nam_layout",
    "--minutes=1.5",
    "--latency=37",
    "--device=my_amp",
    f"--nam={nam}",
  ]
  r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=900)
  assert r.returncode == 0, r.stderr[-3000:]
  last = r.stdout.strip().splitlines()[-1]
  m = re.fullmatch(
    r"model: (\S+)  test ESR (\S+) \(pre-emphasised (\S+)\) on ([\d.]+) s of "
    r"held-out audio",
    last,
  )
  assert m and m.group(1) == os.path.join(workdir, "model"), r.stdout
  with open(os.path.join(workdir, "fit.json")) as f:
    result = json.load(f)
  assert result["test_esr"] < 0.1, result
  assert float(m.group(2)) == pytest.approx(result["test_esr"], rel=1e-3, abs=1e-4)
  assert result["segments"] == {"train": 6, "validation": 1, "test": 1}
  assert result["test_seconds"] == pytest.approx(float(m.group(4)), abs=0.05)
  assert result["steps"] > 0 and result["nam"] == nam
  assert os.path.isfile(os.path.join(workdir, "model", "eval", "test", "metrics.json"))
  from ampspace import nam_format

  assert nam_format.read_nam(nam).shape.layer_arrays[0][0] == 16
  # the same command again returns the stored result
  again = subprocess.run(cmd[:-1], capture_output=True, text=True, cwd=REPO, timeout=300)
  assert again.returncode == 0, again.stderr[-3000:]
  assert again.stdout.strip().splitlines()[-1] == last
  assert "done before" in again.stderr
