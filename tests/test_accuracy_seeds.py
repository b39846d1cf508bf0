"""benchmarks/accuracy_seeds.py's pooling of seeds into means and intervals."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def seeds():
  spec = importlib.util.spec_from_file_location(
    "accuracy_seeds", os.path.join(REPO, "benchmarks", "accuracy_seeds.py")
  )
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _report(esr_by_seconds: dict, contender="ours_nam_layout", capture="amp"):
  return {
    "results": {
      capture: {
        contender: {"scores": [{"seconds": s, "esr": e} for s, e in esr_by_seconds.items()]}
      }
    }
  }


def test_interval_is_the_t_interval_of_the_mean(seeds):
  mean, lo, hi = seeds.interval([1.0, 2.0, 3.0])
  assert mean == 2.0 and hi - mean == pytest.approx(4.302653 * 1.0 / np.sqrt(3), rel=1e-5)
  assert np.isnan(seeds.interval([1.0])[1])


def test_table_pools_seeds_per_variant_and_says_whether_intervals_overlap(seeds):
  reports = {
    ("flax", 0): _report({300.0: 0.20}),
    ("flax", 1): _report({300.0: 0.22}),
    ("flax", 2): _report({300.0: 0.24}),
    ("torch", 0): _report({300.0: 0.04}),
    ("torch", 1): _report({300.0: 0.05}),
    ("torch", 2): _report({300.0: 0.06}),
    ("torch", 3): {"results": {"amp": {"ours_nam_layout": {"error": "rc 1"}}}},
  }
  cells = seeds.collect(reports, "ours_nam_layout")
  assert cells[("amp", "flax", 300.0)] == [0.20, 0.22, 0.24]
  assert cells[("amp", "torch", 300.0)] == [0.04, 0.05, 0.06]  # the failed run is left out
  md = seeds.markdown(
    cells,
    ["flax", "torch"],
    [0, 1, 2, 3],
    {
      "command": "c",
      "commit": "abc",
      "when": "now",
      "machine": "m",
      "contender": "ours_nam_layout",
    },
  )
  assert "| amp | flax | 300 s | 0.2200 |" in md and "0.0400, 0.0500, 0.0600" in md
  assert "| amp | 300 s | torch | 0.23 | no |" in md
  one = seeds.markdown(
    seeds.collect({k: v for k, v in reports.items() if k[1] == 0}, "ours_nam_layout"),
    ["flax", "torch"],
    [0],
    {
      "command": "c",
      "commit": "abc",
      "when": "now",
      "machine": "m",
      "contender": "ours_nam_layout",
    },
  )
  assert "| amp | 300 s | torch | 0.20 | — |" in one  # one seed: no interval to compare


def test_variants_name_their_contender_and_nam_needs_no_override(seeds):
  assert seeds.parse_variant("torch:model.init=torch", "ours_nam_layout") == (
    "torch",
    "ours_nam_layout",
    ["model.init=torch"],
  )
  assert seeds.parse_variant("recipe@nam", "ours_nam_layout") == ("recipe", "nam", [])
  assert seeds.parse_variant("lr@ours_paper:a=1;b=2", "x") == ("lr", "ours_paper", ["a=1", "b=2"])
  for bad in ("torch", "torch:model.init", "@nam", "x@", ":a=1"):
    with pytest.raises(SystemExit, match="--variant"):
      seeds.parse_variant(bad, "ours_nam_layout")


def test_compare_across_budgets_and_contenders(seeds):
  reports = {}
  for seed, (ours, nam) in enumerate([(0.014, 0.018), (0.013, 0.015), (0.012, 0.016)]):
    reports[("ours", seed)] = _report({120.0: 0.05, 300.0: ours})
    reports[("recipe", seed)] = _report({300.0: 0.03, 600.0: nam}, contender="nam")
  cells = seeds.collect(reports, {"ours": "ours_nam_layout", "recipe": "nam"})
  assert cells[("amp", "recipe", 600.0)] == [0.018, 0.015, 0.016]
  assert cells[("amp", "ours", 300.0)] == [0.014, 0.013, 0.012]
  compares = [seeds.parse_compare("ours@300/recipe@600")]
  assert compares == [(("ours", 300.0), ("recipe", 600.0))]
  md = seeds.comparison(cells, compares)
  row = [line for line in md.splitlines() if line.startswith("| amp |")]
  assert len(row) == 1
  assert "| ours at 300 s | recipe at 600 s | 0.0130 | 0.0163 | 0.80 |" in row[0]
  # [0.0105, 0.0155] against [0.0125, 0.0201]: they overlap
  assert "[0.0105, 0.0155] | [0.0125, 0.0201] | no |" in row[0]
  with pytest.raises(SystemExit, match="--compare"):
    seeds.parse_compare("ours@300")
