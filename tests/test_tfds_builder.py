"""amp_space builder end to end: tiny renders, real ingests the three dummy layouts, bad input fails.

`tfds.testing.DatasetBuilderTestCase` needs TensorFlow (tf.executing_eagerly, tf.data), which
this project does not install; these pytest tests do its job (build from dummy_data, check splits
and example counts) and more, reading through the TF-free `tfds.data_source`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import tensorflow_datasets as tfds

import tfds_ampspace  # noqa: F401  (registers amp_space)
from ampspace import conditioning as cond
from tfds_ampspace.amp_space import amp_space_dataset_builder as asb
from tfds_ampspace.amp_space.dummy_data import make_dummy_data as dummy

DUMMY = os.path.join(os.path.dirname(asb.__file__), "dummy_data")
CONTRACT = (
  "di",
  "output",
  "knobs",
  "knob_mask",
  "device_id",
  "attributes",
  "device",
  "device_type",
  "source",
  "di_id",
  "di_start",
  "di_end",
  "knob_names",
  "knob_values",
  "clip_id",
  "latency_samples",
)


def _build(config, data_dir, manual_dir=None):
  if isinstance(config, str):
    builder = tfds.builder(f"amp_space/{config}", data_dir=data_dir, file_format="array_record")
  else:
    builder = asb.Builder(config=config, data_dir=data_dir, file_format="array_record")
  dl = tfds.download.DownloadConfig(manual_dir=manual_dir) if manual_dir else None
  builder.download_and_prepare(download_config=dl)
  return builder


def _all(builder):
  return {split: list(src) for split, src in builder.as_data_source().items()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  return _build("tiny", str(tmp_path_factory.mktemp("tiny")))


def test_tiny_contract_and_di_disjoint_splits(tiny):
  data = _all(tiny)
  assert set(data) == {"train", "validation", "test"}
  assert sum(len(v) for v in data.values()) == 5 * 3  # 5 DIs x gains 2,5,8
  dis = {split: {ex["di_id"] for ex in exs} for split, exs in data.items()}
  assert not (
    dis["train"] & dis["validation"]
    or dis["train"] & dis["test"]
    or dis["validation"] & dis["test"]
  )
  ex = data["train"][0]
  assert set(CONTRACT) <= set(ex)
  assert ex["di"].dtype == np.int16 and ex["di"].shape == ex["output"].shape
  assert ex["knobs"].shape == ex["knob_mask"].shape == (len(cond.KNOB_VOCAB),)
  assert ex["attributes"].shape == (len(cond.ATTRIBUTE_VOCAB),)
  gain = cond.KNOB_VOCAB.index("gain")
  assert ex["knob_mask"][gain] == 1.0
  names = [n.decode() for n in ex["knob_names"]]
  assert ex["knob_values"][names.index("gain")] in (2.0, 5.0, 8.0)
  np.testing.assert_allclose(ex["knobs"][gain], ex["knob_values"][names.index("gain")] / 10)
  audio = asb.decode_audio(ex, "output")
  assert audio.dtype == np.float32 and 0.01 < np.abs(audio).max() <= 1.0
  assert ex["device_id"] == cond.device_index("tube_amp")


def test_tiny_output_is_the_device_applied_to_the_di(tiny):
  from ampspace.devices import get_device

  ex = tiny.as_data_source("validation")[0]
  names = [n.decode() for n in ex["knob_names"]]
  settings = dict(zip(names, map(float, ex["knob_values"])))
  expected = get_device("tube_amp").process(asb.from_pcm16(ex["di"]), settings)
  np.testing.assert_allclose(asb.from_pcm16(ex["output"]), expected, atol=2e-3)


@pytest.mark.parametrize(
  "layout,count,device",
  [("release", 6, "fuzzbox"), ("csv", 3, "overdrive_pedal"), ("nam", 2, "tube_combo")],
)
def test_real_ingests_each_layout_and_removes_latency(tmp_path, layout, count, device):
  builder = _build("real", str(tmp_path), os.path.join(DUMMY, layout))
  data = _all(builder)
  examples = [ex for exs in data.values() for ex in exs]
  assert len(examples) == count
  for ex in examples:
    assert ex["device"].decode() == device and ex["source"] == b"real"
    assert ex["latency_samples"] == dummy.LATENCY[layout]
    names = [n.decode() for n in ex["knob_names"]]
    gain = float(ex["knob_values"][names.index("gain")])
    di = asb.from_pcm16(ex["di"])
    # after correction, output[n] is the device applied to di[n]
    np.testing.assert_allclose(
      asb.from_pcm16(ex["output"]), dummy.fake_device(di, gain, 0), atol=2e-3
    )
    assert ex["di_end"] - ex["di_start"] == len(di)
  report = json.loads((builder.data_path / asb.REPORT_FILE).read_text())
  assert report["num_accepted"] == count and not report["skipped"]
  if layout != "nam":  # one NAM input signal: every capture in train (fewer than 3 DIs)
    assert len(data) == 3


def test_real_attributes_and_csv_knob_columns(tmp_path):
  ex = _all(_build("real", str(tmp_path), os.path.join(DUMMY, "csv")))["train"][0]
  assert json.loads(ex["attributes_json"]) == {"clipping": "silicon"}
  i = list(cond.ATTRIBUTE_VOCAB).index("clipping")
  assert ex["attributes"][i] == cond.ATTRIBUTE_VOCAB["clipping"].index("silicon")
  assert sorted(n.decode() for n in ex["knob_names"]) == ["gain", "level"]


def _copy_release(tmp_path):
  root = tmp_path / "rec"
  shutil.copytree(os.path.join(DUMMY, "release"), root)
  return root


def _nan_output(root):
  bad = root / "acme/recorded/fuzzbox/gain/di_1/00000001.wav"
  x, sr = sf.read(bad, dtype="float32")
  x[10] = np.nan
  sf.write(bad, x, sr, subtype="FLOAT")
  return bad


def test_invalid_recording_fails_the_build_naming_it_and_leaves_nothing(tmp_path):
  root = _copy_release(tmp_path)
  bad = _nan_output(root)
  data_dir = tmp_path / "data"
  with pytest.raises(Exception, match=str(bad)):
    _build("real", str(data_dir), str(root))
  builder = tfds.builder("amp_space/real", data_dir=str(data_dir), file_format="array_record")
  assert not builder.is_prepared()
  leftovers = (
    list((data_dir / "amp_space" / "real").glob("*"))
    if (data_dir / "amp_space" / "real").exists()
    else []
  )
  assert leftovers == []


def test_skip_invalid_leaves_bad_files_out_and_reports_them(tmp_path):
  root = _copy_release(tmp_path)
  _nan_output(root)
  silent = root / "acme/recorded/fuzzbox/gain/di_2/00000000.wav"
  sf.write(silent, np.zeros(3528, np.float32), 44100, subtype="PCM_16")
  builder = _build("real_lenient", str(tmp_path / "data"), str(root))
  ids = [ex["clip_id"].decode() for exs in _all(builder).values() for ex in exs]
  assert len(ids) == 4 and not any(
    i.endswith(("di_1/00000001.wav", "di_2/00000000.wav")) for i in ids
  )
  report = json.loads((builder.data_path / asb.REPORT_FILE).read_text())
  reasons = {
    os.path.basename(os.path.dirname(s["file"])) + "/" + os.path.basename(s["file"]): s["reason"]
    for s in report["skipped"]
  }
  assert "NaN" in reasons["di_1/00000001.wav"] and "silent" in reasons["di_2/00000000.wav"]


def test_user_config_segments_long_recordings(tmp_path):
  cfg = asb.AmpSpaceConfig(
    name="real_segments", source_kind="recordings", segment_seconds=0.05, split_unit="segment"
  )
  data = _all(_build(cfg, str(tmp_path), os.path.join(DUMMY, "nam")))
  examples = [ex for exs in data.values() for ex in exs]
  # the NAM input is 2 x 0.08 s: three 0.05 s segments per capture (the remainder is dropped)
  assert len(examples) == 2 * 3
  assert {len(ex["di"]) for ex in examples} == {int(0.05 * 44100)}
  by_segment = {}
  for split, exs in data.items():
    for ex in exs:
      by_segment.setdefault(ex["clip_id"].decode().split("#")[1], set()).add(split)
  assert all(len(s) == 1 for s in by_segment.values())  # a DI segment lives in one split


def test_synthetic_from_a_rendered_folder(tmp_path):
  from ampspace.audio.wav_io import write_wav
  from ampspace.di import karplus
  from ampspace.render import render

  di_dir, out = tmp_path / "di", tmp_path / "rendered"
  for i in range(3):
    write_wav(str(di_dir / f"d{i}.wav"), karplus.phrase(i, 0.2))
  render("tube_amp", "one_knob:gain=3,7", str(di_dir), str(out), workers=1, progress=False)
  data = _all(_build("synthetic", str(tmp_path / "data"), str(out)))
  assert sum(len(v) for v in data.values()) == 6
  assert {ex["latency_samples"] for v in data.values() for ex in v} == {0}


def test_data_source_imports_no_tensorflow(tiny):
  code = (
    "import sys, tensorflow_datasets as tfds, tfds_ampspace\n"
    f"src = tfds.data_source('amp_space/tiny', data_dir={os.fspath(tiny.data_dir_root)!r}, "
    "download=False)\n"
    "ex = src['train'][0]\n"
    "assert ex['di'].dtype.name == 'int16'\n"
    "bad = [m for m in sys.modules if m == 'tensorflow' or m.startswith('tensorflow.')]\n"
    "print('TF' if bad else 'NO_TF', len(src['train']))\n"
  )
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.split() == ["NO_TF", "9"]
