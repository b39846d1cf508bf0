"""A listening study to send to people, and its analysis with listener-aware intervals.

  python -m ampspace.listening --mos_dir=runs/interpolation/mos --out=runs/listening \
      --listeners=20 --seed=0
  python -m ampspace.listening --package=runs/listening --returned=RETURNED_CSV_FOLDER

The first command turns launch/interpolation.py's OUT/mos into a stimulus package (MUSHRA
style, rated 1-5). Each trial group has an open reference (the real amp) and four blinded
conditions:

  group                 setting        reference        wave2wavenet         vae
  supervised            supervised     real_A           w2w_A                vae_A
  interpolation         interpolation  real_A_gain5     w2w_between          vae_between
  interpolation_treble  interpolation  real_A_treble8   w2w_between_treble   vae_between_treble

The other two conditions are the hidden reference (the reference itself) and the low anchor (the
reference low-passed at 3.5 kHz). The treble group is included when its files are there.

The package folder holds:
  README.md                 instructions for listeners, and a section for the experimenter;
  stimuli/sNN.wav           blinded stimuli, numbered in a seeded random order: a name says
                            nothing about the condition;
  stimuli/reference_<group>.wav  the open reference of each group;
  listeners/LNN.csv         one template per listener, in that listener's own random order
                            (groups in random order, conditions within a group shuffled),
                            with columns listener, trial, group, reference_file, file, rating;
  key.csv                   blinded file -> group, setting, condition, source (do not send);
  package.json              seed, listeners, groups, sources and scale (no file mapping).
Every stimulus of a group is cut to the group's shortest length, faded in and out over 10 ms
and RMS-normalised to -20 dBFS, so neither length nor level gives a condition away. The
package is written to a temporary folder and renamed into place at the end.

The second command joins the returned CSVs with key.csv (`read_package_ratings`) and reports
MOS per condition, per setting and condition (the paper's four conditions) and per group and
condition (`mos_listener_bootstrap`). Every listener rates every stimulus, so ratings from one
listener are not independent: a t interval over all ratings is far too narrow when listeners
differ in how harshly they rate. The interval here is a cluster bootstrap that resamples
listeners with replacement (all of a listener's ratings go together), with Hesterberg's
expanded-percentile correction for the few listeners of a listening test.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shutil
import tempfile
import zlib
from typing import Sequence

import numpy as np

from ampspace import SAMPLE_RATE
from ampspace.audio.wav_io import read_wav, write_wav
from ampspace.errors import AmpSpaceError, parse_flags_one_line_errors, report_errors
from ampspace.files import atomic_write
from ampspace.notebook_utils import (
  _listener_ids,
  lowpass_anchor,
  mos_order,
  normalise_rms,
  summary_markdown,
)

CONDITIONS = ("hidden_reference", "anchor", "wave2wavenet", "vae")
SCALE = {
  5: "indistinguishable from the reference",
  4: "a small difference, not disturbing",
  3: "a clear difference, slightly disturbing",
  2: "a large difference, disturbing",
  1: "very different from the reference, or bad",
}
LISTENER_COLUMNS = ("listener", "trial", "group", "reference_file", "file", "rating")
KEY_COLUMNS = ("file", "group", "setting", "condition", "source", "reference_file")
FADE_SECONDS = 0.01


@dataclasses.dataclass(frozen=True)
class Group:
  """One MUSHRA-style trial group: a reference and the two systems' renderings of it."""

  name: str
  setting: str  # "supervised" or "interpolation"
  reference: str  # WAV stems in launch/interpolation.py's OUT/mos
  wave2wavenet: str
  vae: str
  optional: bool = False

  def stems(self) -> dict[str, str]:
    return {"reference": self.reference, "wave2wavenet": self.wave2wavenet, "vae": self.vae}


GROUPS = (
  Group("supervised", "supervised", "real_A", "w2w_A", "vae_A"),
  Group("interpolation", "interpolation", "real_A_gain5", "w2w_between", "vae_between"),
  Group(
    "interpolation_treble",
    "interpolation",
    "real_A_treble8",
    "w2w_between_treble",
    "vae_between_treble",
    optional=True,
  ),
)


# ------------------------------------------------------------------------------ the package


def _groups_present(mos_dir: str) -> list[Group]:
  """The groups whose WAVs are in `mos_dir`; a required (or half-present) group's missing WAV
  is an error naming it."""
  if not os.path.isdir(mos_dir):
    raise AmpSpaceError(f"{mos_dir}: not a folder (expected launch/interpolation.py's OUT/mos)")
  out = []
  for g in GROUPS:
    have = {
      role: os.path.exists(os.path.join(mos_dir, f"{stem}.wav")) for role, stem in g.stems().items()
    }
    if g.optional and not any(have.values()):
      continue
    for role, stem in g.stems().items():
      if not have[role]:
        raise AmpSpaceError(
          f"{os.path.join(mos_dir, stem + '.wav')}: missing; the listening "
          f"package needs it (the {role} of the {g.name} group; "
          f"launch/interpolation.py writes it)"
        )
    out.append(g)
  return out


def _fade(x: np.ndarray, seconds: float = FADE_SECONDS) -> np.ndarray:
  n = min(int(round(seconds * SAMPLE_RATE)), len(x) // 2)
  y = np.array(x, np.float64)
  if n:
    ramp = np.linspace(0.0, 1.0, n, endpoint=False)
    y[:n] *= ramp
    y[len(y) - n :] *= ramp[::-1]
  return y


def group_audio(mos_dir: str, group: Group, dbfs: float = -20.0) -> dict[str, np.ndarray]:
  """{condition: audio} of one group, plus "reference" (the open reference): cut to the
  group's shortest WAV, faded, the anchor low-passed from the reference, all RMS-normalised."""
  raw = {
    role: read_wav(os.path.join(mos_dir, f"{stem}.wav"))[0] for role, stem in group.stems().items()
  }
  n = min(len(x) for x in raw.values())
  if n < int(0.1 * SAMPLE_RATE):
    short = min(raw, key=lambda role: len(raw[role]))
    raise AmpSpaceError(
      f"{os.path.join(mos_dir, group.stems()[short] + '.wav')}: "
      f"{len(raw[short])} samples; a listening stimulus needs at least 0.1 s"
    )
  cut = {role: _fade(x[:n]) for role, x in raw.items()}
  ref = normalise_rms(cut["reference"], dbfs)
  return {
    "reference": ref,
    "hidden_reference": ref,
    "anchor": normalise_rms(_fade(lowpass_anchor(cut["reference"])), dbfs),
    "wave2wavenet": normalise_rms(cut["wave2wavenet"], dbfs),
    "vae": normalise_rms(cut["vae"], dbfs),
  }


def blinded_names(groups: Sequence[Group], seed: int) -> dict[tuple[str, str], str]:
  """{(group, condition): "sNN.wav"}, numbered in a seeded random order."""
  items = [(g.name, c) for g in groups for c in CONDITIONS]
  rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xB1D]))
  width = max(2, len(str(len(items))))
  return {item: f"s{k + 1:0{width}d}.wav" for item, k in zip(items, rng.permutation(len(items)))}


def listener_orders(listeners, groups: Sequence[Group], seed: int) -> dict[str, list[tuple]]:
  """{listener: [(group, condition), ...]}: the groups in a random order, the conditions of
  each group shuffled. Seeded by `seed` and the listener's id alone (notebook_utils.mos_order),
  so adding listeners leaves the others' orders as they were."""
  names = [g.name for g in groups]
  group_orders = mos_order(listeners, names, seed)
  within = {
    g: mos_order(list(group_orders), CONDITIONS, zlib.crc32(f"{seed}:{g}".encode())) for g in names
  }
  return {
    lid: [(g, c) for g in order for c in within[g][lid]] for lid, order in group_orders.items()
  }


def _csv_text(columns: Sequence[str], rows: Sequence[dict]) -> str:
  buf = io.StringIO()
  w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
  w.writeheader()
  w.writerows(rows)
  return buf.getvalue()


def write_package(
  mos_dir: str,
  out: str,
  *,
  listeners=20,
  seed: int = 0,
  overwrite: bool = False,
  dbfs: float = -20.0,
) -> str:
  """Writes the listening package for `mos_dir` to the folder `out` (see the module doc);
  returns `out`. `listeners` is a count (L00, L01, ...) or a list of ids."""
  out = os.path.abspath(out)
  if os.path.exists(out) and not overwrite:
    raise AmpSpaceError(f"{out}: already exists; choose another --out or pass --overwrite")
  ids = _listener_ids(listeners)
  if not ids:
    raise AmpSpaceError("write_package: no listeners")
  groups = _groups_present(mos_dir)
  names = blinded_names(groups, seed)
  orders = listener_orders(ids, groups, seed)

  parent = os.path.dirname(out)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.tmp-", dir=parent)
  try:
    os.chmod(tmp, 0o777 & ~_umask())
    key, described = [], {}
    seconds = None
    for g in groups:
      audio = group_audio(mos_dir, g, dbfs)
      seconds = len(audio["reference"]) / SAMPLE_RATE
      ref_file = f"reference_{g.name}.wav"
      write_wav(os.path.join(tmp, "stimuli", ref_file), audio["reference"])
      sources = {
        "hidden_reference": f"{g.reference}.wav",
        "anchor": f"{g.reference}.wav low-passed at 3.5 kHz",
        "wave2wavenet": f"{g.wave2wavenet}.wav",
        "vae": f"{g.vae}.wav",
      }
      for c in CONDITIONS:
        write_wav(os.path.join(tmp, "stimuli", names[(g.name, c)]), audio[c])
        key.append(
          {
            "file": names[(g.name, c)],
            "group": g.name,
            "setting": g.setting,
            "condition": c,
            "source": sources[c],
            "reference_file": ref_file,
          }
        )
      described[g.name] = {
        "setting": g.setting,
        "reference_file": ref_file,
        "seconds": round(seconds, 3),
        "sources": sources,
      }
    key.sort(key=lambda r: r["file"])
    _write_text(os.path.join(tmp, "key.csv"), _csv_text(KEY_COLUMNS, key))
    os.makedirs(os.path.join(tmp, "listeners"))
    for lid, order in orders.items():
      rows = [
        {
          "listener": lid,
          "trial": t + 1,
          "group": g,
          "reference_file": f"reference_{g}.wav",
          "file": names[(g, c)],
          "rating": "",
        }
        for t, (g, c) in enumerate(order)
      ]
      _write_text(os.path.join(tmp, "listeners", f"{lid}.csv"), _csv_text(LISTENER_COLUMNS, rows))
    manifest = {
      "format": 1,
      "seed": int(seed),
      "listeners": ids,
      "mos_dir": os.path.abspath(mos_dir),
      "conditions": list(CONDITIONS),
      "groups": described,
      "scale": {str(k): v for k, v in SCALE.items()},
      "rms_dbfs": dbfs,
      "trials_per_listener": len(groups) * len(CONDITIONS),
    }
    _write_text(os.path.join(tmp, "package.json"), json.dumps(manifest, indent=2) + "\n")
    _write_text(os.path.join(tmp, "README.md"), readme(groups, ids, seed))
    if os.path.exists(out):  # --overwrite: the old package goes only once the new one is whole
      old = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.old-", dir=parent)
      os.replace(out, os.path.join(old, "package"))
      os.replace(tmp, out)
      shutil.rmtree(old, ignore_errors=True)
    else:
      os.replace(tmp, out)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return out


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


def _write_text(path: str, text: str) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8", newline="") as f:
    f.write(text)


def readme(groups: Sequence[Group], listeners: Sequence[str], seed: int) -> str:
  scale = "\n".join(f"| {k} | {v} |" for k, v in SCALE.items())
  group_list = "\n".join(
    f"- `{g.name}`: reference `stimuli/reference_{g.name}.wav`" for g in groups
  )
  n = len(groups) * len(CONDITIONS)
  who = ", ".join(listeners[:3]) + (f", ..., {listeners[-1]}" if len(listeners) > 3 else "")
  return f"""# Guitar amp listening test

Thank you for taking part. You will rate {n} short guitar recordings by how close each sounds
to a reference recording of a real amplifier.

## What you need

- **Headphones** (closed or open-back, not laptop speakers), in a quiet room.
- This folder: `stimuli/` (the sounds) and your own rating sheet, `listeners/<your id>.csv`
  (open it in a spreadsheet program or a text editor).

## What to do

1. Set a comfortable volume with the first reference file and keep it there for the whole test.
2. Go through your sheet row by row, in the order of the `trial` column. Each row names a
   `reference_file` and a `file` (both in `stimuli/`). Play the reference, then the file, as
   often as you like, and write a rating from 1 to 5 in the `rating` column:

| rating | the file sounds ... |
|---|---|
{scale}

3. Judge the sound of the amplifier (tone, distortion, noise, artefacts), not the playing.
   Some files are identical to their reference and some are clearly degraded: rate what you
   hear, and use the whole scale.
4. Rate every row, with whole numbers only. Do not change the other columns or the order.
5. Save the sheet as CSV (keep the format if your spreadsheet program asks) under the same
   name, and send it back to the person who gave you this folder.

The file names say nothing about what a file is; please do not try to find out.

## For the experimenter

Send each listener `README.md`, `stimuli/` and their own `listeners/LNN.csv` only. **Do not
send `key.csv`**: it says which file is which condition. `package.json` records the seed
({seed}), the {len(listeners)} listener ids ({who}) and the source of every condition.

Trial groups (each with a hidden reference, a low anchor at 3.5 kHz, Wave2WaveNet and the VAE):
{group_list}

Collect the returned CSVs in one folder and run

    python -m ampspace.listening --package=THIS_FOLDER --returned=RETURNED_FOLDER

It checks every sheet (ratings 1-5, every file rated once) and writes `analysis.md` and
`analysis.csv` here: MOS per condition, per setting (the paper's supervised and interpolation
settings) and per group, with 95% intervals from a bootstrap over listeners.
"""


# --------------------------------------------------------------------------- the returns


def read_key(package_dir: str) -> dict[str, dict]:
  """{blinded file: key row} of a package."""
  path = os.path.join(package_dir, "key.csv")
  if not os.path.exists(path):
    raise AmpSpaceError(
      f"{path}: missing; {package_dir} is not a listening package "
      f"(python -m ampspace.listening writes one)"
    )
  with open(path, newline="", encoding="utf-8") as f:
    reader = csv.DictReader(f)
    missing = [c for c in KEY_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
      raise AmpSpaceError(f"{path}: missing columns {missing}")
    return {r["file"]: r for r in reader}


def _returned_paths(returned) -> list[str]:
  items = [returned] if isinstance(returned, (str, os.PathLike)) else list(returned or [])
  paths = []
  for item in map(os.fspath, items):
    if os.path.isdir(item):
      paths += sorted(
        os.path.join(item, n)
        for n in os.listdir(item)
        if n.lower().endswith(".csv") and not n.startswith(".")
      )
    elif os.path.exists(item):
      paths.append(item)
    else:
      raise AmpSpaceError(f"{item}: no such returned CSV or folder")
  if not paths:
    raise AmpSpaceError(f"no returned CSVs in {', '.join(map(os.fspath, items)) or '(nothing)'}")
  return paths


def _rating(text: str, path: str, line: int, file: str) -> int:
  s = (text or "").strip()
  if not s:
    raise AmpSpaceError(f"{path}: row {line}: no rating for {file}")
  try:
    value = float(s)
  except ValueError:
    raise AmpSpaceError(f"{path}: row {line}: rating {s!r} for {file} is not a number") from None
  if not value.is_integer():
    raise AmpSpaceError(f"{path}: row {line}: rating {s!r} for {file} is not a whole number")
  if not 1 <= value <= 5:
    raise AmpSpaceError(f"{path}: row {line}: rating {s} for {file} is outside 1..5")
  return int(value)


def read_package_ratings(package_dir: str, returned, *, complete: bool = True) -> list[dict]:
  """The returned listener CSVs (paths, or folders of them) joined with the package's key.csv:
  one row per rating with listener, trial, group, setting, condition, file, rating, rater.

  The listener is the CSV's `listener` column (else its file name). Each problem is one
  AmpSpaceError naming the CSV and row: a rating that is not a whole number 1..5, a file that
  is not in the package, a file rated twice, a listener returned twice, and (when `complete`)
  a stimulus left unrated."""
  key = read_key(package_dir)
  rows: list[dict] = []
  seen: dict[str, str] = {}
  for path in _returned_paths(returned):
    with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: a spreadsheet's BOM
      text = f.read()
    header = text.split("\n", 1)[0]
    # Spreadsheets in some locales save CSV with semicolons (or tabs): take the header's.
    reader = csv.DictReader(io.StringIO(text), delimiter=max(",;\t", key=header.count))
    missing = [c for c in ("file", "rating") if c not in (reader.fieldnames or [])]
    if missing:
      raise AmpSpaceError(f"{path}: missing columns {missing}; is it a listener's sheet?")
    records = list(reader)
    default_id = os.path.splitext(os.path.basename(path))[0]
    lids = {(r.get("listener") or "").strip() or default_id for r in records}
    if len(lids) > 1:
      raise AmpSpaceError(
        f"{path}: ratings of several listeners {sorted(lids)}; expected one listener per sheet"
      )
    lid = lids.pop() if lids else default_id
    if lid in seen:
      raise AmpSpaceError(f"{path}: listener {lid} was already read from {seen[lid]}")
    seen[lid] = path
    rated: set[str] = set()
    for i, r in enumerate(records):
      line = i + 2
      file = os.path.basename((r.get("file") or "").strip())
      if file not in key:
        raise AmpSpaceError(f"{path}: row {line}: {file!r} is not a stimulus of {package_dir}")
      if file in rated:
        raise AmpSpaceError(f"{path}: row {line}: {file} is rated twice")
      rated.add(file)
      k = key[file]
      trial = (r.get("trial") or "").strip()
      rows.append(
        {
          "listener": lid,
          "trial": int(trial) if trial.isdigit() else line - 1,
          "group": k["group"],
          "setting": k["setting"],
          "condition": k["condition"],
          "file": file,
          "rating": _rating(r["rating"], path, line, file),
          "rater": (r.get("rater") or "").strip() or "human",
        }
      )
    left = sorted(set(key) - rated)
    if complete and left:
      more = f" and {len(left) - 3} more" if len(left) > 3 else ""
      raise AmpSpaceError(
        f"{path}: no rows for {', '.join(left[:3])}{more}; every stimulus must be rated"
      )
  return rows


def simulate_returns(
  package_dir: str,
  out_dir: str,
  seed: int,
  *,
  means=None,
  listener_sd: float = 0.8,
  trial_sd: float = 0.5,
) -> list[str]:
  """SIMULATED listeners (for tests and dry runs of the analysis, not opinions): fills every
  template in `package_dir`/listeners with rating = round(means[condition] + listener bias
  N(0, listener_sd) + noise N(0, trial_sd)) clipped to 1..5, and writes the sheets to `out_dir`
  with rater=simulated. Returns the paths."""
  means = dict(means or {"hidden_reference": 4.6, "anchor": 1.5, "wave2wavenet": 3.8, "vae": 2.8})
  key = read_key(package_dir)
  folder = os.path.join(package_dir, "listeners")
  rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x51A]))
  paths = []
  for name in sorted(n for n in os.listdir(folder) if n.endswith(".csv")):
    with open(os.path.join(folder, name), newline="", encoding="utf-8") as f:
      rows = list(csv.DictReader(f))
    bias = rng.normal(0.0, listener_sd)
    for r in rows:
      score = means[key[r["file"]]["condition"]] + bias + rng.normal(0.0, trial_sd)
      r["rating"] = int(np.clip(np.rint(score), 1, 5))
      r["rater"] = "simulated"
    path = os.path.join(out_dir, name)
    atomic_write(path, _csv_text((*LISTENER_COLUMNS, "rater"), rows))
    paths.append(path)
  return paths


# ---------------------------------------------------------------------------- statistics


def t_interval(x, confidence: float = 0.95) -> tuple[float, float, float]:
  """(mean, low, high) of the t interval mean ± t_{(1+c)/2, n-1}·sd/√n, which treats every
  value as independent (nan bounds for n < 2)."""
  import scipy.stats

  x = np.asarray(x, np.float64)
  mean = float(x.mean())
  if len(x) < 2:
    return mean, float("nan"), float("nan")
  half = float(
    scipy.stats.t.ppf((1 + confidence) / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
  )
  return mean, mean - half, mean + half


def expanded_levels(num_listeners: int, confidence: float = 0.95) -> tuple[float, float]:
  """The bootstrap quantile levels of Hesterberg's expanded percentile interval: the tails
  are Φ(-√(L/(L-1))·t_{(1+c)/2, L-1}), which widens the plain percentile interval by the
  factor a t interval over L listeners needs (plain percentiles cover too rarely with a
  handful of listeners)."""
  import scipy.stats

  L = int(num_listeners)
  t = scipy.stats.t.ppf((1 + confidence) / 2, L - 1)
  tail = float(scipy.stats.norm.cdf(-np.sqrt(L / (L - 1)) * t))
  return tail, 1.0 - tail


def listener_bootstrap_ci(
  ratings,
  listeners,
  confidence: float = 0.95,
  n_boot: int = 2000,
  seed: int = 0,
  expand: bool = True,
) -> tuple[float, float, float]:
  """(mean, low, high): the mean of `ratings` and a cluster-bootstrap interval that resamples
  LISTENERS with replacement, each bringing all of their ratings (`listeners[i]` rated
  `ratings[i]`); the statistic is the mean over the drawn listeners' ratings. `expand` uses
  the expanded percentile levels (`expanded_levels`), else plain percentiles. nan bounds with
  fewer than two listeners."""
  x = np.asarray(ratings, np.float64)
  ids, cluster = np.unique(np.asarray(listeners), return_inverse=True)
  sums = np.bincount(cluster, weights=x, minlength=len(ids))
  counts = np.bincount(cluster, minlength=len(ids)).astype(np.float64)
  mean = float(sums.sum() / counts.sum())
  L = len(ids)
  if L < 2:
    return mean, float("nan"), float("nan")
  rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xB007]))
  draw = rng.integers(0, L, size=(int(n_boot), L))
  boot = sums[draw].sum(axis=1) / counts[draw].sum(axis=1)
  lo, hi = (
    expanded_levels(L, confidence) if expand else ((1 - confidence) / 2, (1 + confidence) / 2)
  )
  low, high = np.quantile(boot, [lo, hi])
  return mean, float(low), float(high)


def mos_listener_bootstrap(
  rows: Sequence[dict],
  by: Sequence[str] = ("condition",),
  confidence: float = 0.95,
  n_boot: int = 2000,
  seed: int = 0,
  method: str = "listener_bootstrap",
) -> list[dict]:
  """MOS per cell of the `by` columns (e.g. ("condition",), ("setting", "condition")): the
  cell's columns, n (ratings), listeners, mean, sd, ci_half, ci_low, ci_high, method; sorted
  by the leading cell columns, then best mean first.

  method "listener_bootstrap" (default): `listener_bootstrap_ci`, seeded per cell from `seed`
  and the cell; "t": the t interval over all ratings, which ignores that each listener rates
  many stimuli (too narrow when listeners differ). Rows without a listener count as one
  listener each."""
  if method not in ("listener_bootstrap", "t"):
    raise AmpSpaceError(f"mos summary: unknown method {method!r} (listener_bootstrap or t)")
  if not rows:
    raise AmpSpaceError("mos summary: no ratings")
  cells: dict[tuple, list[dict]] = {}
  for r in rows:
    cells.setdefault(tuple(str(r[c]) for c in by), []).append(r)
  out = []
  for cell, rs in cells.items():
    x = np.array([float(r["rating"]) for r in rs])
    lids = [str(r.get("listener", i)) for i, r in enumerate(rs)]
    if method == "t":
      mean, low, high = t_interval(x, confidence)
    else:
      mean, low, high = listener_bootstrap_ci(
        x, lids, confidence, n_boot, seed=zlib.crc32(repr((int(seed), cell)).encode())
      )
    out.append(
      {
        **dict(zip(by, cell)),
        "n": len(x),
        "listeners": len(set(lids)),
        "mean": mean,
        "sd": float(x.std(ddof=1)) if len(x) > 1 else float("nan"),
        "ci_half": (high - low) / 2,
        "ci_low": low,
        "ci_high": high,
        "method": method,
      }
    )
  # Grouped by the leading cell columns (e.g. setting), best mean first within each.
  return sorted(out, key=lambda s: (*[s[c] for c in by[:-1]], -s["mean"], s[by[-1]]))


TABLES = {
  "condition": ("condition",),
  "setting": ("setting", "condition"),
  "group": ("group", "condition"),
}


def analyse(
  rows: Sequence[dict], confidence: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> dict[str, list[dict]]:
  """The three summaries of a package's ratings: per condition, per setting and condition,
  per group and condition, each with listener-bootstrap intervals."""
  return {
    name: mos_listener_bootstrap(rows, by, confidence, n_boot, seed) for name, by in TABLES.items()
  }


def analysis_markdown(
  tables: dict[str, list[dict]], rows: Sequence[dict], confidence: float = 0.95
) -> str:
  raters = sorted({r.get("rater", "human") for r in rows})
  pct = f"{100 * confidence:g}%"
  lines = [
    f"# Listening test: MOS (1-5) with {pct} intervals (bootstrap over listeners)",
    "",
    f"{len(rows)} ratings from {len({r['listener'] for r in rows})} listeners; "
    f"raters: {', '.join(raters)}.",
  ]
  if "simulated" in raters:
    lines.append("\n**SIMULATED ratings: a test of the analysis, not listeners' opinions.**")
  titles = {
    "condition": "Per condition",
    "setting": "Per setting (the paper's four conditions, "
    "with the hidden reference and the anchor)",
    "group": "Per trial group",
  }
  for name, table in tables.items():
    lines += ["", f"## {titles.get(name, name)}", "", summary_markdown(table, confidence).rstrip()]
  return "\n".join(lines) + "\n"


def write_analysis(
  package_dir: str, returned, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> dict[str, list[dict]]:
  """Reads the returns, writes `analysis.md` and `analysis.csv` (every table, long form) into
  the package folder, and returns the tables."""
  rows = read_package_ratings(package_dir, returned)
  tables = analyse(rows, confidence, n_boot, seed)
  columns = [
    "table",
    "group",
    "setting",
    "condition",
    "n",
    "listeners",
    "mean",
    "sd",
    "ci_half",
    "ci_low",
    "ci_high",
    "method",
  ]
  flat = [{"table": name, **s} for name, table in tables.items() for s in table]
  atomic_write(os.path.join(package_dir, "analysis.csv"), _csv_text(columns, flat))
  atomic_write(
    os.path.join(package_dir, "analysis.md"), analysis_markdown(tables, rows, confidence)
  )
  return tables


# -------------------------------------------------------------------------- command line


def main(argv):
  from absl import flags

  FLAGS = flags.FLAGS
  if len(argv) > 1:
    raise AmpSpaceError(f"unexpected arguments: {' '.join(argv[1:])}")
  if FLAGS.returned:
    package = FLAGS.package or FLAGS.out
    if not package:
      raise AmpSpaceError("--package (the listening package folder) is required with --returned")
    write_analysis(package, FLAGS.returned, FLAGS.confidence, FLAGS.n_boot, FLAGS.seed)
    with open(os.path.join(package, "analysis.md"), encoding="utf-8") as f:
      print(f.read())
    print(f"wrote {os.path.join(package, 'analysis.md')} and analysis.csv")
    return
  if not FLAGS.mos_dir or not FLAGS.out:
    raise AmpSpaceError("--mos_dir (launch/interpolation.py's OUT/mos) and --out are required")
  if FLAGS.listeners < 1:
    raise AmpSpaceError(f"--listeners={FLAGS.listeners}: need at least one listener")
  out = write_package(
    FLAGS.mos_dir, FLAGS.out, listeners=FLAGS.listeners, seed=FLAGS.seed, overwrite=FLAGS.overwrite
  )
  key = read_key(out)
  groups = sorted({r["group"] for r in key.values()})
  print(
    f"listening package: {out}\n  {len(key)} blinded stimuli in {len(groups)} groups "
    f"({', '.join(groups)}), {FLAGS.listeners} listener sheets, seed {FLAGS.seed}\n"
    f"  send README.md, stimuli/ and listeners/LNN.csv; keep key.csv to yourself"
  )


def run():
  from absl import app, flags

  flags.DEFINE_string("mos_dir", None, "launch/interpolation.py's OUT/mos folder of WAVs.")
  flags.DEFINE_string("out", None, "The package folder to write (must not exist).")
  flags.DEFINE_integer("listeners", 20, "Listener sheets to write (L00, L01, ...).")
  flags.DEFINE_integer("seed", 0, "Seeds the blinded names, the orders and the bootstrap.")
  flags.DEFINE_boolean("overwrite", False, "Replace an existing --out package.")
  flags.DEFINE_string("package", None, "With --returned: the package folder (default --out).")
  flags.DEFINE_multi_string(
    "returned", None, "Returned listener CSVs or folders of them: analyse instead."
  )
  flags.DEFINE_float("confidence", 0.95, "Confidence level of the intervals.")
  flags.DEFINE_integer("n_boot", 2000, "Bootstrap resamples of the listeners.")
  app.run(report_errors(main), flags_parser=parse_flags_one_line_errors)


if __name__ == "__main__":
  run()
