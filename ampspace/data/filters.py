"""Subsets of an amp_space split by device, device type, source, DI or knob value, without rebuilding.

The paper's experiments need slices of one built dataset: sim-to-real fine-tunes on a real
device at gain 5 and tests on gains {4, 6}, {3, 7}, {2, 8}; pretraining uses only the synthetic
source; the interpolation study picks two amps. Rebuilding a dataset per slice would multiply
disk and build time, so a filter is a list of record indices over a `tfds.data_source` split:

  src = tfds.data_source("amp_space/real", data_dir=D)["train"]
  ft = filtered(src, device="my_amp", knobs={"gain": [5]})      # Grain-ready random access
  grain.MapDataset.source(ft)...

Matching reads only the annotation: audio features are left undecoded (SkipDecoding), so a pass
costs parsing, not decompression. Knob values compare in the device's own units (the
`knob_values` feature), with a small tolerance; knob names go through the conditioning aliases.
Criteria combine with AND; each criterion's values combine with OR.

A filter can be written as a string, for configs and command lines (`parse_filter`):
  "device=tube_amp,fuzz_face;source=synthetic;gain=4,6"
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np

from ampspace import SAMPLE_RATE
from ampspace.conditioning import canonical_knob
from ampspace.errors import AmpSpaceError

AUDIO_KEYS = ("di", "output")
TEXT_KEYS = ("device", "device_type", "source", "brand", "di_id")
KNOB_TOLERANCE = 1e-4


def text(v) -> str:
  """A record's string feature as str (TFDS gives bytes; a filtered or test record, str)."""
  return v.decode() if isinstance(v, bytes) else str(v)


def annotations(source) -> list[dict]:
  """Every record's annotation (no audio), in index order, from a tfds ArrayRecord data source:
  its text features, its knobs by canonical name and, where the record has its DI span, the
  span's `seconds`."""
  info, split = getattr(source, "dataset_info", None), getattr(source, "split", None)
  if info is not None and split is not None:
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.data_sources import array_record

    skip = {k: tfds.decode.SkipDecoding() for k in AUDIO_KEYS if k in info.features}
    source = array_record.ArrayRecordDataSource(info, split=split, decoders=skip)
  out = []
  for i in range(len(source)):
    record = source[i]
    out.append(
      {
        **{k: text(record[k]) for k in TEXT_KEYS if k in record},
        "knobs": {
          canonical_knob(text(n)): float(v)
          for n, v in zip(record["knob_names"], record["knob_values"])
        },
        **(
          {"seconds": (int(record["di_end"]) - int(record["di_start"])) / SAMPLE_RATE}
          if "di_start" in record and "di_end" in record
          else {}
        ),
      }
    )
  return out


def _as_set(values, name: str) -> set[str] | None:
  if values is None:
    return None
  values = [values] if isinstance(values, str) else list(values)
  if not values:
    raise AmpSpaceError(f"filter: {name} has an empty list of values")
  return {str(v) for v in values}


def matches(
  annotation: Mapping,
  *,
  device=None,
  device_type=None,
  source=None,
  brand=None,
  di_id=None,
  knobs: Mapping[str, Iterable[float]] | None = None,
) -> bool:
  """Whether one annotation (from `annotations`) passes every given criterion."""
  for key, wanted in (
    ("device", device),
    ("device_type", device_type),
    ("source", source),
    ("brand", brand),
    ("di_id", di_id),
  ):
    wanted = _as_set(wanted, key)
    if wanted is not None and annotation.get(key) not in wanted:
      return False
  for name, values in (knobs or {}).items():
    have = annotation["knobs"].get(canonical_knob(name))
    values = [float(v) for v in (values if isinstance(values, Iterable) else [values])]
    if have is None or not any(abs(have - v) <= KNOB_TOLERANCE for v in values):
      return False
  return True


def matching_indices(data_source, /, **criteria) -> np.ndarray:
  """Indices (int64, ascending) of the records of `data_source` passing `criteria` (`matches`)."""
  return np.array(
    [i for i, a in enumerate(annotations(data_source)) if matches(a, **criteria)], np.int64
  )


class FilteredSource:
  """Random access to the records of `source` at `indices`: a Grain RandomAccessDataSource."""

  def __init__(self, source, indices: Sequence[int]):
    self.source = source
    self.indices = np.asarray(indices, np.int64)
    if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= len(source)):
      raise AmpSpaceError(f"FilteredSource: indices outside [0, {len(source)})")

  def __len__(self) -> int:
    return len(self.indices)

  def __getitem__(self, i: int):
    return self.source[int(self.indices[i])]

  def __repr__(self) -> str:
    return f"FilteredSource({len(self)} of {len(self.source)} records)"


def filtered(data_source, /, **criteria) -> FilteredSource:
  """`data_source` restricted to the records that pass `criteria`; an error if none does."""
  indices = matching_indices(data_source, **criteria)
  if not len(indices):
    raise AmpSpaceError(f"filter {criteria} matches no record of {data_source!r}")
  return FilteredSource(data_source, indices)


def parse_filter(spec: str) -> dict:
  """ "device=a,b;source=real;gain=5" -> criteria for `matches`; unknown keys are knob names."""
  criteria: dict = {}
  for clause in filter(None, (c.strip() for c in (spec or "").split(";"))):
    key, sep, values = clause.partition("=")
    key = key.strip()
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not key or not items:
      raise AmpSpaceError(f"filter {spec!r}: clause {clause!r} is not KEY=V1,V2")
    if key in TEXT_KEYS:
      criteria[key] = items
    else:
      try:
        criteria.setdefault("knobs", {})[key] = [float(v) for v in items]
      except ValueError:
        raise AmpSpaceError(
          f"filter {spec!r}: knob {key!r} values must be numbers (text keys are {TEXT_KEYS})"
        ) from None
  return criteria
