"""Readers for the on-disk layouts the builder ingests. Each yields one `Clip` per paired file.

Three layouts are accepted (`read_any` tells them apart):

  release   a settings.yaml per folder, as `python -m ampspace.render` writes it;
  csv       the release's flattened variant: one data.csv row per clip with the global keys,
            `filename`, and one column per knob (empty cell: the device has no such knob);
  nam       NAM-style capture pairs: `input.wav` / `output*.wav` with the knob values and device
            fields in a small YAML or JSON beside them.
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
  latency_samples: float | None = None   # annotated (the paper's `time-delay`), in samples
  blip_at: int | None = None             # a calibration blip at this DI sample; the output
                                         # file then spans the whole DI file from sample 0
  loopback_path: str | None = None       # the DI file recorded through the interface alone


LATENCY_KEYS = ("latency_samples", "time_delay", "time-delay")


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
    raise AmpSpaceError(f"{where}: give one latency source (latency_samples, blip_at or "
                        f"loopback_file), found {sorted(out)}")
  return out


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


def read_release_layout(root: str) -> list[Clip]:
  """Every clip under `root` described by a settings.yaml (the layout ampspace.render writes)."""
  paths = sorted(glob.glob(os.path.join(root, "**", "settings.yaml"), recursive=True))
  if not paths:
    raise AmpSpaceError(f"{root}: no settings.yaml found (expected the Amp-Space release layout)")
  clips = []
  for path in paths:
    try:
      with open(path) as f:
        meta = yaml.safe_load(f)
    except yaml.YAMLError as e:
      raise AmpSpaceError(f"{path}: invalid YAML ({e})") from None
    for key in ("device", "di_file", "files"):
      if key not in (meta or {}):
        raise AmpSpaceError(f"{path}: missing annotation field {key!r}")
    folder = os.path.dirname(path)
    di_path = os.path.join(root, meta["di_file"])
    if not os.path.exists(di_path):
      di_path = os.path.join(folder, meta["di_file"])
    di_id = str(meta.get("di_id", os.path.splitext(os.path.basename(meta["di_file"]))[0]))
    for entry in meta["files"]:
      if not isinstance(entry, dict) or "filename" not in entry:
        raise AmpSpaceError(f"{path}: a 'files' entry has no 'filename'")
      out_path = os.path.join(folder, entry["filename"])
      clips.append(Clip(
          clip_id=os.path.relpath(out_path, root), di_path=di_path, output_path=out_path,
          di_id=di_id, di_start=int(meta.get("di_start", 0)), di_end=int(meta.get("di_end", -1)),
          device=str(meta["device"]), brand=str(meta.get("brand", "")),
          source=str(meta.get("source", meta.get("data_type", "real"))),
          device_type=str(meta.get("device_type", "other")),
          settings=_settings_dict(entry, path), knob_specs=list(meta.get("knob_specs", [])),
          attributes={str(k): str(v) for k, v in (meta.get("attributes") or {}).items()},
          **latency_fields({**meta, **entry}, path, folder)))
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
CSV_GLOBAL_KEYS = frozenset({
    "filename", "brand", "vst_name", "device", "device_type", "data_type", "source", "di_file",
    "di", "di_id", "di_start", "start", "di_end", "end", "sample_rate", "sweep", "attributes",
    "clip_id", "latency_samples", "time_delay", "time-delay", "blip_at", "loopback_file"})


def _float_cell(value: str, where: str, column: str) -> float:
  try:
    return float(value)
  except ValueError:
    raise AmpSpaceError(f"{where}: column {column!r} must be a number, got {value!r}") from None


def read_csv_layout(csv_path: str) -> list[Clip]:
  """Every row of a flattened data.csv; paths are relative to the CSV's folder."""
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
  clips = []
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
          attributes[column[len("attr_"):]] = value
      elif column not in CSV_GLOBAL_KEYS and value not in ("", None):
        settings[column] = _float_cell(value, where, column)
    out_path = os.path.join(folder, row["filename"])
    start = row.get("di_start") or row.get("start") or "0"
    end = row.get("di_end") or row.get("end") or "-1"
    clips.append(Clip(
        clip_id=row.get("clip_id") or os.path.relpath(out_path, folder),
        di_path=os.path.join(folder, di_file), output_path=out_path,
        di_id=row.get("di_id") or os.path.splitext(os.path.basename(di_file))[0],
        di_start=int(_float_cell(start, where, "di_start")),
        di_end=int(_float_cell(end, where, "di_end")),
        device=row["device"], brand=row.get("brand", ""),
        source=row.get("source") or row.get("data_type") or "real",
        device_type=row.get("device_type") or "other", settings=settings, knob_specs=[],
        attributes={str(k): str(v) for k, v in attributes.items()},
        **latency_fields(row, where, folder)))
  return clips


# --- NAM-style capture pairs ----------------------------------------------------------------

NAM_INPUT = "input.wav"
NAM_META_NAMES = ("capture.yaml", "capture.yml", "capture.json", "knobs.yaml", "knobs.yml",
                  "knobs.json")


def _load_meta(path: str) -> dict:
  try:
    with open(path) as f:
      data = json.load(f) if path.endswith(".json") else yaml.safe_load(f)
  except (json.JSONDecodeError, yaml.YAMLError) as e:
    raise AmpSpaceError(f"{path}: invalid {'JSON' if path.endswith('.json') else 'YAML'} "
                        f"({e})") from None
  if not isinstance(data, dict):
    raise AmpSpaceError(f"{path}: expected a mapping of fields")
  return data


def _content_id(path: str) -> str:
  """Stem + a short hash of the bytes: one NAM input signal reused in many folders is one DI."""
  h = hashlib.sha1()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return f"{os.path.splitext(os.path.basename(path))[0]}_{h.hexdigest()[:10]}"


def _nearest_input(folder: str, root: str) -> str | None:
  while True:
    candidate = os.path.join(folder, NAM_INPUT)
    if os.path.exists(candidate):
      return candidate
    if os.path.abspath(folder) == os.path.abspath(root) or folder in ("", "/"):
      return None
    folder = os.path.dirname(folder)


def read_nam_layout(root: str) -> list[Clip]:
  """Every `output*.wav` under root, paired with the nearest `input.wav` at or above it.

  Fields come from a folder-level capture/knobs YAML or JSON, overridden by `<output stem>`.yaml
  or .json beside the output. Knob values go under `knobs:` (or `settings:`); `device` is
  required; `brand`, `device_type`, `source`, `attributes`, `knob_specs`, `di_id` are optional.
  """
  outputs = sorted(glob.glob(os.path.join(root, "**", "output*.wav"), recursive=True))
  if not outputs:
    raise AmpSpaceError(f"{root}: no output*.wav capture found (expected NAM-style pairs)")
  clips, ids = [], {}
  for out_path in outputs:
    folder = os.path.dirname(out_path)
    stem = os.path.splitext(out_path)[0]
    meta, sources = {}, []
    for name in NAM_META_NAMES + tuple(stem + ext for ext in (".yaml", ".yml", ".json")):
      path = os.path.join(folder, name)
      if os.path.exists(path):
        meta.update(_load_meta(path))
        sources.append(path)
    if not sources:
      raise AmpSpaceError(f"{out_path}: no knob file beside it (one of {NAM_META_NAMES} or "
                          f"{os.path.basename(stem)}.yaml/.json)")
    where = sources[-1]
    if "device" not in meta:
      raise AmpSpaceError(f"{where}: missing field 'device'")
    knobs = meta.get("knobs", meta.get("settings", {}))
    if not isinstance(knobs, dict):
      raise AmpSpaceError(f"{where}: 'knobs' must be a mapping of knob name to value")
    di_path = _nearest_input(folder, root)
    if di_path is None:
      raise AmpSpaceError(f"{out_path}: no {NAM_INPUT} in its folder or above it")
    if di_path not in ids:
      ids[di_path] = str(meta.get("di_id") or _content_id(di_path))
    clips.append(Clip(
        clip_id=os.path.relpath(out_path, root), di_path=di_path, output_path=out_path,
        di_id=ids[di_path], di_start=int(meta.get("di_start", 0)),
        di_end=int(meta.get("di_end", -1)), device=str(meta["device"]),
        brand=str(meta.get("brand", "")), source=str(meta.get("source", "real")),
        device_type=str(meta.get("device_type", "other")),
        settings={str(k): _float_cell(str(v), where, str(k)) for k, v in knobs.items()},
        knob_specs=list(meta.get("knob_specs", [])),
        attributes={str(k): str(v) for k, v in (meta.get("attributes") or {}).items()},
        **latency_fields(meta, where, folder)))
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
  raise AmpSpaceError(f"{root}: no settings.yaml, {CSV_FILE} or output*.wav found; see the "
                      f"amp_space README for the three accepted layouts")


def read_any(root: str) -> list[Clip]:
  layout = detect_layout(root)
  if layout == "release":
    return read_release_layout(root)
  if layout == "csv":
    return read_csv_layout(os.path.join(root, CSV_FILE))
  return read_nam_layout(root)
