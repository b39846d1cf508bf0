"""Layout rules shared by the readers (where a DI is found, which metadata applies to a folder),
and the build command's error report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from ampspace.di import karplus
from ampspace.errors import AmpSpaceError
from tfds_ampspace.amp_space import layouts

SR = 44100
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DUMMY_RELEASE = os.path.join(REPO, "tfds_ampspace", "amp_space", "dummy_data", "release")
DEVICE = os.path.join("acme", "recorded", "fuzzbox")  # a device folder of the release layout


@pytest.fixture(autouse=True)
def no_di_dir_from_the_environment(monkeypatch):
  monkeypatch.delenv(layouts.DI_DIR_ENV, raising=False)


def _wav(path, seed=0, seconds=0.2):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  sf.write(path, karplus.phrase(seed, seconds).astype(np.float32), SR)
  return str(path)


def _settings_folder(folder, di_file, device="fuzzbox", extra=""):
  """One release-layout folder: an output and its settings.yaml naming `di_file`."""
  _wav(os.path.join(folder, "00000000.wav"), seed=1)
  fields = f"device: {device}\n" if device else ""
  with open(os.path.join(folder, "settings.yaml"), "w") as f:
    f.write(
      f"{fields}di_file: {di_file}\n{extra}files:\n"
      f"- filename: 00000000.wav\n  settings: [{{gain: 5}}]\n"
    )
  return os.path.join(folder, "settings.yaml")


# ---------------------------------------------------------------- where the DI is
@pytest.mark.parametrize("di_file", ["di/d0.wav", "d0.wav"])
def test_device_folder_alone_finds_dis_in_di_folder_above(tmp_path, di_file):
  """The release layout ingested from one device's folder: `di_file` relative to the old root
  (as ampspace.render writes it) or a bare name, the DI two levels above in di/."""
  di = _wav(tmp_path / "di" / "d0.wav")
  _settings_folder(tmp_path / DEVICE / "gain" / "d0", di_file)
  [clip] = layouts.read_release_layout(str(tmp_path / DEVICE))
  assert os.path.samefile(clip.di_path, di)


def test_bare_di_name_found_beside_settings_and_at_root(tmp_path):
  beside = _wav(tmp_path / "a" / "d0.wav", seed=3)
  _settings_folder(tmp_path / "a", "d0.wav")
  at_root = _wav(tmp_path / "d1.wav", seed=4)
  _settings_folder(tmp_path / "b" / "deeper", "d1.wav")
  clips = {
    os.path.basename(os.path.dirname(c.output_path)): c
    for c in layouts.read_release_layout(str(tmp_path))
  }
  assert os.path.samefile(clips["a"].di_path, beside)
  assert os.path.samefile(clips["deeper"].di_path, at_root)


def test_di_dir_is_searched_first_and_missing_dis_are_listed(tmp_path, monkeypatch):
  settings = [_settings_folder(tmp_path / "rec" / f"d{i}", f"d{i}.wav") for i in range(2)]
  with pytest.raises(AmpSpaceError, match="2 annotations name a DI not found.*pass --di_dir") as e:
    layouts.read_release_layout(str(tmp_path / "rec"))
  assert all(f"{s}: DI 'd{i}.wav'" in str(e.value) for i, s in enumerate(settings))
  elsewhere = [_wav(tmp_path / "elsewhere" / f"d{i}.wav", seed=i) for i in range(2)]
  clips = layouts.read_release_layout(str(tmp_path / "rec"), di_dirs=[str(tmp_path / "elsewhere")])
  assert sorted(c.di_path for c in clips) == elsewhere
  monkeypatch.setenv(layouts.DI_DIR_ENV, str(tmp_path / "elsewhere"))  # what build's --di_dir sets
  assert len(layouts.read_release_layout(str(tmp_path / "rec"))) == 2


def test_nam_inputs_from_di_dir_or_nearest_above(tmp_path):
  near = _wav(tmp_path / "caps" / "amp" / "input.wav", seed=1)
  _wav(tmp_path / "caps" / "input.wav", seed=2)
  _wav(tmp_path / "caps" / "amp" / "g5" / "output.wav", seed=3)
  (tmp_path / "caps" / "amp" / "g5" / "knobs.json").write_text('{"device": "a", "knobs": {}}')
  [clip] = layouts.read_nam_layout(str(tmp_path / "caps" / "amp" / "g5"))
  assert os.path.samefile(clip.di_path, near)  # above the root given, nearest first
  other = _wav(tmp_path / "dis" / "input.wav", seed=4)
  [clip] = layouts.read_nam_layout(str(tmp_path / "caps"), di_dirs=[str(tmp_path / "dis")])
  assert os.path.samefile(clip.di_path, other)


# ---------------------------------------------------------------- metadata of folders above
def test_device_file_above_applies_to_captures_below(tmp_path):
  """captures/device.yaml < captures/my_amp/device.json < gain5/knobs.json < output.json."""
  root = tmp_path / "captures"
  _wav(root / "input.wav")
  (root / "device.yaml").write_text("device: someone_elses\nsource: real\ndevice_type: other\n")
  (root / "my_amp").mkdir()
  (root / "my_amp" / "device.json").write_text(
    json.dumps(
      {
        "device": "my_amp",
        "brand": "acme",
        "device_type": "amp",
        "attributes": {"preamp_tube": "12AX7"},
        "knobs": {"gain": 1},
      }
    )
  )
  for gain in (5, 7):
    _wav(root / "my_amp" / f"gain{gain}" / "output.wav", seed=gain)
    (root / "my_amp" / f"gain{gain}" / "knobs.json").write_text(
      json.dumps({"knobs": {"gain": gain}})
    )
  (root / "my_amp" / "gain7" / "output.json").write_text('{"brand": "acme-modded"}')
  clips = {
    os.path.basename(os.path.dirname(c.output_path)): c for c in layouts.read_nam_layout(str(root))
  }
  assert clips["gain5"].device == "my_amp" and clips["gain5"].device_type == "amp"
  assert clips["gain5"].settings == {"gain": 5.0} and clips["gain5"].source == "real"
  assert clips["gain5"].attributes == {"preamp_tube": "12AX7"} and clips["gain5"].brand == "acme"
  assert clips["gain7"].brand == "acme-modded" and clips["gain7"].settings == {"gain": 7.0}
  os.remove(root / "my_amp" / "device.json")
  os.remove(root / "device.yaml")
  with pytest.raises(AmpSpaceError, match="knobs.json: missing field 'device'.*device.json/yaml"):
    layouts.read_nam_layout(str(root))


def test_release_settings_inherit_device_file_above(tmp_path):
  device = tmp_path / "rec" / "my_amp"
  _wav(tmp_path / "rec" / "di" / "d0.wav")
  (device).mkdir(parents=True)
  (device / "device.yaml").write_text("device: my_amp\nbrand: acme\nsource: real\n")
  _settings_folder(device / "d0", "d0.wav", device=None, extra="brand: own\n")
  [clip] = layouts.read_release_layout(str(tmp_path / "rec"))
  assert (clip.device, clip.brand, clip.source) == ("my_amp", "own", "real")


# ---------------------------------------------------------------- the build command
def _build_command(manual_dir, data_dir, *extra):
  return subprocess.run(
    [
      sys.executable,
      "-m",
      "tfds_ampspace.build",
      "tfds_ampspace/amp_space",
      "--config=real",
      f"--manual_dir={manual_dir}",
      f"--data_dir={data_dir}",
      "--file_format=array_record",
      *extra,
    ],
    capture_output=True,
    text=True,
    cwd=REPO,
    timeout=300,
  )


def test_build_held_out_device_folder_with_di_dir(tmp_path):
  """A release-layout device folder ingested alone, its DIs moved away: --di_dir finds them."""
  root = tmp_path / "release"
  shutil.copytree(DUMMY_RELEASE, root)
  shutil.move(str(root / "di"), str(tmp_path / "dis"))
  result = _build_command(root / DEVICE, tmp_path / "data", f"--di_dir={tmp_path / 'dis'}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert (tmp_path / "data" / "amp_space" / "real").is_dir()


def test_build_lists_bad_recordings_in_one_line_each_and_traceback_only_if_verbose(tmp_path):
  root = tmp_path / "caps"
  _wav(root / "input.wav")
  (root / "capture.yaml").write_text("device: combo\nknobs: {gain: 5}\n")
  bad = root / "bad" / "output.wav"
  x = karplus.phrase(0, 0.2).astype(np.float32)
  x[100] = np.nan
  os.makedirs(bad.parent)
  sf.write(bad, x, SR, subtype="FLOAT")
  silent = root / "quiet" / "output.wav"
  os.makedirs(silent.parent)
  sf.write(silent, np.zeros_like(x), SR)
  _wav(root / "good" / "output.wav", seed=2)
  result = _build_command(root, tmp_path / "data")
  assert result.returncode == 2
  assert "Traceback" not in result.stderr
  lines = result.stderr.splitlines()
  assert any(l.startswith("error: 2 of 3 recordings are invalid") for l in lines)
  assert any(l.strip().startswith(f"{bad}: ") and "NaN" in l for l in lines)
  assert any(l.strip().startswith(f"{silent}: ") and "silent" in l for l in lines)
  verbose = _build_command(root, tmp_path / "data", "--verbose")
  assert verbose.returncode != 0 and "Traceback" in verbose.stderr and str(bad) in verbose.stderr


# ---------------------------------------------------------------- splits pinned by annotation
def test_split_field_pins_clips_and_a_di_cannot_be_in_two_splits(tmp_path):
  """`split:` in a folder's capture.yaml holds for the captures below it; a bad name or a DI
  whose clips disagree is an error naming the file or the DI."""
  from tfds_ampspace.amp_space.amp_space_dataset_builder import RecordingItem, pinned_splits

  root = tmp_path / "cap"
  (root).mkdir()
  (root / "device.yaml").write_text("device: my_pedal\nknobs: {drive: 5}\n")
  for i, name in enumerate("abcde"):
    part = "test" if name in "de" else "train"
    _wav(root / part / name / "input.wav", seed=10 + i)
    _wav(root / part / name / "output.wav", seed=20 + i)
  (root / "test" / "capture.yaml").write_text("split: test\n")
  clips = layouts.read_nam_layout(str(root))
  assert sorted((os.path.basename(os.path.dirname(c.output_path)), c.split) for c in clips) == [
    ("a", None),
    ("b", None),
    ("c", None),
    ("d", "test"),
    ("e", "test"),
  ]
  items = [RecordingItem(c, 0, None) for c in clips]
  pins = pinned_splits(items)
  assert sorted(pins.values()) == ["test", "test"] and len(pins) == 2
  import dataclasses

  pinned = next(c for c in clips if c.split == "test")
  clash = dataclasses.replace(pinned, split="train", clip_id="again")
  with pytest.raises(AmpSpaceError, match=r"recordings name different splits \(test, train\)"):
    pinned_splits(items + [RecordingItem(clash, 0, None)])
  (root / "test" / "capture.yaml").write_text("split: holdout\n")
  with pytest.raises(AmpSpaceError, match=r"capture.yaml: split 'holdout' is not one of"):
    layouts.read_nam_layout(str(root))


def test_build_honours_pinned_test_split(tmp_path):
  """Built through the real config: every pinned DI lands in test, no other DI does."""
  import tensorflow_datasets as tfds
  import tfds_ampspace  # noqa: F401

  root = tmp_path / "cap"
  root.mkdir()
  (root / "device.yaml").write_text("device: my_pedal\nknobs: {drive: 5}\n")
  for i in range(6):
    part = "test" if i >= 4 else "train"
    _wav(root / part / f"d{i}" / "input.wav", seed=30 + i, seconds=0.5)
    _wav(root / part / f"d{i}" / "output.wav", seed=40 + i, seconds=0.5)
  (root / "test" / "capture.yaml").write_text("split: test\n")
  result = _build_command(root, tmp_path / "data")
  assert result.returncode == 0, result.stderr[-3000:]
  from tensorflow_datasets.core.data_sources import array_record

  builder = tfds.builder("amp_space/real", data_dir=str(tmp_path / "data"))

  def clip_ids(split):
    source = array_record.ArrayRecordDataSource(builder.info, split=split)
    return {source[i]["clip_id"].decode() for i in range(len(source))}

  assert {os.path.dirname(t) for t in clip_ids("test")} == {"test/d4", "test/d5"}
  others = [s for s in builder.info.splits if s != "test"]
  assert others and not any(i.startswith("test/") for s in others for i in clip_ids(s))
