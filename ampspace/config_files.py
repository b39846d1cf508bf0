"""Loading experiment config files: `configs/*.py` are files with `get_config(arg)`, not a package.

`load_config("wave2wavenet:runlocal")`, `load_config("configs/lstm.py", "runlocal")` or any path;
a bare name is looked up in the repository's `configs/` folder.
"""

from __future__ import annotations

import importlib.util
import os

from ampspace.errors import AmpSpaceError

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def config_path(name_or_path: str) -> str:
  if os.path.isfile(name_or_path):
    return name_or_path
  name = name_or_path if name_or_path.endswith(".py") else name_or_path + ".py"
  path = os.path.join(CONFIG_DIR, os.path.basename(name))
  if not os.path.isfile(path):
    raise AmpSpaceError(f"config {name_or_path!r}: no such file (looked in {CONFIG_DIR})")
  return path


def config_module(name_or_path: str):
  """The config file as a module (for its helpers and constants as well as get_config)."""
  path = config_path(name_or_path)
  stem = os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(f"ampspace_config_{stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def load_config(spec: str, arg: str | None = None):
  """get_config(arg) of a config file; `spec` may carry the argument as `name:arg`."""
  path, _, spec_arg = spec.partition(":") if not os.path.isfile(spec) else (spec, "", "")
  return config_module(path).get_config(arg if arg is not None else (spec_arg or None))
