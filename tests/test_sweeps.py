"""Sweep specs: the grammar, determinism for a seed, tied groups, clear errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ampspace.devices import get_device
from ampspace.errors import AmpSpaceError
from ampspace.sweeps import PAPER_GRID, parse_sweep, sweep_dirname


@pytest.fixture(scope="module")
def amp():
  return get_device("tube_amp")  # gain bass mid treble presence master


def test_default_and_one_knob(amp):
  assert parse_sweep("default", amp) == [amp.defaults]
  s = parse_sweep("one_knob:gain", amp)
  assert [x["gain"] for x in s] == list(PAPER_GRID)
  assert all(x["bass"] == 5.0 for x in s)
  assert [x["treble"] for x in parse_sweep("one_knob:treble=2,8", amp)] == [2.0, 8.0]


def test_grid_is_the_cartesian_product(amp):
  s = parse_sweep("grid:gain,bass@3", amp)
  pairs = [(x["gain"], x["bass"]) for x in s]
  assert pairs == list(itertools.product((1.0, 5.5, 10.0), repeat=2))
  assert len(parse_sweep("grid:gain,bass,mid", amp)) == 1000
  with pytest.raises(AmpSpaceError, match="use subsample"):
    parse_sweep("grid", amp)  # 10^6 settings


def test_subsample_draws_distinct_grid_points(amp):
  s = parse_sweep("subsample:50", amp, seed=3)
  keys = {tuple(x.values()) for x in s}
  assert len(keys) == 50
  assert all(v in PAPER_GRID for x in s for v in x.values())
  sub = parse_sweep("subsample:7:gain,bass", amp, seed=3)
  assert all(x["mid"] == 5.0 for x in sub) and len({(x["gain"], x["bass"]) for x in sub}) == 7
  with pytest.raises(AmpSpaceError, match="grid has 10"):
    parse_sweep("subsample:11:gain", amp)


def test_random_and_lhs(amp):
  r = parse_sweep("random:200", amp, seed=1)
  gains = [x["gain"] for x in r]
  assert set(gains) == set(PAPER_GRID)  # every dial is drawn over 200 draws
  lhs = np.array([[x[k] for k in amp.knob_names] for x in parse_sweep("lhs:20", amp, seed=1)])
  for col in lhs.T:  # one sample per stratum of the dial range in every column
    assert sorted(np.floor(col / 0.5).astype(int)) == list(range(20))


def test_one_knob_random_sweeps_one_knob_over_random_contexts(amp):
  s = parse_sweep("one_knob_random:gain@3", amp, seed=0)
  assert len(s) == 30
  for series in (s[0:10], s[10:20], s[20:30]):
    assert [x["gain"] for x in series] == list(PAPER_GRID)
    others = {tuple(v for k, v in x.items() if k != "gain") for x in series}
    assert len(others) == 1  # the context is fixed within a series
  contexts = {tuple(v for k, v in s[i].items() if k != "gain") for i in (0, 10, 20)}
  assert len(contexts) > 1


def test_ties(amp):
  s = parse_sweep("tied:bass+treble@4", amp)
  assert len(s) == 4 and all(x["bass"] == x["treble"] for x in s)
  g = parse_sweep("grid:gain,bass@2|tie:bass+treble", amp)
  assert len(g) == 4 and all(x["bass"] == x["treble"] for x in g)
  lhs = parse_sweep("lhs:10|tie:mid+presence", amp, seed=2)
  assert all(x["mid"] == x["presence"] for x in lhs)
  with pytest.raises(AmpSpaceError, match="two tied groups"):
    parse_sweep("random:2|tie:bass+mid,mid+treble", amp)


def test_set_and_drop_keep_a_held_out_setting_out(amp):
  tone = parse_sweep("subsample:30:bass,mid,treble,presence|set:gain=7|drop:treble=8", amp)
  assert tone and all(x["gain"] == 7.0 for x in tone)
  assert all(x["treble"] != 8.0 for x in tone)
  plain = parse_sweep("subsample:30:bass,mid,treble,presence|set:gain=7", amp)
  assert any(x["treble"] == 8.0 for x in plain)  # the drop removed something real
  gains = parse_sweep("one_knob:gain|drop:gain=5,gain=6", amp)
  assert [x["gain"] for x in gains] == [g for g in PAPER_GRID if g not in (5.0, 6.0)]
  with pytest.raises(AmpSpaceError, match="leaves no settings"):  # any listed knob drops
    parse_sweep("one_knob:gain|drop:gain=5,treble=5", amp)  # (treble is 5 throughout)
  dup = parse_sweep("grid:gain,bass@2|set:bass=3", amp)  # settings made equal are kept once
  assert sorted(x["gain"] for x in dup) == [1.0, 10.0] and all(x["bass"] == 3.0 for x in dup)
  with pytest.raises(AmpSpaceError, match="two dials"):
    parse_sweep("default|set:gain=2,gain=3", amp)
  tied = parse_sweep("one_knob:gain|tie:bass+treble|set:bass=2", amp)
  assert all(x["bass"] == x["treble"] == 2.0 for x in tied)


@pytest.mark.parametrize("spec", ["random:5", "lhs:5", "subsample:5", "one_knob_random:bass@2"])
def test_deterministic_for_a_seed(spec, amp):
  assert parse_sweep(spec, amp, seed=7) == parse_sweep(spec, amp, seed=7)
  assert parse_sweep(spec, amp, seed=7) != parse_sweep(spec, amp, seed=8)


def test_plugin_ranges_are_mapped_from_dials():
  from ampspace.devices.base import Knob
  from ampspace.sweeps import dial_to_value

  assert dial_to_value(Knob("tone", 400, 100, 1000), 5.0) == 550.0


@pytest.mark.parametrize(
  "spec,message",
  [
    ("one_knob:volume", "no knob 'volume'"),
    ("zigzag:3", "unknown sweep kind 'zigzag'"),
    ("random:x", "N must be an integer"),
    ("random:0", "must be >= 1"),
    ("one_knob:gain=11", "dials must be in 0..10"),
    ("grid:gain@12", "levels must be 1..10"),
    ("random:3|bogus", "unknown modifier 'bogus'"),
    ("tied:bass", "tied:a\\+b"),
    ("default|set:gain", "set:knob=dial"),
    ("one_knob:gain|drop:volume=2", "no knob 'volume'"),
    ("one_knob:gain=5|drop:gain=5", "leaves no settings"),
  ],
)
def test_errors_name_the_problem(spec, message, amp):
  with pytest.raises(AmpSpaceError, match=message):
    parse_sweep(spec, amp)


def test_dirname_is_folder_safe():
  assert sweep_dirname("grid:gain,bass@3|tie:bass+treble") == "grid_gain_bass_3_tie_bass_treble"
