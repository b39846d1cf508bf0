"""Ingest validation rules and the three layout readers, file by file."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile as sf

from ampspace.di import karplus
from ampspace.errors import AmpSpaceError
from tfds_ampspace.amp_space import ingest, layouts

SR = 44100


def _clip(tmp_path, di, out, sr_di=SR, sr_out=SR, **kw):
  di_path, out_path = str(tmp_path / "di.wav"), str(tmp_path / "out.wav")
  sf.write(di_path, di, sr_di, subtype="FLOAT")
  sf.write(out_path, out, sr_out, subtype="FLOAT")
  return layouts.Clip("c", di_path, out_path, "di", 0, -1, "dev", "b", "real", "amp",
                      {"gain": 5.0}, [], {}, **kw)


@pytest.fixture
def di():
  return karplus.phrase(7, 0.3).astype(np.float32)


def test_good_pair_loads(tmp_path, di):
  pair = ingest.load_pair(_clip(tmp_path, di, 0.5 * di), ingest.IngestOptions())
  np.testing.assert_allclose(pair.out, 0.5 * di, atol=1e-6)
  assert pair.clipped_fraction == 0 and pair.original_sample_rate == SR


def test_sample_rate_rejected_or_resampled(tmp_path, di):
  clip = _clip(tmp_path, di[::2], di[::2], sr_di=22050, sr_out=22050)
  with pytest.raises(AmpSpaceError, match=r"out\.wav|di\.wav.*22050"):
    ingest.load_pair(clip, ingest.IngestOptions())
  pair = ingest.load_pair(clip, ingest.IngestOptions(resample=True))
  assert len(pair.di) == 2 * len(di[::2]) and pair.original_sample_rate == 22050


def test_stereo_rejected_or_downmixed(tmp_path, di):
  clip = _clip(tmp_path, di, np.stack([di, 0 * di], axis=1))
  with pytest.raises(AmpSpaceError, match="2 channels"):
    ingest.load_pair(clip, ingest.IngestOptions())
  pair = ingest.load_pair(clip, ingest.IngestOptions(downmix=True))
  np.testing.assert_allclose(pair.out, 0.5 * di, atol=1e-6)


def test_length_mismatch_trimmed_within_tolerance_else_error_naming_both(tmp_path, di):
  pair = ingest.load_pair(_clip(tmp_path, di, di[:-100]), ingest.IngestOptions())
  assert len(pair.di) == len(pair.out) == len(di) - 100 and "trimmed" in pair.warnings[0]
  clip = _clip(tmp_path, di, di[:-5000])
  with pytest.raises(AmpSpaceError, match="out.wav.*differs from its DI .*di.wav"):
    ingest.load_pair(clip, ingest.IngestOptions())


@pytest.mark.parametrize("make,match", [
    (lambda d: np.where(np.arange(len(d)) == 9, np.nan, d), "NaN"),
    (lambda d: 0 * d, "silent"),
    (lambda d: np.clip(20 * d, -1, 1), "clipped"),
])
def test_nan_silence_clipping_rejected(tmp_path, di, make, match):
  with pytest.raises(AmpSpaceError, match=match):
    ingest.load_pair(_clip(tmp_path, di, make(di).astype(np.float32)), ingest.IngestOptions())


def test_validate_clips_raises_listing_all_or_skips_with_report(tmp_path, di):
  good = _clip(tmp_path / "a", di, di) if (tmp_path / "a").mkdir() is None else None
  bad = _clip(tmp_path / "b", di, 0 * di) if (tmp_path / "b").mkdir() is None else None
  bad.clip_id = "bad"
  with pytest.raises(AmpSpaceError, match="(?s)1 of 2 recordings are invalid.*b/out.wav: silent"):
    ingest.validate_clips([good, bad], ingest.IngestOptions(), progress=False)
  result = ingest.validate_clips([good, bad], ingest.IngestOptions(skip_invalid=True),
                                 progress=False)
  assert [c.clip_id for c in result.clips] == ["c"]
  assert result.report["skipped"][0]["file"] == bad.output_path
  assert result.latency == {ingest.setting_key(good): 0}
  path = str(tmp_path / "r" / "report.json")
  ingest.write_report(path, result.report)
  assert json.load(open(path))["num_accepted"] == 1


def test_layout_detection_and_errors(tmp_path):
  with pytest.raises(AmpSpaceError, match="no settings.yaml, data.csv or output"):
    layouts.detect_layout(str(tmp_path))
  (tmp_path / "data.csv").write_text("device,filename\nx,a.wav\n")
  assert layouts.detect_layout(str(tmp_path)) == "csv"
  with pytest.raises(AmpSpaceError, match="di_file"):
    layouts.read_csv_layout(str(tmp_path / "data.csv"))
  (tmp_path / "data.csv").write_text("device,filename,di_file,gain\nx,a.wav,d.wav,loud\n")
  with pytest.raises(AmpSpaceError, match=r"data.csv:2: column 'gain' must be a number"):
    layouts.read_csv_layout(str(tmp_path / "data.csv"))


def test_nam_reader_pairs_nearest_input_and_merges_knob_files(tmp_path, di):
  sf.write(tmp_path / "input.wav", di, SR)
  (tmp_path / "amp").mkdir()
  sf.write(tmp_path / "amp" / "output_g3.wav", di, SR)
  (tmp_path / "amp" / "capture.yaml").write_text("device: combo\nknobs: {gain: 5, bass: 4}\n")
  (tmp_path / "amp" / "output_g3.json").write_text(json.dumps({"knobs": {"gain": 3}}))
  [clip] = layouts.read_nam_layout(str(tmp_path))
  assert clip.di_path == str(tmp_path / "input.wav") and clip.settings == {"gain": 3.0}
  assert clip.device == "combo" and clip.di_id.startswith("input_")
  os.remove(tmp_path / "amp" / "capture.yaml")
  with pytest.raises(AmpSpaceError, match="missing field 'device'"):
    layouts.read_nam_layout(str(tmp_path))
