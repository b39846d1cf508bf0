"""Opening `amp_space` splits as random-access data sources (TF-free), building tiny ones on demand.

`dataset.filter` (optional, a `filters.parse_filter` string) restricts every split opened.
"""

from __future__ import annotations

import hashlib
import os

import tensorflow_datasets as tfds

from ampspace import paths
from ampspace.data import filters
from ampspace.errors import AmpSpaceError


def data_dir_of(dataset_config) -> str | None:
  """The local data_dir to open: the config's, or for a URL (gs://bucket/tfds) a local copy of
  the one dataset the config names (`staged_copy`)."""
  data_dir = dataset_config.data_dir
  if not data_dir:
    return None
  if paths.is_url(data_dir):
    return staged_copy(data_dir, dataset_config.name)
  return os.path.expanduser(data_dir)


def staged_copy(url: str, name: str) -> str:
  """A local data_dir holding a copy of dataset `name` ("amp_space/tiny") from the data_dir
  `url`: the ArrayRecord reader opens local files only, so a bucket's build is fetched once
  into $AMPSPACE_DATA_CACHE (default ~/.cache/ampspace/datasets), one folder per URL, and
  files already there at the same size are not fetched again."""
  src = paths.join(url, *name.split("/"))
  if not paths.isdir(src):
    raise AmpSpaceError(
      f"{src}: no built dataset {name!r} there; build it with `tfds build` into a local "
      "data_dir and copy that folder to the bucket"
    )
  cache = os.path.expanduser(
    os.environ.get("AMPSPACE_DATA_CACHE", os.path.join("~", ".cache", "ampspace", "datasets"))
  )
  local = os.path.join(cache, hashlib.sha1(paths.absolute(url).encode()).hexdigest()[:16])
  fetched = paths.download_folder(src, os.path.join(local, *name.split("/")))
  if fetched:
    print(f"fetched {fetched} files of {name} from {url} into {local}", flush=True)
  return local


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
