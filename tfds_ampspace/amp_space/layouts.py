"""Readers for the on-disk layouts the builder ingests. Each yields one `Clip` per paired file."""

from __future__ import annotations

import dataclasses
import glob
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
      out_path = os.path.join(folder, entry["filename"])
      clips.append(Clip(
          clip_id=os.path.relpath(out_path, root), di_path=di_path, output_path=out_path,
          di_id=di_id, di_start=int(meta.get("di_start", 0)), di_end=int(meta.get("di_end", -1)),
          device=str(meta["device"]), brand=str(meta.get("brand", "")),
          source=str(meta.get("source", meta.get("data_type", "real"))),
          device_type=str(meta.get("device_type", "other")),
          settings=_settings_dict(entry, path), knob_specs=list(meta.get("knob_specs", [])),
          attributes={str(k): str(v) for k, v in (meta.get("attributes") or {}).items()}))
  return clips


def normalised_knobs(clip: Clip) -> dict[str, float]:
  """Knob values mapped to [0, 1] with the specs stored beside them (0..10 dials by default)."""
  specs = {s["name"]: s for s in clip.knob_specs}
  out = {}
  for name, value in clip.settings.items():
    lo = float(specs.get(name, {}).get("minimum", 0.0))
    hi = float(specs.get(name, {}).get("maximum", 10.0))
    out[name] = 0.0 if hi == lo else float(np.clip((value - lo) / (hi - lo), 0.0, 1.0))
  return out
