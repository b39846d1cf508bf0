"""One module for atomic writes and hashing.

Every file the project writes for others to read (settings, manifests, reports, exports,
audio, plots, generated doc blocks, built libraries) goes through here, so a reader never
sees half a file and an interrupted writer leaves nothing behind:

  - the data goes to a temporary file in the destination's own folder (the rename then stays
    on one filesystem, which is what makes it atomic), and `os.replace` puts it in place;
  - on any exception, KeyboardInterrupt included, the temporary file is removed and the
    destination is left as it was;
  - the temporary file is named `.<stem>.tmp-<random><ext>`: hidden from `*.wav`-style globs
    while it is written, unique per writer, and ending in the destination's extension (or
    `suffix`) for writers that choose a format by it (np.savez, matplotlib's savefig);
  - the parent folder is created if missing, and a new file gets the mode a plain `open()`
    gives (0666 less the umask), not the owner-only 0600 of `tempfile.mkstemp`.

  atomic_write("x.md", text)                          # str or bytes
  with atomic_open("x.csv", newline="") as f: ...     # a file object
  with atomic_path("x.wav") as tmp: writer(tmp)       # a path, for writers that need one

A destination that is a URL (gs://...) is written to a local temporary file and uploaded
whole when it is finished (`ampspace.paths`). Standard library only at import (PyYAML inside
`write_yaml_atomic`, etils for URLs), so scripts that import little may use it too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from typing import Iterator

from ampspace import paths
from ampspace.errors import AmpSpaceError

_TRIES = 100  # random names to try before giving up (a clash needs 2**32 bad luck)


def _new_temp(path: str, suffix: str | None) -> str:
  """Creates an empty, uniquely named file beside `path` (making the folder) and returns it."""
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  stem, ext = os.path.splitext(os.path.basename(path))
  ext = ext if suffix is None else suffix
  for _ in range(_TRIES):
    tmp = os.path.join(folder, f".{stem[:100]}.tmp-{secrets.token_hex(4)}{ext}")
    try:
      fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
      continue
    os.close(fd)
    return tmp
  raise FileExistsError(f"{folder}: no free temporary name for {os.path.basename(path)}")


def _remove_quietly(path: str) -> None:
  try:
    os.remove(path)
  except FileNotFoundError:
    pass


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[str]:
  """Yields a temporary path beside `path` (an empty file already there) to write to; when the
  block ends normally it is renamed to `path`, and on any exception it is removed.

  For writers that take a file name: WAV writers, `np.savez`, `savefig`, a compiler's `-o`.
  `suffix` (e.g. ".npz") replaces the destination's extension at the end of the temporary
  name, for writers that pick their format by it."""
  path = os.fspath(path)
  if paths.is_url(path):  # a bucket: write locally, then upload the finished file in one piece
    yield from _upload_when_done(path, suffix)
    return
  tmp = _new_temp(path, suffix)
  try:
    yield tmp
    os.replace(tmp, path)
  except BaseException:
    _remove_quietly(tmp)
    raise


def _upload_when_done(url: str, suffix: str | None) -> Iterator[str]:
  """An object store has no rename, but one object's upload is whole or absent: the writer
  fills a local temporary file, uploaded to `url` when it finishes, and removed either way."""
  import tempfile

  ext = os.path.splitext(url)[1] if suffix is None else suffix
  fd, tmp = tempfile.mkstemp(suffix=ext)
  os.close(fd)
  try:
    yield tmp
    paths.upload(tmp, url)
  finally:
    _remove_quietly(tmp)


@contextlib.contextmanager
def atomic_open(
  path: str | os.PathLike, mode: str = "w", *, newline: str | None = None, suffix: str | None = None
) -> Iterator:
  """`open(path, mode)` for writing ("w": UTF-8 text, or "wb"), made atomic: the file is closed
  and renamed into place when the block ends; on an exception nothing is written."""
  if mode not in ("w", "wb"):
    raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}")
  text = {} if mode == "wb" else {"encoding": "utf-8", "newline": newline}
  with atomic_path(path, suffix=suffix) as tmp:
    with open(tmp, mode, **text) as f:
      yield f


def atomic_write(path: str | os.PathLike, data: str | bytes) -> None:
  """Writes `data` (text as UTF-8, or bytes) to `path` atomically."""
  with atomic_open(path, "wb" if isinstance(data, (bytes, bytearray)) else "w") as f:
    f.write(data)


def write_json_atomic(path: str | os.PathLike, obj, **json_kwargs) -> None:
  """`json.dump(obj, f, **json_kwargs)` to `path`, atomically (no newline is added)."""
  with atomic_open(path) as f:
    json.dump(obj, f, **json_kwargs)


def write_yaml_atomic(path: str | os.PathLike, obj) -> None:
  """`obj` as YAML (safe_dump, keys in the dict's own order) at `path`, atomically."""
  import yaml

  with atomic_open(path) as f:
    yaml.safe_dump(obj, f, sort_keys=False)


def replace_between_markers(path: str | os.PathLike, begin: str, end: str, body: str) -> None:
  """Replaces the lines between the marker lines `begin` and `end` of a text file with `body`
  (its trailing newlines dropped), atomically; the markers and everything outside them stay.

  A marker counts only as a whole line, so a marker quoted in running text is left alone; the
  first `begin` line and the first `end` line after it delimit the block. A missing marker
  line raises AmpSpaceError naming the file and the marker."""
  path = os.fspath(path)
  with open(path, encoding="utf-8") as f:
    lines = f.read().split("\n")
  if begin not in lines:
    raise AmpSpaceError(f"{path}: no marker line {begin!r} (alone on its line) to fill")
  first = lines.index(begin)
  try:
    last = lines.index(end, first + 1)
  except ValueError:
    raise AmpSpaceError(
      f"{path}: no marker line {end!r} (alone on its line) after {begin!r}"
    ) from None
  lines[first + 1 : last] = body.rstrip("\n").split("\n")
  atomic_write(path, "\n".join(lines))


def sha256_file(path: str | os.PathLike) -> str:
  """The SHA-256 of a file's bytes, as hex, read in 1 MiB blocks."""
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()
