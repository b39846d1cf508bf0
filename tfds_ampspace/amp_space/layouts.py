"""Readers for the on-disk layouts the builder ingests. Each yields one `Clip` per paired file.

Three layouts are accepted (`read_any` tells them apart):

  release   a settings.yaml per folder, as `python -m ampspace.render` writes it;
  csv       the release's flattened variant: one data.csv row per clip with the global keys,
            `filename`, and one column per knob (empty cell: the device has no such knob);
  nam       NAM-style capture pairs: `input.wav` / `output*.wav` with the knob values and device
            fields in a small YAML or JSON beside them.

Two rules hold for all of them. Metadata files apply to their folder and every folder below it
(`device.yaml|yml|json` anywhere; in the nam layout also capture/knobs files), a nearer file's
field replacing a farther one's, so a device's fields are written once, above its captures.
A DI named by an annotation is looked for in the `--di_dir` folders (`AMPSPACE_DI_DIR`), then
relative to the recording root, then beside the annotation, in a `di/` folder there, and so on
in every folder above it, so a device folder ingested alone still finds DIs kept further up.
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import hashlib
import json
import os

import numpy as np
import yaml

from ampspace.errors import AmpSpaceError
from tfds_ampspace.amp_space import nam_capture


@dataclasses.dataclass
class Clip:
  """One (DI, device output) pair with its annotation, before audio is loaded."""

  clip_id: str
  di_path: str
  output_path: str
  di_id: str
  di_start: int
  di_end: int
  device: str
  brand: str
  source: str
  device_type: str
  settings: dict[str, float]
  knob_specs: list[dict]
  attributes: dict[str, str]
  # How the recording's latency is known (see `latency_fields`); none of them: not shifted.
  latency_samples: float | None = None  # annotated (the paper's `time-delay`), in samples
  blip_at: int | None = None  # a calibration blip at this DI sample; the output
  # file then spans the whole DI file from sample 0
  loopback_path: str | None = None  # the DI file recorded through the interface alone
  more_blips: tuple[int, ...] = ()  # further blips of the same capture (NAM's standard
  # signal has two); their latencies must agree
  # Two DI segments [start, end) holding one signal played twice (NAM's validation replays);
  # the output must sound the same in both. Set for NAM's standard capture (nam_capture.py),
  # whose output, as a blip capture's, spans the whole DI file from sample 0.
  replicates: tuple[tuple[int, int], tuple[int, int]] | None = None
  # The split the annotation pins this clip to (`split:` train, validation or test); None:
  # the builder assigns it by a hash of the DI id. A DI's clips must agree.
  split: str | None = None


LATENCY_KEYS = ("latency_samples", "time_delay", "time-delay")
SPLITS = ("train", "validation", "test")


def pinned_split(meta: dict, where: str) -> str | None:
  """The annotation's `split` (train, validation or test), or None when it names none."""
  value = meta.get("split")
  if value in (None, ""):
    return None
  if str(value) not in SPLITS:
    raise AmpSpaceError(f"{where}: split {value!r} is not one of {', '.join(SPLITS)}")
  return str(value)


def latency_fields(meta: dict, where: str, folder: str) -> dict:
  """The Clip fields that say how a recording's latency is known, from its annotation.

  `latency_samples` (or the paper's `time-delay` / `time_delay`): the interface latency in
  samples, fractional allowed; `blip_at`: the DI sample index of a calibration blip, measured on
  ingest (the output file then spans the whole DI file); `loopback_file`: a recording of the
  same DI file through the interface alone (relative to the annotation's folder).
  """
  out = {}
  given = [k for k in LATENCY_KEYS if meta.get(k) not in (None, "")]
  if len(given) > 1:
    raise AmpSpaceError(f"{where}: give the latency once, found {given}")
  if given:
    value = _float_cell(str(meta[given[0]]), where, given[0])
    if not np.isfinite(value) or value < 0:
      raise AmpSpaceError(f"{where}: {given[0]} must be a number of samples >= 0, got {value}")
    out["latency_samples"] = value
  if meta.get("blip_at") not in (None, ""):
    blip = _float_cell(str(meta["blip_at"]), where, "blip_at")
    if blip < 0 or blip != int(blip):
      raise AmpSpaceError(f"{where}: blip_at must be a sample index >= 0, got {blip}")
    out["blip_at"] = int(blip)
  if meta.get("loopback_file") not in (None, ""):
    out["loopback_path"] = os.path.join(folder, str(meta["loopback_file"]))
  if len(out) > 1:
    raise AmpSpaceError(
      f"{where}: give one latency source (latency_samples, blip_at or "
      f"loopback_file), found {sorted(out)}"
    )
  return out


# --- rules shared by the layouts: where a DI is, which metadata applies -----------------------

DI_DIR_ENV = "AMPSPACE_DI_DIR"  # folders of DIs (os.pathsep-separated); build.py's --di_dir
FOLDER_META_NAMES = ("device.yaml", "device.yml", "device.json")
PATH_FIELDS = ("loopback_file",)  # relative to the file that names them


def di_dirs_from_env() -> list[str]:
  return [d for d in os.environ.get(DI_DIR_ENV, "").split(os.pathsep) if d]


def find_di(di_file: str, annotation: str, *, root: str | None = None, di_dirs=()) -> str | None:
  """The DI file an annotation names: in a given DI folder, relative to the recording root
  (when given), or beside the annotation, in a `di/` folder there, and the same in every folder
  above it (the nearest wins)."""
  candidates = [
    os.path.join(d, name) for d in di_dirs for name in (di_file, os.path.basename(di_file))
  ]
  if root is not None:
    candidates.append(os.path.join(root, di_file))
  folder = os.path.dirname(os.path.abspath(annotation))
  while True:
    candidates += [os.path.join(folder, di_file), os.path.join(folder, "di", di_file)]
    if os.path.dirname(folder) == folder:
      break
    folder = os.path.dirname(folder)
  return next((c for c in candidates if os.path.isfile(c)), None)


def _missing_di_error(missing: list[str], di_dirs) -> AmpSpaceError:
  searched = f"in --di_dir {os.pathsep.join(di_dirs)}, " if di_dirs else ""
  listing = "\n  ".join(missing[:20]) + (
    f"\n  ... and {len(missing) - 20} more" if len(missing) > 20 else ""
  )
  return AmpSpaceError(
    f"{len(missing)} annotations name a DI not found {searched}at the "
    f"recording root, beside the annotation or in (a di/ folder of) any "
    f"folder above it; pass --di_dir=FOLDER:\n  {listing}"
  )


def _folders_down_to(folder: str, root: str) -> list[str]:
  """root, its child on the way, ..., folder (folder at or below root)."""
  rel = os.path.relpath(folder, root)
  parts = [] if rel == os.curdir else rel.split(os.sep)
  return [os.path.join(root, *parts[:i]) for i in range(len(parts) + 1)]


def inherited_meta(root: str, folder: str, names) -> tuple[dict, list[str]]:
  """The fields of the metadata files `names` in every folder from root down to `folder`, and
  those files; a nearer file's field replaces a farther one's whole (a `knobs:` below replaces
  a `knobs:` above)."""
  meta, sources = {}, []
  for f in _folders_down_to(folder, root):
    for name in names:
      path = os.path.join(f, name)
      if os.path.isfile(path):
        fields = _load_meta(path)
        for key in PATH_FIELDS:
          if fields.get(key) not in (None, ""):
            fields[key] = os.path.join(os.path.abspath(f), str(fields[key]))
        meta.update(fields)
        sources.append(path)
  return meta, sources


def _settings_dict(entry: dict, where: str) -> dict[str, float]:
  settings = entry.get("settings")
  if settings is None:
    raise AmpSpaceError(f"{where}: file entry {entry.get('filename')!r} has no 'settings'")
  if isinstance(settings, dict):
    return {str(k): float(v) for k, v in settings.items()}
  out = {}
  for item in settings:
    out.update({str(k): float(v) for k, v in item.items()})
  return out


def read_release_layout(root: str, di_dirs=None) -> list[Clip]:
  """Every clip under `root` described by a settings.yaml (the layout ampspace.render writes),
  with the fields of device.yaml/json files at or above its folder under those of the file.
  `di_dirs` (default: AMPSPACE_DI_DIR) are searched first for each `di_file`."""
  di_dirs = di_dirs_from_env() if di_dirs is None else list(di_dirs)
  paths = sorted(glob.glob(os.path.join(root, "**", "settings.yaml"), recursive=True))
  if not paths:
    raise AmpSpaceError(f"{root}: no settings.yaml found (expected the Amp-Space release layout)")
  clips, missing = [], []
  for path in paths:
    folder = os.path.dirname(path)
    meta, _ = inherited_meta(root, folder, FOLDER_META_NAMES)
    try:
      with open(path) as f:
        own = yaml.safe_load(f)
    except yaml.YAMLError as e:
      raise AmpSpaceError(f"{path}: invalid YAML ({e})") from None
    if own is not None and not isinstance(own, dict):
      raise AmpSpaceError(f"{path}: expected a mapping of fields")
    meta.update(own or {})
    for key in ("device", "di_file", "files"):
      if key not in meta:
        raise AmpSpaceError(f"{path}: missing annotation field {key!r}")
    di_path = find_di(str(meta["di_file"]), path, root=root, di_dirs=di_dirs)
    if di_path is None:
      missing.append(f"{path}: DI {meta['di_file']!r}")
      continue
    di_id = str(meta.get("di_id", os.path.splitext(os.path.basename(meta["di_file"]))[0]))
    for entry in meta["files"]:
      if not isinstance(entry, dict) or "filename" not in entry:
        raise AmpSpaceError(f"{path}: a 'files' entry has no 'filename'")
      out_path = os.path.join(folder, entry["filename"])
      clips.append(
        Clip(
          clip_id=os.path.relpath(out_path, root),
          di_path=di_path,
          output_path=out_path,
          di_id=di_id,
          di_start=int(meta.get("di_start", 0)),
          di_end=int(meta.get("di_end", -1)),
          device=str(meta["device"]),
          brand=str(meta.get("brand", "")),
          source=str(meta.get("source", meta.get("data_type", "real"))),
          device_type=str(meta.get("device_type", "other")),
          settings=_settings_dict(entry, path),
          knob_specs=list(meta.get("knob_specs", [])),
          attributes={str(k): str(v) for k, v in (meta.get("attributes") or {}).items()},
          split=pinned_split({**meta, **entry}, path),
          **latency_fields({**meta, **entry}, path, folder),
        )
      )
  if missing:
    raise _missing_di_error(missing, di_dirs)
  return clips


def normalised_knobs(clip: Clip) -> dict[str, float]:
  """Knob values mapped to [0, 1] with the specs stored beside them (0..10 dials by default)."""
  return normalise_settings(clip.settings, clip.knob_specs)


def normalise_settings(settings: dict[str, float], knob_specs) -> dict[str, float]:
  specs = {s["name"]: s for s in knob_specs}
  out = {}
  for name, value in settings.items():
    lo = float(specs.get(name, {}).get("minimum", 0.0))
    hi = float(specs.get(name, {}).get("maximum", 10.0))
    out[name] = 0.0 if hi == lo else float(np.clip((value - lo) / (hi - lo), 0.0, 1.0))
  return out


# --- data.csv -------------------------------------------------------------------------------

CSV_FILE = "data.csv"
# Columns that are annotation, not knobs. `attr_<name>` columns are attributes.
CSV_GLOBAL_KEYS = frozenset(
  {
    "filename",
    "brand",
    "vst_name",
    "device",
    "device_type",
    "data_type",
    "source",
    "di_file",
    "di",
    "di_id",
    "di_start",
    "start",
    "di_end",
    "end",
    "sample_rate",
    "sweep",
    "attributes",
    "clip_id",
    "latency_samples",
    "time_delay",
    "time-delay",
    "blip_at",
    "loopback_file",
    "split",
  }
)


def _float_cell(value: str, where: str, column: str) -> float:
  try:
    return float(value)
  except ValueError:
    raise AmpSpaceError(f"{where}: column {column!r} must be a number, got {value!r}") from None


def read_csv_layout(csv_path: str, di_dirs=None) -> list[Clip]:
  """Every row of a flattened data.csv; paths are relative to the CSV's folder, and DIs are
  looked for as in the release layout (`find_di`)."""
  di_dirs = di_dirs_from_env() if di_dirs is None else list(di_dirs)
  folder = os.path.dirname(os.path.abspath(csv_path))
  with open(csv_path, newline="") as f:
    rows = list(csv.DictReader(f))
  if not rows:
    raise AmpSpaceError(f"{csv_path}: no rows")
  for key in ("filename", "device"):
    if key not in rows[0]:
      raise AmpSpaceError(f"{csv_path}: missing column {key!r}")
  if "di_file" not in rows[0] and "di" not in rows[0]:
    raise AmpSpaceError(f"{csv_path}: missing column 'di_file' naming each row's DI")
  clips, missing = [], []
  for line, row in enumerate(rows, start=2):
    where = f"{csv_path}:{line}"
    di_file = row.get("di_file") or row.get("di") or ""
    if not row.get("filename") or not di_file:
      raise AmpSpaceError(f"{where}: empty 'filename' or 'di_file'")
    attributes = json.loads(row["attributes"]) if row.get("attributes") else {}
    settings = {}
    for column, value in row.items():
      if column is None:
        raise AmpSpaceError(f"{where}: more cells than header columns")
      if column.startswith("attr_"):
        if value:
          attributes[column[len("attr_") :]] = value
      elif column not in CSV_GLOBAL_KEYS and value not in ("", None):
        settings[column] = _float_cell(value, where, column)
    out_path = os.path.join(folder, row["filename"])
    start = row.get("di_start") or row.get("start") or "0"
    end = row.get("di_end") or row.get("end") or "-1"
    di_path = find_di(di_file, csv_path, root=folder, di_dirs=di_dirs)
    if di_path is None:
      missing.append(f"{where}: DI {di_file!r}")
      continue
    clips.append(
      Clip(
        clip_id=row.get("clip_id") or os.path.relpath(out_path, folder),
        di_path=di_path,
        output_path=out_path,
        di_id=row.get("di_id") or os.path.splitext(os.path.basename(di_file))[0],
        di_start=int(_float_cell(start, where, "di_start")),
        di_end=int(_float_cell(end, where, "di_end")),
        device=row["device"],
        brand=row.get("brand", ""),
        source=row.get("source") or row.get("data_type") or "real",
        device_type=row.get("device_type") or "other",
        settings=settings,
        knob_specs=[],
        attributes={str(k): str(v) for k, v in attributes.items()},
        split=pinned_split(row, where),
        **latency_fields(row, where, folder),
      )
    )
  if missing:
    raise _missing_di_error(missing, di_dirs)
  return clips


# --- NAM-style capture pairs ----------------------------------------------------------------

NAM_INPUT = "input.wav"
NAM_META_NAMES = (
  "capture.yaml",
  "capture.yml",
  "capture.json",
  "knobs.yaml",
  "knobs.yml",
  "knobs.json",
)


def _load_meta(path: str) -> dict:
  try:
    with open(path) as f:
      data = json.load(f) if path.endswith(".json") else yaml.safe_load(f)
  except (json.JSONDecodeError, yaml.YAMLError) as e:
    raise AmpSpaceError(
      f"{path}: invalid {'JSON' if path.endswith('.json') else 'YAML'} ({e})"
    ) from None
  if not isinstance(data, dict):
    raise AmpSpaceError(f"{path}: expected a mapping of fields")
  return data


def _content_id(path: str) -> str:
  """Stem + a short hash of the bytes: one NAM input signal reused in many folders is one DI."""
  with open(path, "rb") as f:
    digest = hashlib.file_digest(f, "sha1").hexdigest()
  return f"{os.path.splitext(os.path.basename(path))[0]}_{digest[:10]}"


def read_nam_layout(root: str, di_dirs=None) -> list[Clip]:
  """Every `output*.wav` under root, paired with `input.wav`: in a `di_dirs` folder (default:
  AMPSPACE_DI_DIR), else the nearest in its folder or any folder above it.

  Fields come from device, capture and knobs YAML or JSON files in the output's folder and every
  folder above it up to root (nearer files override farther ones, and in one folder in that
  order), then from `<output stem>`.yaml or .json beside the output. Knob values go under
  `knobs:` (or `settings:`); `device` is required; `brand`, `device_type`, `source`,
  `attributes`, `knob_specs`, `di_id` are optional.

  An `input.wav` that is NAM's standard capture signal gives the blips, the training region
  and the validation replays (nam_capture.py) unless the annotation gives them or says
  `nam_standard: false`.
  """
  di_dirs = di_dirs_from_env() if di_dirs is None else list(di_dirs)
  outputs = sorted(glob.glob(os.path.join(root, "**", "output*.wav"), recursive=True))
  if not outputs:
    raise AmpSpaceError(f"{root}: no output*.wav capture found (expected NAM-style pairs)")
  clips, ids, missing, standards = [], {}, [], {}
  for out_path in outputs:
    folder = os.path.dirname(out_path)
    stem = os.path.basename(os.path.splitext(out_path)[0])
    meta, sources = inherited_meta(root, folder, FOLDER_META_NAMES + NAM_META_NAMES)
    own, own_sources = inherited_meta(
      folder, folder, [stem + ext for ext in (".yaml", ".yml", ".json")]
    )
    meta.update(own)
    sources += own_sources
    if not sources:
      raise AmpSpaceError(
        f"{out_path}: no knob file beside it or above it (one of "
        f"{FOLDER_META_NAMES + NAM_META_NAMES} or {stem}.yaml/.json)"
      )
    where = sources[-1]
    if "device" not in meta:
      raise AmpSpaceError(
        f"{where}: missing field 'device' (also looked in "
        f"{', '.join(sources[:-1]) or 'no other file'}; a device.json/yaml "
        f"in any folder above applies below it)"
      )
    knobs = meta.get("knobs", meta.get("settings", {}))
    if not isinstance(knobs, dict):
      raise AmpSpaceError(f"{where}: 'knobs' must be a mapping of knob name to value")
    di_path = find_di(NAM_INPUT, out_path, di_dirs=di_dirs)
    if di_path is None:
      missing.append(f"{out_path}: {NAM_INPUT}")
      continue
    if di_path not in ids:
      ids[di_path] = str(meta.get("di_id") or _content_id(di_path))
    latency = latency_fields(meta, where, folder)
    fields = {
      "di_start": int(meta.get("di_start", 0)),
      "di_end": int(meta.get("di_end", -1)),
      **latency,
    }
    standard = nam_capture.for_clip(di_path, meta, where, standards)
    if standard is not None:  # what the annotation leaves out, NAM's convention gives
      fields.update(nam_capture.clip_fields(standard, meta, latency))
    clips.append(
      Clip(
        clip_id=os.path.relpath(out_path, root),
        di_path=di_path,
        output_path=out_path,
        di_id=ids[di_path],
        device=str(meta["device"]),
        brand=str(meta.get("brand", "")),
        source=str(meta.get("source", "real")),
        device_type=str(meta.get("device_type", "other")),
        settings={str(k): _float_cell(str(v), where, str(k)) for k, v in knobs.items()},
        knob_specs=list(meta.get("knob_specs", [])),
        attributes={str(k): str(v) for k, v in (meta.get("attributes") or {}).items()},
        split=pinned_split(meta, where),
        **fields,
      )
    )
  if missing:
    raise _missing_di_error(missing, di_dirs)
  return clips


def detect_layout(root: str) -> str:
  """'release', 'csv' or 'nam', by what the folder holds (checked in that order)."""
  if not os.path.isdir(root):
    raise AmpSpaceError(f"{root}: not a folder")
  if glob.glob(os.path.join(root, "**", "settings.yaml"), recursive=True):
    return "release"
  if os.path.exists(os.path.join(root, CSV_FILE)):
    return "csv"
  if glob.glob(os.path.join(root, "**", "output*.wav"), recursive=True):
    return "nam"
  raise AmpSpaceError(
    f"{root}: no settings.yaml, {CSV_FILE} or output*.wav found; see the "
    f"amp_space README for the three accepted layouts"
  )


def read_any(root: str, di_dirs=None) -> list[Clip]:
  layout = detect_layout(root)
  if layout == "release":
    return read_release_layout(root, di_dirs)
  if layout == "csv":
    return read_csv_layout(os.path.join(root, CSV_FILE), di_dirs)
  return read_nam_layout(root, di_dirs)
