"""Rendering into the release layout: files, settings.yaml, resume, checks, plugin naming."""

from __future__ import annotations

import os

import numpy as np
import pytest
import yaml

from ampspace.audio.wav_io import read_wav, write_wav
from ampspace.devices import get_device
from ampspace.di.karplus import phrase
from ampspace.errors import AmpSpaceError
from ampspace.render import check_rendered, render


@pytest.fixture()
def di_dir(tmp_path):
  d = tmp_path / "di"
  for i in range(2):
    write_wav(str(d / f"riff{i}.wav"), phrase(i, 0.3))
  return str(d)


def test_render_writes_release_layout(di_dir, tmp_path):
  out = str(tmp_path / "out")
  summary = render("ts_overdrive", "one_knob:drive=2,8", di_dir, out, workers=1, progress=False)
  assert summary == {"folders": 2, "rendered_folders": 2, "clips": 4, "clipped": 0}
  folder = os.path.join(out, "amp-space", "native", "ts_overdrive", "one_knob_drive_2_8", "riff0")
  meta = yaml.safe_load(open(os.path.join(folder, "settings.yaml")))
  for key in (
    "brand",
    "vst_name",
    "device",
    "device_type",
    "data_type",
    "di_file",
    "files",
    "defaults",
    "plugin_latency_compensated",
  ):
    assert key in meta
  assert "latency_samples" not in meta  # a render has no latency for the builder to remove
  assert (meta["device"], meta["device_type"], meta["data_type"]) == (
    "ts_overdrive",
    "overdrive",
    "synthetic",
  )
  assert [f["filename"] for f in meta["files"]] == ["00000000.wav", "00000001.wav"]
  assert {"drive": 8.0} in meta["files"][1]["settings"]
  di, _ = read_wav(os.path.join(out, meta["di_file"]))
  clip, _ = read_wav(os.path.join(folder, "00000001.wav"))
  expected = get_device("ts_overdrive").process(di, {"drive": 8.0})
  np.testing.assert_allclose(clip, expected, atol=1e-6)


def test_render_resumes(di_dir, tmp_path):
  out = str(tmp_path / "out")
  render("tube_amp", "one_knob:gain=3", di_dir, out, workers=1, progress=False)
  folder = os.path.join(out, "amp-space", "native", "tube_amp", "one_knob_gain_3", "riff1")
  os.remove(os.path.join(folder, "settings.yaml"))  # as if interrupted before finishing
  before = os.path.getmtime(os.path.join(folder, "00000000.wav"))
  summary = render("tube_amp", "one_knob:gain=3", di_dir, out, workers=1, progress=False)
  assert summary["rendered_folders"] == 1
  assert os.path.exists(os.path.join(folder, "settings.yaml"))
  assert os.path.getmtime(os.path.join(folder, "00000000.wav")) == before  # not redone


def test_render_in_parallel_matches_serial(di_dir, tmp_path):
  a, b = str(tmp_path / "a"), str(tmp_path / "b")
  render("gated_fuzz", "random:2", di_dir, a, seed=4, workers=1, progress=False)
  render("gated_fuzz", "random:2", di_dir, b, seed=4, workers=2, progress=False)
  rel = os.path.join("amp-space", "native", "gated_fuzz", "random_2", "riff1", "00000001.wav")
  np.testing.assert_array_equal(
    read_wav(os.path.join(a, rel))[0], read_wav(os.path.join(b, rel))[0]
  )


def test_rendered_clip_checks():
  ok = np.sin(np.arange(1000) / 10.0).astype(np.float32) * 0.5
  assert check_rendered(ok, "x") == 0.0
  assert check_rendered(np.clip(ok * 4, -1, 1), "x") > 0.3  # clipping is reported
  with pytest.raises(AmpSpaceError, match="clip.wav: device output is silent"):
    check_rendered(np.zeros(1000, np.float32), "clip.wav")
  with pytest.raises(AmpSpaceError, match="DC drift"):
    check_rendered(ok + 0.5, "clip.wav")
  bad = ok.copy()
  bad[3] = np.inf
  with pytest.raises(AmpSpaceError, match="NaN/Inf"):
    check_rendered(bad, "clip.wav")


def test_render_errors_name_the_problem(tmp_path, di_dir):
  with pytest.raises(AmpSpaceError, match="no .wav DI files"):
    render("tube_amp", "default", str(tmp_path), str(tmp_path / "o"), progress=False)
  with pytest.raises(AmpSpaceError, match="unknown device 'nope'"):
    render("nope", "default", di_dir, str(tmp_path / "o"), progress=False)
  stereo = tmp_path / "stereo"
  stereo.mkdir()
  import soundfile as sf

  sf.write(str(stereo / "s.wav"), np.zeros((100, 2), np.float32), 44100)
  with pytest.raises(AmpSpaceError, match="s.wav: has 2 channels"):
    render("tube_amp", "default", str(stereo), str(tmp_path / "o"), progress=False)


def test_plugin_render_uses_plugin_name(di_dir, tmp_path):
  from conftest import require_or_skip
  from test_devices_plugins import lv2_unavailable_reason

  reason = lv2_unavailable_reason()
  require_or_skip(reason is None, reason or "")
  out = str(tmp_path / "out")
  render("gx_fuzzface", "one_knob:fuzz=5", di_dir, out, workers=1, progress=False)
  meta = yaml.safe_load(
    open(
      os.path.join(
        out, "guitarix", "GxFuzzFaceJH2", "gx_fuzzface", "one_knob_fuzz_5", "riff0", "settings.yaml"
      )
    )
  )
  assert meta["vst_name"] == "GxFuzzFaceJH2" and meta["brand"] == "guitarix"
  assert {"fuzz": 0.5} in meta["files"][0]["settings"]  # dial 5 of the port's 0..1 range
