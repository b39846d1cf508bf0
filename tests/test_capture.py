"""ampspace.capture: a device recorded as a user's session would be, then ingested as one."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf
import yaml

from ampspace import capture
from ampspace.audio.wav_io import write_wav
from ampspace.devices import get_device
from ampspace.di import karplus
from ampspace.errors import AmpSpaceError
from tfds_ampspace.amp_space import ingest, layouts


@pytest.fixture(scope="module")
def di_dir(tmp_path_factory):
  folder = tmp_path_factory.mktemp("di")
  for i in range(2):
    write_wav(str(folder / f"real_{i}.wav"), karplus.phrase(40 + i, 0.4))
  return str(folder)


def _ingest(root):
  clips = layouts.read_any(root)
  return clips, [ingest.load_pair(c, ingest.IngestOptions()) for c in clips]


@pytest.mark.parametrize("latency_by", ["annotation", "blip"])
def test_capture_is_ingested_aligned_to_the_device(tmp_path, di_dir, latency_by):
  out = str(tmp_path / "cap")
  s = capture.capture_device(
    "ts_overdrive",
    "drive",
    di_dir,
    out,
    dials=(2.0, 8.0),
    latency=117,
    latency_by=latency_by,
    progress=False,
  )
  assert s["latency_by"] == latency_by and 0.6 < s["peak"] < 0.8
  clips, pairs = _ingest(out)
  assert len(clips) == 4 and {c.source for c in clips} == {"real"}
  dev = get_device("ts_overdrive")
  for clip, pair in zip(clips, pairs):
    assert pair.latency_source == latency_by and pair.latency == 117
    assert sf.info(clip.output_path).subtype == "PCM_24"
    assert clip.settings["drive"] in (2.0, 8.0)  # written as dials, as a guitarist notes them
    assert clip.settings["tone"] == 5.0 and all(s["maximum"] == 10 for s in clip.knob_specs)
    expected = s["input_trim"] * dev.process(pair.di, {"drive": clip.settings["drive"]})
    err = pair.out - expected[: len(pair.out)]
    assert np.sum(err**2) / np.sum(expected**2) < 1e-5  # noise at -96 dBFS only


def test_a_guitarix_capture_measures_its_latency_from_the_blip(tmp_path, di_dir):
  out = str(tmp_path / "amp")
  s = capture.capture_device(
    "gx_amp",
    "gain",
    di_dir,
    out,
    dials=(3.0, 7.0),
    latency=117,
    latency_by="blip",
    knob_range=(-6.0, 20.0),
    progress=False,
  )
  assert s["knob_values"]["7"]["gain"] == pytest.approx(-6 + 0.7 * 26)
  _, pairs = _ingest(out)
  # the plugin host advances gx_amp by its measured latency at a 10% onset; the blip finds
  # where its response starts, a few samples earlier: never later than the interface's 117
  assert {p.latency_source for p in pairs} == {"blip"}
  assert all(110 <= p.latency <= 117 for p in pairs)


def test_capture_is_written_once_and_whole(tmp_path, di_dir):
  out = str(tmp_path / "cap")
  s = capture.capture_device("fuzz_face", "fuzz", di_dir, out, dials=(5.0,), progress=False)
  stamp = os.path.getmtime(os.path.join(out, "capture.yaml"))
  assert capture.capture_device("fuzz_face", "fuzz", di_dir, out, progress=False) == s
  assert os.path.getmtime(os.path.join(out, "capture.yaml")) == stamp
  assert not os.path.exists(out + ".tmp")
  with open(os.path.join(out, "fuzz_face", "real_0", "settings.yaml")) as f:
    meta = yaml.safe_load(f)
  assert meta["latency_samples"] == 117 and meta["di_file"] == "di/real_0.wav"


def test_capture_errors_are_one_line(tmp_path, di_dir):
  with pytest.raises(AmpSpaceError, match="has no knob 'gain'"):
    capture.capture_device("ts_overdrive", "gain", di_dir, str(tmp_path / "a"), progress=False)
  with pytest.raises(AmpSpaceError, match="no .wav DI files"):
    capture.capture_device(
      "ts_overdrive", "drive", str(tmp_path), str(tmp_path / "b"), progress=False
    )
  with pytest.raises(AmpSpaceError, match="outside 'drive'"):
    capture.capture_device(
      "ts_overdrive", "drive", di_dir, str(tmp_path / "c"), knob_range=(0, 20), progress=False
    )
  assert not os.path.exists(tmp_path / "a") and not os.path.exists(tmp_path / "c.tmp")
