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
  return layouts.Clip(
    "c", di_path, out_path, "di", 0, -1, "dev", "b", "real", "amp", {"gain": 5.0}, [], {}, **kw
  )


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


@pytest.mark.parametrize(
  "make,match",
  [
    (lambda d: np.where(np.arange(len(d)) == 9, np.nan, d), "NaN"),
    (lambda d: 0 * d, "silent"),
    (lambda d: np.clip(20 * d, -1, 1), "clipped"),
  ],
)
def test_nan_silence_clipping_rejected(tmp_path, di, make, match):
  with pytest.raises(AmpSpaceError, match=match):
    ingest.load_pair(_clip(tmp_path, di, make(di).astype(np.float32)), ingest.IngestOptions())


def test_validate_clips_raises_listing_all_or_skips_with_report(tmp_path, di):
  good = _clip(tmp_path / "a", di, di) if (tmp_path / "a").mkdir() is None else None
  bad = _clip(tmp_path / "b", di, 0 * di) if (tmp_path / "b").mkdir() is None else None
  bad.clip_id = "bad"
  with pytest.raises(AmpSpaceError, match="(?s)1 of 2 recordings are invalid.*b/out.wav: silent"):
    ingest.validate_clips([good, bad], ingest.IngestOptions(), progress=False)
  result = ingest.validate_clips(
    [good, bad], ingest.IngestOptions(skip_invalid=True), progress=False
  )
  assert [c.clip_id for c in result.clips] == ["c"]
  assert result.report["skipped"][0]["file"] == bad.output_path
  assert result.latency == {}  # no music estimate unless asked for
  assert result.report["latency"] == [
    {
      "setting": ingest.setting_key(good),
      "source": "none",
      "num_clips": 1,
      "lag_samples_min": 0,
      "lag_samples_max": 0,
    }
  ]
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


# ---------------------------------------------------------------- latency on ingest
def _late(x, lag):
  out = np.zeros_like(x)
  out[lag:] = x[: len(x) - lag]
  return out


def test_no_latency_source_means_no_shift(tmp_path, di):
  # A rendered (zero-latency) device relabelled as a recording: stored as recorded.
  from ampspace.devices import get_device

  out = get_device("tube_amp_el84").process(di, {"gain": 5.0})
  pair = ingest.load_pair(_clip(tmp_path, di, out), ingest.IngestOptions())
  assert pair.latency == 0 and pair.latency_source == "none"
  np.testing.assert_array_equal(pair.out, out.astype(np.float32))


def test_annotated_latency_is_removed_fraction_rounded_down(tmp_path, di):
  pair = ingest.load_pair(
    _clip(tmp_path, di, _late(0.5 * di, 7), latency_samples=7.6), ingest.IngestOptions()
  )
  assert (pair.latency, pair.latency_source) == (7, "annotation")
  np.testing.assert_allclose(pair.out, 0.5 * di[: len(pair.out)], atol=1e-6)


def test_blip_latency_is_measured_and_the_segment_cut_after_it(tmp_path, di):
  full = np.concatenate([np.zeros(3000, np.float32), di])
  full[1000] = 0.5
  clip = _clip(tmp_path, full, _late(np.tanh(3 * full), 11), blip_at=1000)
  clip.di_start = 3000
  pair = ingest.load_pair(clip, ingest.IngestOptions())
  assert (pair.latency, pair.latency_source) == (11, "blip")
  np.testing.assert_allclose(pair.out, np.tanh(3 * di[: len(pair.out)]), atol=1e-6)
  assert len(pair.out) >= len(di) - 11


def test_loopback_latency_is_measured(tmp_path, di):
  loop_path = str(tmp_path / "loop.wav")
  sf.write(loop_path, _late(-0.3 * di, 4), SR, subtype="FLOAT")
  pair = ingest.load_pair(
    _clip(tmp_path, di, _late(np.tanh(2 * di), 4), loopback_path=loop_path), ingest.IngestOptions()
  )
  assert (pair.latency, pair.latency_source) == (4, "loopback")
  np.testing.assert_allclose(pair.out, np.tanh(2 * di[: len(pair.out)]), atol=1e-6)


def test_music_estimate_is_opt_in_reported_and_never_for_rendered_data(tmp_path, di):
  (tmp_path / "a").mkdir()
  clip = _clip(tmp_path / "a", di, _late(np.tanh(4 * di), 9))
  off = ingest.validate_clips([clip], ingest.IngestOptions(), progress=False)
  assert off.latency == {}
  on = ingest.validate_clips([clip], ingest.IngestOptions(latency_from_music=True), progress=False)
  assert on.latency == {ingest.setting_key(clip): 9}
  assert any(r["source"].startswith("music") for r in on.report["latency"])
  clip.source = "synthetic"
  rendered = ingest.validate_clips(
    [clip], ingest.IngestOptions(latency_from_music=True), progress=False
  )
  assert rendered.latency == {}


def test_latency_annotation_errors_name_the_file(tmp_path):
  where = str(tmp_path / "settings.yaml")
  with pytest.raises(AmpSpaceError, match="settings.yaml: give one latency source"):
    layouts.latency_fields({"latency_samples": 3, "blip_at": 10}, where, str(tmp_path))
  with pytest.raises(AmpSpaceError, match="settings.yaml: latency_samples must be"):
    layouts.latency_fields({"latency_samples": -2}, where, str(tmp_path))
  with pytest.raises(AmpSpaceError, match="settings.yaml: blip_at must be a sample index"):
    layouts.latency_fields({"blip_at": 2.5}, where, str(tmp_path))
  assert layouts.latency_fields({"time-delay": "12"}, where, "") == {"latency_samples": 12.0}
