"""The conditioning vector: the gain role shared by drive-like knobs, in training and exports,
and `conditioning_for`, the one way from a device and its dial settings to a vector."""

from __future__ import annotations

import numpy as np
import pytest

from ampspace import conditioning as cond
from ampspace.errors import AmpSpaceError


def test_drive_like_knobs_share_the_gain_slot():
  gain = cond.KNOB_VOCAB.index("gain")
  for knob in ("drive", "fuzz", "sustain", "Distortion"):
    values, mask = cond.knob_vector({knob: 0.7, "tone": 0.2})
    assert mask[gain] == 1.0 and values[gain] == pytest.approx(0.7), knob
    assert values[cond.KNOB_VOCAB.index(cond.canonical_knob(knob))] == pytest.approx(0.7)
  # an amp's own gain wins over its drive
  values, _ = cond.knob_vector({"gain": 0.2, "drive": 0.9})
  assert values[gain] == pytest.approx(0.2)
  assert cond.gain_role_knob(["level", "tone"]) is None
  assert cond.gain_role_knob(["Sustain", "tone"]) == "sustain"


def test_export_runtime_applies_the_same_gain_role():
  from ampspace.runtime import export, export_runtime

  vocab = export.vocabulary()
  for knobs in ({"drive": 7.0, "tone": 2.0}, {"gain": 3.0, "fuzz": 9.0}, {"level": 4.0}):
    values, mask = cond.knob_vector({k: v / 10 for k, v in knobs.items()})
    expected = cond.conditioning_vector(values, mask, np.int32(0), cond.attribute_indices({}))
    got = export_runtime.conditioning_vector(vocab, knobs, "other", {}, {})
    np.testing.assert_allclose(got, expected, atol=1e-7)


# ----------------------------------------------------------------- conditioning_for
def _expected(device: str, normalised: dict, attributes: dict) -> np.ndarray:
  """The vector as the dataset builder annotates a clip: knobs in [0, 1], device, attributes."""
  values, mask = cond.knob_vector(normalised)
  return cond.conditioning_vector(
    values, mask, np.int32(cond.device_index(device)), cond.attribute_indices(attributes)
  ).astype(np.float32)


@pytest.fixture
def compressor_in_db(monkeypatch):
  """A zoo device whose knobs are not 0..10 dials, named as a device of the vocabulary."""
  from ampspace import devices
  from ampspace.devices.base import Device, Knob

  class Comp(Device):
    name = "compressor"
    knobs = (Knob("threshold", -20.0, -40.0, 0.0), Knob("Ratio", 4.0, 1.0, 20.0))
    attributes = {"topology": "feedforward", "rectifier": "none"}

    def _process(self, di, settings):
      return di

  real = devices.get_device
  monkeypatch.setattr(
    devices, "get_device", lambda name: Comp() if name == "compressor" else real(name)
  )


def test_conditioning_for_a_zoo_device_uses_its_ranges_defaults_and_attributes(compressor_in_db):
  got = cond.conditioning_for("compressor", {"threshold": -10})
  want = _expected("compressor", {"threshold": 0.75, "ratio": 3 / 19}, {"topology": "feedforward"})
  np.testing.assert_array_equal(got, want)
  assert got.dtype == np.float32 and got.shape == (cond.conditioning_dim(),)
  # knob names as canonical_knob folds them; attributes given override the device's own
  np.testing.assert_array_equal(cond.conditioning_for("compressor", {"THRESHOLD": -10}), got)
  np.testing.assert_array_equal(
    cond.conditioning_for("compressor", {"ratio": 1}, attributes={"topology": "feedback"}),
    _expected("compressor", {"threshold": 0.5, "ratio": 0.0}, {"topology": "feedback"}),
  )


def test_conditioning_for_the_real_zoo_equals_the_dataset_annotation():
  from ampspace.devices import get_device
  from tfds_ampspace.amp_space import layouts

  for name, knobs in (
    ("tube_amp", {"gain": 7, "bass": 2.5}),
    ("ts_overdrive", {"drive": 9}),
    ("cab_4x12", {}),
  ):
    dev = get_device(name)
    settings = dev.resolve(knobs)
    normalised = layouts.normalise_settings(settings, dev.describe()["knobs"])
    np.testing.assert_array_equal(
      cond.conditioning_for(name, knobs), _expected(name, normalised, dict(dev.attributes))
    )


def test_conditioning_for_a_device_outside_the_zoo():
  from tfds_ampspace.amp_space import layouts

  knobs = {"gain": 6, "Middle": 12, "level": -1}  # 0..10 dials, clipped
  got = cond.conditioning_for("my_amp", knobs, zoo=False)
  np.testing.assert_array_equal(got, _expected("other", layouts.normalise_settings(knobs, []), {}))
  assert got[cond.KNOB_VOCAB.index("mid")] == 1.0
  # a name of the vocabulary keeps its one-hot; nothing of the zoo's device is used
  onehot = cond.conditioning_for("tube_amp", {"gain": 6}, zoo=False)[
    2 * len(cond.KNOB_VOCAB) : 2 * len(cond.KNOB_VOCAB) + len(cond.DEVICE_VOCAB)
  ]
  assert onehot[cond.device_index("tube_amp")] == 1.0 and onehot.sum() == 1.0
  np.testing.assert_array_equal(
    cond.conditioning_for("my_amp", {"gain": 6}, zoo=False), _expected("other", {"gain": 0.6}, {})
  )


def test_conditioning_for_names_what_it_does_not_know():
  with pytest.raises(AmpSpaceError, match="unknown device 'wah_pedal'"):
    cond.conditioning_for("wah_pedal", {"gain": 5})
  with pytest.raises(AmpSpaceError, match="device 'tube_amp' has no knob 'wah'"):
    cond.conditioning_for("tube_amp", {"wah": 3})
  with pytest.raises(AmpSpaceError, match="device 'tube_amp' has no knob 'drive'"):
    cond.conditioning_for("tube_amp", {"drive": 3})  # in the vocabulary, not on this amp
  with pytest.raises(AmpSpaceError, match="--knobs: knob 'wobble' is not in the conditioning"):
    cond.conditioning_for("my_amp", {"wobble": 3}, zoo=False, where="--knobs")
  with pytest.raises(AmpSpaceError, match="attribute 'colour' is not in the conditioning"):
    cond.conditioning_for("tube_amp", attributes={"colour": "red"})
  with pytest.raises(AmpSpaceError, match="'gain'=12.0 is outside"):
    cond.conditioning_for("tube_amp", {"gain": 12})
  with pytest.raises(AmpSpaceError, match="'gain': value 'loud' is not a number"):
    cond.conditioning_for("my_amp", {"gain": "loud"}, zoo=False)
  with pytest.raises(AmpSpaceError, match="not finite"):
    cond.conditioning_for("my_amp", {"gain": float("nan")}, zoo=False)


def test_every_place_that_builds_a_vector_from_a_device_agrees():
  # (launch/interpolation.py's Sounds.conditioning too: tests/test_vae_interpolation.py loads it)
  from ampspace import fit, notebook_utils
  from ampspace.runtime import export, export_runtime

  want = cond.conditioning_for("tube_amp", {"gain": 3, "treble": 8})
  np.testing.assert_array_equal(
    notebook_utils.conditioning_for("tube_amp", {"gain": 3, "treble": 8}), want
  )
  ranges, defaults, attrs = export.device_info("tube_amp")
  setting = {
    "device": "tube_amp",
    "knobs": {**defaults, "gain": 3, "Treble": 8},
    "attributes": attrs,
  }
  np.testing.assert_array_equal(export.setting_conditioning(setting), want)
  # the standalone runtime, from an export's vocabulary and knob ranges alone
  got = export_runtime.conditioning_vector(
    export.vocabulary(), setting["knobs"], "tube_amp", attrs, ranges
  )
  np.testing.assert_allclose(got, want, atol=1e-7)
  np.testing.assert_array_equal(
    fit.capture_conditioning("my_amp", {"gain": 3}),
    cond.conditioning_for("my_amp", {"gain": 3}, zoo=False),
  )
  # a device the zoo has no device for here: 0..10 dials, as the export's knob ranges say
  other = {"device": "other", "knobs": {"gain": 3}, "attributes": {}}
  np.testing.assert_array_equal(
    export.setting_conditioning(other), _expected("other", {"gain": 0.3}, {})
  )


def test_exports_take_knobs_as_their_runtime_does(compressor_in_db):
  """strict=False: a knob the device lacks is a 0..10 dial of the vocabulary, and dials are
  clipped to their range (an export's runtime takes knobs so)."""
  got = cond.conditioning_for("compressor", {"threshold": 10, "gain": 5}, strict=False)
  np.testing.assert_array_equal(
    got,
    _expected(
      "compressor", {"threshold": 1.0, "ratio": 3 / 19, "gain": 0.5}, {"topology": "feedforward"}
    ),
  )
  with pytest.raises(AmpSpaceError, match="no knob 'gain'"):
    cond.conditioning_for("compressor", {"gain": 5})
  with pytest.raises(AmpSpaceError, match="knob 'wobble' is not in the conditioning"):
    cond.conditioning_for("compressor", {"wobble": 5}, strict=False)
