"""The conditioning vector: the gain role shared by drive-like knobs, in training and exports."""

from __future__ import annotations

import numpy as np
import pytest

from ampspace import conditioning as cond


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
  from ampspace import export, export_runtime
  vocab = export.vocabulary()
  for knobs in ({"drive": 7.0, "tone": 2.0}, {"gain": 3.0, "fuzz": 9.0}, {"level": 4.0}):
    values, mask = cond.knob_vector({k: v / 10 for k, v in knobs.items()})
    expected = cond.conditioning_vector(values, mask, np.int32(0),
                                        cond.attribute_indices({}))
    got = export_runtime.conditioning_vector(vocab, knobs, "other", {}, {})
    np.testing.assert_allclose(got, expected, atol=1e-7)
