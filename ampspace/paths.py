"""Paths that are local folders or object-store URLs (gs://, s3://, ...), one way for both.

A workdir, a checkpoint folder, TensorBoard logs, evaluation outputs and exports may live on
a bucket: `--workdir=gs://bucket/run` trains there, `python -m ampspace.evaluate` and the
exporters read from there. Local paths keep the standard library's behaviour (and are made
absolute, as Orbax wants them); URLs go through `etils.epath`, which reaches Cloud Storage by
gcsfs (and so honours `STORAGE_EMULATOR_HOST`). Orbax writes arrays with tensorstore, which
reads its own endpoint from `TENSORSTORE_GCS_HTTP_URL`.

  is_url("gs://b/run")            -> True
  absolute("runs/x")              -> "/abs/runs/x";   absolute("gs://b/run/") -> "gs://b/run"
  join("gs://b/run", "tb")        -> "gs://b/run/tb"
  with open_append(join(workdir, "train_log.jsonl")) as f: f.write(...); f.flush()

Object stores have no append and no rename, but a single object's upload is whole or
absent: `open_append` keeps a local copy of a remote log and uploads the whole of it on each
`flush()`, and `ampspace.files`' atomic writers upload a finished local file in one piece.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import tempfile
from typing import Iterator

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(path: str | os.PathLike) -> bool:
  """Whether `path` is a URL with a scheme (gs://, s3://, file://...) rather than a local path."""
  return bool(_URL.match(os.fspath(path)))


def absolute(path: str | os.PathLike) -> str:
  """A local path made absolute, or a URL without its trailing slashes."""
  path = os.fspath(path)
  if is_url(path):
    scheme, rest = path.split("://", 1)
    return f"{scheme}://{rest.rstrip('/')}"
  return os.path.abspath(path)


def join(base: str | os.PathLike, *parts: str) -> str:
  """`os.path.join` for local paths, '/'-joined for URLs."""
  base = os.fspath(base)
  return posixpath.join(base, *parts) if is_url(base) else os.path.join(base, *parts)


def basename(path: str | os.PathLike) -> str:
  path = os.fspath(path)
  return posixpath.basename(path.rstrip("/")) if is_url(path) else os.path.basename(path)


def dirname(path: str | os.PathLike) -> str:
  path = os.fspath(path)
  return posixpath.dirname(path.rstrip("/")) if is_url(path) else os.path.dirname(path)


def epath(path: str | os.PathLike):
  """An `etils.epath.Path` for either kind (what Orbax and Grain take)."""
  from etils import epath as _epath

  _quiet_gcsfs()
  return _epath.Path(absolute(path))


def exists(path: str | os.PathLike) -> bool:
  return epath(path).exists() if is_url(path) else os.path.exists(path)


def isdir(path: str | os.PathLike) -> bool:
  return epath(path).is_dir() if is_url(path) else os.path.isdir(path)


def isfile(path: str | os.PathLike) -> bool:
  return epath(path).is_file() if is_url(path) else os.path.isfile(path)


def makedirs(path: str | os.PathLike) -> None:
  """Creates a folder and its parents if missing (on a bucket, a no-op where folders are only
  name prefixes)."""
  if is_url(path):
    epath(path).mkdir(parents=True, exist_ok=True)
  else:
    os.makedirs(path, exist_ok=True)


def read_text(path: str | os.PathLike) -> str:
  if is_url(path):
    return epath(path).read_text()
  with open(path, encoding="utf-8") as f:
    return f.read()


def upload(local_file: str, url: str) -> None:
  """Copies a finished local file to `url` in one upload (streamed, not read into memory)."""
  with open(local_file, "rb") as src, epath(url).open("wb") as dst:
    shutil.copyfileobj(src, dst)


def upload_folder(local_dir: str, url: str) -> None:
  """Copies every file under `local_dir` to the same relative names under `url`."""
  for root, _, files in os.walk(local_dir):
    for name in files:
      rel = os.path.relpath(os.path.join(root, name), local_dir)
      upload(os.path.join(root, name), join(url, *rel.split(os.sep)))


def _files_under(folder) -> Iterator:
  """Every file below an epath folder, by listing one level at a time (epath refuses `**` on
  a bucket)."""
  for item in folder.iterdir():
    if item.is_dir():
      yield from _files_under(item)
    else:
      yield item


def download_folder(url: str, local_dir: str) -> int:
  """Copies every object under `url` to the same relative names under `local_dir`, skipping
  files already there at the same size (datasets are written once); each file is written
  atomically. Returns how many were fetched."""
  from ampspace.files import atomic_path

  root = epath(url)
  fetched = 0
  for item in _files_under(root):
    rel = item.relative_to(root).as_posix()
    dst = os.path.join(local_dir, *rel.split("/"))
    if os.path.isfile(dst) and os.path.getsize(dst) == item.stat().length:
      continue
    with atomic_path(dst) as tmp, item.open("rb") as src, open(tmp, "wb") as f:
      shutil.copyfileobj(src, f)
    fetched += 1
  return fetched


class _RemoteAppend:
  """A text file opened for appending on an object store: writes go to a local copy (seeded
  with the object's current text), and `flush()`/`close()` upload the whole copy."""

  def __init__(self, url: str):
    self.url = url
    fd, self._local = tempfile.mkstemp(suffix=".log")
    os.close(fd)
    if exists(url):
      with open(self._local, "w", encoding="utf-8") as f:
        f.write(read_text(url))
    self._f = open(self._local, "a", encoding="utf-8")
    self._dirty = False

  def write(self, text: str) -> int:
    self._dirty = True
    return self._f.write(text)

  def flush(self) -> None:
    self._f.flush()
    if self._dirty:
      upload(self._local, self.url)
      self._dirty = False

  def close(self) -> None:
    if self._f.closed:
      return
    try:
      self.flush()
    finally:
      self._f.close()
      os.remove(self._local)

  def __enter__(self):
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def open_append(path: str | os.PathLike):
  """A text file opened for appending: `open(path, "a")` locally; on a bucket, a local copy
  whose `flush()` uploads it whole. Either is a context manager that closes it."""
  return _RemoteAppend(absolute(path)) if is_url(path) else open(path, "a", encoding="utf-8")


_QUIETED = False


def _quiet_gcsfs() -> None:
  """gcsfs warns on every bucket lookup without Google credentials (an emulator, a public
  bucket); the lookup falls back by itself, so the warning says nothing to act on."""
  global _QUIETED
  if not _QUIETED:
    import logging

    logging.getLogger("gcsfs").setLevel(logging.ERROR)
    _QUIETED = True
