"""Knob sweeps: lists of settings for a device, deterministic for a seed.

A sweep spec is a string, so it fits on a command line and in a folder name. Dials are the
paper's: every knob discretised 1..10, mapped onto the knob's own range (identity for native
0..10 knobs; a plugin's [min, max] otherwise).

  default                   the device's defaults
  one_knob:KNOB             KNOB over 1..10, the others at their defaults
  one_knob:KNOB=2,5,8       KNOB at the listed dials
  one_knob_random:KNOB[@N]  KNOB over 1..10 while every other knob takes a random dial, N
                            such series (default 1): the sim-to-real pretraining scheme
  grid                      full Cartesian product of every knob over 1..10
  grid:gain,bass[@L]        product over the listed knobs (L evenly spaced dials, default 10)
  subsample:N[:k1,k2]       N settings drawn without replacement from that grid
  random:N                  N settings, every knob an independent random dial 1..10
  lhs:N                     N settings from a Latin hypercube over the whole dial range
  tied:a+b[@L]              the group a, b moves together over 1..10, others at defaults

Any spec may end with modifiers, each after a `|`:
  |tie:a+b[,c+d]            knobs in a group always share one dial (the group is one dimension
                            of a grid, one column of a Latin hypercube),
                            e.g. `grid:gain,bass|tie:bass+treble`
  |set:k=d[,k2=d2]          every setting has knob k at dial d (applied after the sweep;
                            settings that become equal are kept once)
  |drop:k=d[,k2=d2]         settings with any listed knob at its listed dial are left out
                            (a knob may be listed more than once)
                            (after |set): how a held-out setting stays out of training renders,
                            e.g. `subsample:8:bass,treble|set:gain=7|drop:treble=8`
The same (spec, seed) always gives the same list; different specs draw different streams.
"""

from __future__ import annotations

import itertools
import zlib

import numpy as np

from ampspace.devices.base import Device, Knob
from ampspace.errors import AmpSpaceError

PAPER_GRID = tuple(float(v) for v in range(1, 11))  # every knob discretised 1..10
MAX_SETTINGS = 200_000  # a grid larger than this is refused (use subsample:N)
KINDS = ("default", "one_knob", "one_knob_random", "grid", "subsample", "random", "lhs", "tied")


def dial_to_value(knob: Knob, dial: float) -> float:
  """The paper's 0..10 dial position -> the knob's own range (identity for native 0..10 knobs)."""
  return knob.minimum + (knob.maximum - knob.minimum) * (dial / 10.0)


def rng_for(seed: int, *keys: int) -> np.random.Generator:
  return np.random.default_rng([seed, *keys])


def _levels(n: int, spec: str) -> tuple[float, ...]:
  if n < 1 or n > 10:
    raise AmpSpaceError(f"sweep {spec!r}: number of levels must be 1..10, got {n}")
  if n == 1:
    return (5.0,)
  return tuple(float(round(v, 3)) for v in np.linspace(1.0, 10.0, n))


def _int(text: str, spec: str, what: str) -> int:
  try:
    value = int(text)
  except ValueError:
    raise AmpSpaceError(f"sweep {spec!r}: {what} must be an integer, got {text!r}") from None
  if value < 1:
    raise AmpSpaceError(f"sweep {spec!r}: {what} must be >= 1, got {value}")
  return value


class _Sweep:
  """The device's knobs grouped into dimensions (tied knobs share one) and the setting builder."""

  def __init__(self, device: Device, spec: str, ties: list[tuple[str, ...]]):
    self.device, self.spec = device, spec
    self.specs = {k.name: k for k in device.knobs}
    seen: dict[str, tuple[str, ...]] = {}
    for group in ties:
      for k in group:
        self.check(k)
        if k in seen:
          raise AmpSpaceError(f"sweep {spec!r}: knob {k!r} is in two tied groups")
        seen[k] = group
    self.group_of = seen
    self.dims = []  # every knob once, tied knobs as one group, in the device's order
    for k in device.knob_names:
      g = seen.get(k, (k,))
      if g not in self.dims:
        self.dims.append(g)

  def check(self, knob: str) -> str:
    if knob not in self.specs:
      raise AmpSpaceError(
        f"sweep {self.spec!r}: device {self.device.name!r} has no knob "
        f"{knob!r}; its knobs are {sorted(self.specs)}"
      )
    return knob

  def dims_for(self, knobs: list[str]) -> list[tuple[str, ...]]:
    out = []
    for k in knobs:
      g = self.group_of.get(self.check(k), (k,))
      if g not in out:
        out.append(g)
    return out

  def setting(self, dials: dict[tuple[str, ...], float]) -> dict[str, float]:
    s = self.device.defaults
    for group, dial in dials.items():
      for k in group:
        s[k] = float(round(dial_to_value(self.specs[k], dial), 6))
    return s


def one_knob(device: Device, knob: str, dials=PAPER_GRID) -> list[dict[str, float]]:
  sw = _Sweep(device, f"one_knob:{knob}", [])
  sw.check(knob)
  return [sw.setting({(knob,): d}) for d in dials]


def _parse_dials(text: str, spec: str) -> tuple[float, ...]:
  try:
    values = tuple(float(v) for v in text.split(","))
  except ValueError:
    raise AmpSpaceError(f"sweep {spec!r}: dial values must be numbers") from None
  bad = [v for v in values if not (0.0 <= v <= 10.0)]
  if bad:
    raise AmpSpaceError(f"sweep {spec!r}: dials must be in 0..10, got {bad}")
  return values


def _grid(sw: _Sweep, dims: list[tuple[str, ...]], levels) -> list[dict[str, float]]:
  total = len(levels) ** len(dims)
  if total > MAX_SETTINGS:
    raise AmpSpaceError(
      f"sweep {sw.spec!r}: the grid has {total:.3g} settings (> {MAX_SETTINGS});"
      " use subsample:N or fewer knobs"
    )
  return [
    sw.setting(dict(zip(dims, combo))) for combo in itertools.product(levels, repeat=len(dims))
  ]


def _knob_dials(text: str, spec: str, what: str) -> list[tuple[str, float]]:
  """ "gain=7,treble=8" -> [("gain", 7.0), ("treble", 8.0)] (dials in 0..10)."""
  out = []
  for item in text.split(","):
    knob, eq, dial = item.partition("=")
    if not knob or not eq or not dial:
      raise AmpSpaceError(f"sweep {spec!r}: expected |{what}:knob=dial[,knob=dial], got {item!r}")
    out += [(knob, d) for d in _parse_dials(dial, spec)]
  return out


def _modifiers(spec: str):
  """(base spec, tied groups, knobs set, knobs dropped) of a spec with `|` modifiers."""
  base, *mods = spec.split("|")
  ties: list[tuple[str, ...]] = []
  fixed: dict[str, float] = {}
  dropped: list[tuple[str, float]] = []
  for mod in mods:
    mkind, _, marg = mod.partition(":")
    if mkind == "tie" and marg:
      ties += [tuple(g.split("+")) for g in marg.split(",")]
      if any(len(g) < 2 or "" in g for g in ties):
        raise AmpSpaceError(f"sweep {spec!r}: a tied group needs two or more knobs: a+b")
    elif mkind == "set" and marg:
      for knob, dial in _knob_dials(marg, spec, mkind):
        if fixed.setdefault(knob, dial) != dial:
          raise AmpSpaceError(f"sweep {spec!r}: |set gives knob {knob!r} two dials")
    elif mkind == "drop" and marg:
      dropped += _knob_dials(marg, spec, mkind)
    else:
      raise AmpSpaceError(
        f"sweep {spec!r}: unknown modifier {mod!r}; use |tie:a+b, |set:knob=dial or |drop:knob=dial"
      )
  return base, ties, fixed, dropped


def parse_sweep(spec: str, device: Device, seed: int = 0) -> list[dict[str, float]]:
  """Turns a sweep spec string into a list of full settings dicts (deterministic for a seed)."""
  base, ties, fixed, dropped = _modifiers(spec)
  sw = _Sweep(device, spec, ties)
  rng = rng_for(seed, zlib.crc32(spec.encode()))
  settings = _base_settings(base, sw, ties, rng, device, spec)
  value = lambda knob, dial: float(round(dial_to_value(sw.specs[sw.check(knob)], dial), 6))
  if fixed:
    set_values = {
      m: value(m, d)  # a tied knob sets its group
      for k, d in fixed.items()
      for m in sw.group_of.get(sw.check(k), (k,))
    }
    unique: dict[tuple, dict[str, float]] = {}
    for s in settings:
      s = {**s, **set_values}
      unique.setdefault(tuple(sorted(s.items())), s)
    settings = list(unique.values())
  if dropped:
    drop_values = [(k, value(k, d)) for k, d in dropped]
    settings = [s for s in settings if not any(abs(s[k] - v) < 1e-6 for k, v in drop_values)]
    if not settings:
      raise AmpSpaceError(f"sweep {spec!r}: |drop leaves no settings")
  return settings


def _base_settings(
  base: str, sw: _Sweep, ties, rng, device: Device, spec: str
) -> list[dict[str, float]]:
  """The settings of the sweep before its |set and |drop modifiers."""
  kind, _, arg = base.partition(":")
  if kind == "default":
    return [device.defaults]
  if kind == "one_knob":
    knob, _, dials = arg.partition("=")
    if not knob:
      raise AmpSpaceError(f"sweep {spec!r}: expected one_knob:KNOB or one_knob:KNOB=v1,v2")
    values = _parse_dials(dials, spec) if dials else PAPER_GRID
    (dim,) = sw.dims_for([knob])
    return [sw.setting({dim: d}) for d in values]
  if kind == "one_knob_random":
    arg, _, reps = arg.partition("@")
    knob, _, dials = arg.partition("=")
    if not knob:
      raise AmpSpaceError(f"sweep {spec!r}: expected one_knob_random:KNOB[=v1,v2][@N]")
    values = _parse_dials(dials, spec) if dials else PAPER_GRID
    (dim,) = sw.dims_for([knob])
    others = [d for d in sw.dims if d != dim]
    out = []
    for _ in range(_int(reps, spec, "series count") if reps else 1):
      context = {d: float(rng.choice(PAPER_GRID)) for d in others}
      out += [sw.setting({**context, dim: v}) for v in values]
    return out
  if kind in ("grid", "tied"):
    arg, _, lv = arg.partition("@")
    levels = _levels(_int(lv, spec, "levels"), spec) if lv else PAPER_GRID
    if kind == "tied":
      group = tuple(arg.split("+"))
      if len(group) < 2 or "" in group:
        raise AmpSpaceError(f"sweep {spec!r}: expected tied:a+b[+c][@L]")
      sw = _Sweep(device, spec, ties + [group])
      dims = sw.dims_for([group[0]])
    else:
      dims = sw.dims_for(arg.split(",")) if arg else sw.dims
    return _grid(sw, dims, levels)
  if kind == "subsample":
    n_text, _, knobs = arg.partition(":")
    n = _int(n_text, spec, "N")
    dims = sw.dims_for(knobs.split(",")) if knobs else sw.dims
    total = len(PAPER_GRID) ** len(dims)
    if n > total:
      raise AmpSpaceError(f"sweep {spec!r}: asks for {n} settings but the grid has {total}")
    flat = np.sort(rng.choice(total, size=n, replace=False)) if total < 2**62 else None
    if flat is None:
      raise AmpSpaceError(f"sweep {spec!r}: too many knobs to subsample exactly; use random:N")
    out = []
    for idx in flat.tolist():
      dials = {}
      for d in reversed(dims):  # mixed-radix decode, last dimension fastest (as in grid)
        idx, r = divmod(idx, len(PAPER_GRID))
        dials[d] = PAPER_GRID[r]
      out.append(sw.setting(dials))
    return out
  if kind == "random":
    n = _int(arg, spec, "N")
    return [sw.setting({d: float(rng.choice(PAPER_GRID)) for d in sw.dims}) for _ in range(n)]
  if kind == "lhs":
    n = _int(arg, spec, "N")
    from scipy.stats import qmc

    u = qmc.LatinHypercube(d=len(sw.dims), seed=rng).random(n) if sw.dims else np.zeros((n, 0))
    return [
      sw.setting({d: float(round(10.0 * row[i], 3)) for i, d in enumerate(sw.dims)}) for row in u
    ]
  raise AmpSpaceError(f"unknown sweep kind {kind!r} in {spec!r}; known: {', '.join(KINDS)}")


def sweep_dirname(spec: str) -> str:
  """A folder-safe name for a sweep spec."""
  return "".join(c if c.isalnum() or c in "._-" else "_" for c in spec)


def sweep_size(spec: str, device: Device, seed: int = 0) -> int:
  return len(parse_sweep(spec, device, seed))


__all__ = ["PAPER_GRID", "dial_to_value", "one_knob", "parse_sweep", "rng_for", "sweep_dirname"]
