"""Builds and loads the small C LV2 host (host.c) with ctypes.

The library is compiled on first use with the system C compiler against lilv-0 and cached by
`ampspace.native_build` (editing host.c rebuilds it). The set-up script prebuilds it with
`python -m ampspace.devices.lv2host`.

Needs: a C compiler, pkg-config, liblilv-dev and lv2-dev (apt).
"""

from __future__ import annotations

import ctypes
import os
import shlex
import subprocess

from ampspace import native_build
from ampspace.errors import AmpSpaceError

SOURCE = os.path.join(os.path.dirname(__file__), "host.c")
KINDS = ("audio_in", "audio_out", "control_in", "control_out", "atom_in", "atom_out", "other")
_LIB = None


def _flags() -> list[str]:
  try:
    out = subprocess.run(
      ["pkg-config", "--cflags", "--libs", "lilv-0"], check=True, capture_output=True, text=True
    ).stdout
  except (OSError, subprocess.CalledProcessError) as e:
    raise AmpSpaceError(
      "cannot build the LV2 host: pkg-config does not find lilv-0 "
      f"(apt install liblilv-dev lv2-dev pkg-config): {e}"
    ) from None
  return ["-O2"] + shlex.split(out)


def build(force: bool = False) -> str:
  """Compiles host.c if needed; returns the shared library's path."""
  return native_build.build(SOURCE, "ampspace_lv2host", _flags(), force=force, what="LV2 host")


def load() -> ctypes.CDLL:
  """The host library, built if needed, with its C signatures declared."""
  global _LIB
  if _LIB is not None:
    return _LIB
  lib = ctypes.CDLL(build())
  c_float_p = ctypes.POINTER(ctypes.c_float)
  lib.ah_open.restype = ctypes.c_void_p
  lib.ah_open.argtypes = [
    ctypes.c_char_p,
    ctypes.c_double,
    ctypes.c_uint32,
    ctypes.c_char_p,
    ctypes.c_int,
  ]
  lib.ah_num_ports.restype = ctypes.c_uint32
  lib.ah_num_ports.argtypes = [ctypes.c_void_p]
  lib.ah_port_info.restype = ctypes.c_int
  lib.ah_port_info.argtypes = [
    ctypes.c_void_p,
    ctypes.c_uint32,
    ctypes.c_char_p,
    ctypes.c_int,
    c_float_p,
    c_float_p,
    c_float_p,
  ]
  lib.ah_plugin_name.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
  lib.ah_set_control.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_float]
  lib.ah_get_control.restype = ctypes.c_float
  lib.ah_get_control.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
  lib.ah_reset.restype = ctypes.c_int
  lib.ah_reset.argtypes = [ctypes.c_void_p]
  lib.ah_process.argtypes = [ctypes.c_void_p, c_float_p, c_float_p, ctypes.c_uint64]
  lib.ah_close.argtypes = [ctypes.c_void_p]
  _LIB = lib
  return lib
