"""Split filters over a built tiny dataset: by device, knob value, source; Grain-ready access."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow_datasets as tfds

import tfds_ampspace  # noqa: F401
from ampspace.data import filters
from ampspace.errors import AmpSpaceError


@pytest.fixture(scope="module")
def train(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("tiny"))
  tfds.builder(
    "amp_space/tiny", data_dir=data_dir, file_format="array_record"
  ).download_and_prepare()
  return tfds.data_source("amp_space/tiny", data_dir=data_dir, download=False)["train"]


def _gain(record):
  names = [n.decode() for n in record["knob_names"]]
  return float(record["knob_values"][names.index("gain")])


def test_annotations_skip_audio_and_match_records(train):
  notes = filters.annotations(train)
  assert len(notes) == len(train)
  for i in (0, len(train) - 1):
    assert notes[i]["knobs"]["gain"] == _gain(train[i])
    assert notes[i]["device"] == "tube_amp" and notes[i]["source"] == "synthetic"
    span = int(train[i]["di_end"]) - int(train[i]["di_start"])
    assert span > 0 and notes[i]["seconds"] == pytest.approx(span / 44100)


def test_annotations_of_records_without_a_di_span_have_no_seconds():
  record = {"device": b"amp", "knob_names": [b"gain"], "knob_values": [5.0]}
  assert filters.annotations([record]) == [{"device": "amp", "knobs": {"gain": 5.0}}]


def test_knob_value_filter_selects_exactly_those_records(train):
  sub = filters.filtered(train, knobs={"gain": [5]})
  expected = [i for i in range(len(train)) if _gain(train[i]) == 5.0]
  assert list(sub.indices) == expected and len(sub) == len(expected) > 0
  assert all(_gain(sub[i]) == 5.0 for i in range(len(sub)))
  both = filters.matching_indices(train, knobs={"gain": [2, 8]})
  assert len(both) + len(expected) == len(train)


def test_device_and_source_filters(train):
  assert len(filters.matching_indices(train, device="tube_amp", source="synthetic")) == len(train)
  assert len(filters.matching_indices(train, source="real")) == 0
  with pytest.raises(AmpSpaceError, match="matches no record"):
    filters.filtered(train, device=["fuzz_face"])


def test_filtered_source_works_as_a_grain_source(train):
  import grain

  sub = filters.filtered(train, knobs={"gain": 8})
  ds = grain.MapDataset.source(sub).map(lambda r: _gain(r))
  assert list(ds) == [8.0] * len(sub)


def test_text_reads_a_string_feature_as_tfds_or_a_test_gives_it(train):
  assert filters.text(b"tube_amp") == "tube_amp" and filters.text("real_0003") == "real_0003"
  assert filters.text(np.asarray(b"di_7").item()) == "di_7"
  assert filters.text(train[0]["device"]) == filters.annotations(train)[0]["device"]
  assert isinstance(filters.text(train[0]["device"]), str)


def test_parse_filter():
  assert filters.parse_filter("device=a,b; source=real;gain=4,6") == {
    "device": ["a", "b"],
    "source": ["real"],
    "knobs": {"gain": [4.0, 6.0]},
  }
  assert filters.parse_filter("") == {}
  for bad in ("gain", "gain=loud", "=3"):
    with pytest.raises(AmpSpaceError):
      filters.parse_filter(bad)


def test_matches_uses_knob_aliases_and_and_semantics():
  note = {"device": "d", "source": "real", "knobs": {"mid": 5.0}}
  assert filters.matches(note, knobs={"middle": [5]})
  assert not filters.matches(note, knobs={"mid": [5]}, source="synthetic")
  assert not filters.matches(note, knobs={"gain": [5]})
  assert np.isclose(filters.KNOB_TOLERANCE, 1e-4)
