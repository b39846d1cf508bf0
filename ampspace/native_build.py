"""Compiles a project C source into a shared library once, cached, for ctypes.

The library goes to `$AMPSPACE_CACHE` (default ~/.cache/ampspace)/<name>/<key>/, where the key
hashes the source, the compiler flags and (for `-march=native` builds) this CPU's feature
flags, so editing the source rebuilds it, a home folder shared by different machines never
loads code built for another CPU, and concurrent processes never load a half-written file
(the build is renamed into place).
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess

from ampspace.errors import AmpSpaceError
from ampspace.files import atomic_path


def cache_root() -> str:
  return os.environ.get(
    "AMPSPACE_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "ampspace")
  )


def _cpu_flags() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith(("flags", "Features")):
          return line
  except OSError:
    pass
  return platform.processor()


def library_path(source: str, name: str, flags: list[str], depends: tuple[str, ...] = ()) -> str:
  h = hashlib.sha256()
  for path in (source, *depends):  # files the source #includes count as the source
    with open(path, "rb") as f:
      h.update(f.read())
  h.update("\0".join(flags).encode())
  if "-march=native" in flags:
    h.update(_cpu_flags().encode())
  return os.path.join(cache_root(), name, h.hexdigest()[:16], f"lib{name}.so")


def build(
  source: str,
  name: str,
  flags: list[str],
  *,
  force: bool = False,
  what: str | None = None,
  depends: tuple[str, ...] = (),
) -> str:
  """Compiles `source` with `cc -shared -fPIC <flags>` if needed; returns the library's path.

  `depends`: files that `source` includes; editing them rebuilds it too."""
  what = what or name
  path = library_path(source, name, flags, depends)
  if os.path.exists(path) and not force:
    return path
  cc = os.environ.get("CC", "cc")
  with atomic_path(path) as tmp:  # renamed into place only when the compiler succeeds
    cmd = [cc, "-shared", "-fPIC", "-o", tmp, source] + flags
    try:
      proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
      raise AmpSpaceError(f"cannot build the {what}: no C compiler {cc!r} ({e})") from None
    if proc.returncode != 0:
      raise AmpSpaceError(f"cannot build the {what} ({' '.join(cmd)}):\n{proc.stderr.strip()}")
  return path
