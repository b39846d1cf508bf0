"""Opening `amp_space` splits as random-access data sources (TF-free), building tiny ones on demand.

`dataset.filter` (optional, a `filters.parse_filter` string) restricts every split opened.
"""

from __future__ import annotations

import os

import tensorflow_datasets as tfds

from ampspace.data import filters
from ampspace.errors import AmpSpaceError


def data_dir_of(dataset_config) -> str | None:
  return os.path.expanduser(dataset_config.data_dir) if dataset_config.data_dir else None


def ensure_built(dataset_config) -> None:
  """Builds the dataset if it is missing and the config allows it (configs that need no input)."""
  import tfds_ampspace  # noqa: F401  (registers amp_space)

  builder = tfds.builder(
    dataset_config.name, data_dir=data_dir_of(dataset_config), file_format="array_record"
  )
  if builder.is_prepared():
    return
  if not dataset_config.get("build_if_missing", False):
    raise AmpSpaceError(
      f"dataset {dataset_config.name!r} is not built in "
      f"{builder.data_dir}; build it with `tfds build` or set "
      f"--config.dataset.build_if_missing=True"
    )
  manual = dataset_config.get("manual_dir") or None
  builder.download_and_prepare(
    download_config=tfds.download.DownloadConfig(manual_dir=manual) if manual else None
  )


def open_split(dataset_config, split: str):
  """A random-access source of decoded examples (dicts of NumPy arrays) for `split`."""
  import tfds_ampspace  # noqa: F401

  ensure_built(dataset_config)
  sources = tfds.data_source(
    dataset_config.name, data_dir=data_dir_of(dataset_config), download=False
  )
  if split not in sources:
    raise AmpSpaceError(
      f"dataset {dataset_config.name!r} has no split {split!r}; it has {sorted(sources)}"
    )
  spec = dataset_config.get("filter", "")
  if not spec:
    return sources[split]
  # A slice of one built dataset (e.g. a real device at gain 5), so that experiments on
  # slices need no rebuild: "device=a,b;source=real;gain=4,6" (ampspace.data.filters).
  return filters.filtered(sources[split], **filters.parse_filter(spec))
