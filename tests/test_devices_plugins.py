"""Plugin devices: Guitarix LV2 through the project's C host, pedalboard/VST3 wrapper.

LV2 tests skip with a reason when lilv, a C compiler or the guitarix-lv2 bundles are missing,
unless AMPSPACE_REQUIRE_PLUGINS=1 (then they fail): see `require_lv2`.
"""

from __future__ import annotations

import shutil
import types

import numpy as np
import pedalboard
import pytest

from ampspace import SAMPLE_RATE
from ampspace.conditioning import DEVICE_VOCAB, KNOB_VOCAB, canonical_knob
from ampspace.devices import get_device, lv2
from ampspace.devices.base import Knob
from ampspace.devices.vst3 import PedalboardDevice, knobs_from_parameters
from ampspace.di.karplus import phrase
from ampspace.errors import AmpSpaceError
from conftest import require_or_skip

SR = SAMPLE_RATE


def lv2_unavailable_reason() -> str | None:
  """Why the LV2 tests cannot run here, or None. The one place that decides."""
  if not shutil.which("pkg-config") or not shutil.which("cc"):
    return "no C compiler / pkg-config to build the LV2 host"
  missing = [s.bundle for s in lv2.GUITARIX.values() if not lv2.find_bundle(s.bundle)]
  if missing:
    return f"guitarix-lv2 bundles missing: {missing[:3]}... (apt install guitarix-lv2)"
  try:
    from ampspace.devices import lv2host

    lv2host.load()
  except (AmpSpaceError, OSError) as e:
    return f"LV2 host cannot be built or loaded (apt install liblilv-dev lv2-dev): {e}"
  return None


@pytest.fixture(scope="module")
def require_lv2():
  reason = lv2_unavailable_reason()
  require_or_skip(reason is None, reason or "")


def xcorr_lag(a, b, max_lag=200):
  """Lag of b relative to a at the cross-correlation peak."""
  lags = range(-max_lag, max_lag + 1)
  n = len(a) - 2 * max_lag
  scores = [np.dot(a[max_lag : max_lag + n], b[max_lag + k : max_lag + k + n]) for k in lags]
  return list(lags)[int(np.argmax(scores))]


@pytest.fixture(scope="module")
def di():
  return phrase(5, 0.5)


def test_guitarix_knobs_from_ports(require_lv2):
  dev = get_device("gx_ts9")
  specs = {k.name: k for k in dev.knobs}
  assert set(specs) == {"level", "tone", "drive"}  # fslider*_ renamed; BYPASS fixed on
  assert (specs["tone"].minimum, specs["tone"].maximum, specs["tone"].default) == (100, 1000, 400)
  assert dev.vst_name == "GxTubeScreamer" and dev.brand == "guitarix"
  with pytest.raises(AmpSpaceError, match="gx_ts9.*no knob 'gain'"):
    dev.process(np.zeros(1000, np.float32), {"gain": 1.0})
  with pytest.raises(AmpSpaceError, match="'tone'=5000.0 is outside"):
    dev.process(np.zeros(1000, np.float32), {"tone": 5000.0})


def test_guitarix_devices_map_into_the_vocabulary(require_lv2, di):
  for name in lv2.available_guitarix():
    dev = get_device(name)
    canon = [canonical_knob(k) for k in dev.knob_names]
    assert all(k in KNOB_VOCAB for k in canon), (name, canon)
    assert len(set(canon)) == len(canon), (name, canon)
    assert name in DEVICE_VOCAB


def test_guitarix_drive_and_determinism(require_lv2, di):
  dev = get_device("gx_bossds1")

  def crest(y):
    return np.max(np.abs(y)) / np.std(y)

  assert crest(dev.process(di, {"drive": 1.0})) < crest(dev.process(di, {"drive": 0.0}))
  amp = get_device("gx_amp")  # worker + atom ports
  a, b = amp.process(di, {"gain": 10.0}), amp.process(di, {"gain": 10.0})
  np.testing.assert_array_equal(a, b)
  assert np.std(a) > 1e-3 and np.all(np.isfinite(a))
  assert np.std(amp.process(di, {"gain": -20.0})) < np.std(a)


@pytest.mark.parametrize("name", ["gx_ts9", "gx_bossds1", "gx_compressor"])
def test_guitarix_latency_is_compensated(require_lv2, name):
  dev = get_device(name)
  # Quiet white noise: near-linear, and no periodicity for the correlation to lock onto.
  x = np.random.default_rng(0).normal(0, 0.005, SR // 4).astype(np.float32)
  y = dev.process(x, None, SR)
  assert abs(xcorr_lag(x, y)) <= 2, (name, dev.latency_samples)


def test_lv2_unknown_plugin_is_named(require_lv2):
  with pytest.raises(AmpSpaceError, match="not installed"):
    get_device("lv2:http://example.org/no-such-plugin")


def test_pedalboard_device_compensates_latency():
  plugin = pedalboard.Delay(delay_seconds=0.005, feedback=0.0, mix=1.0)
  dev = PedalboardDevice(plugin, "pb_delay", (Knob("feedback", 0.0, 0.0, 1.0),))
  assert 200 <= dev.latency_samples <= 222
  x = np.random.default_rng(1).normal(0, 0.1, 8192).astype(np.float32)
  assert xcorr_lag(x, dev.process(x, None, SR)) == 0
  with pytest.raises(AmpSpaceError, match="pb_delay.*no knob 'mix'"):
    dev.process(x, {"mix": 0.5}, SR)


def test_pedalboard_builtin_knobs_drive():
  dev = PedalboardDevice(pedalboard.Distortion(), "pb_distortion", (Knob("drive_db", 25, 0, 60),))
  x = (0.1 * np.sin(2 * np.pi * 220 * np.arange(8192) / SR)).astype(np.float32)
  lo, hi = (dev.process(x, {"drive_db": v}) for v in (0.0, 40.0))
  assert np.max(np.abs(hi)) / np.std(hi) < np.max(np.abs(lo)) / np.std(lo)


def test_vst3_parameters_become_knobs():
  """load_plugin needs a .vst3 (none ship with Debian), so the mapping is tested on objects
  shaped like pedalboard's AudioProcessorParameter."""
  params = {
    "drive": types.SimpleNamespace(type=float, min_value=0.0, max_value=10.0),
    "bypass": types.SimpleNamespace(type=bool, min_value=False, max_value=True),
    "mode": types.SimpleNamespace(type=str),
    "cutoff_hz": types.SimpleNamespace(type=float, min_value=20.0, max_value=20000.0),
  }
  knobs, skipped = knobs_from_parameters(params, {"drive": 3.5, "bypass": True, "cutoff_hz": 1e6})
  by = {k.name: k for k in knobs}
  assert skipped == ["mode"]
  assert (by["drive"].minimum, by["drive"].maximum, by["drive"].default) == (0.0, 10.0, 3.5)
  assert (by["bypass"].maximum, by["bypass"].default) == (1.0, 1.0)
  assert by["cutoff_hz"].default == 20000.0  # clamped into range


def test_vst3_missing_file_is_named(tmp_path):
  with pytest.raises(AmpSpaceError, match="not found"):
    get_device(f"vst3:{tmp_path}/nothing.vst3")
