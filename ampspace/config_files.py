"""Loading experiment config files: `configs/*.py` are files with `get_config(arg)`.

`load_config("wave2wavenet:runlocal")`, `load_config("configs/lstm.py", "runlocal")` or any path.
A bare name, or a `configs/NAME.py` that is not a file under the working directory, is the
shipped config: the repository's `configs/` in a checkout, the package `ampspace.configs` (the
same files, see setup.py) in an installed ampspace. `define_config_flag` is the trainer's
`--config` flag, which resolves its path the same way, so `--config=configs/NAME.py[:ARG]`
runs from any directory.
"""

from __future__ import annotations

import importlib.util
import os

from ampspace.errors import AmpSpaceError

_PACKAGE = os.path.dirname(os.path.abspath(__file__))
_INSTALLED_DIR = os.path.join(_PACKAGE, "configs")  # a wheel's ampspace/configs
_SOURCE_DIR = os.path.join(os.path.dirname(_PACKAGE), "configs")  # a checkout's configs/
CONFIG_DIR = _INSTALLED_DIR if os.path.isdir(_INSTALLED_DIR) else _SOURCE_DIR


def config_path(name_or_path: str) -> str:
  """The file of a config: `name_or_path` itself when it is a file, else the shipped config of
  that name when it is a bare name (`lstm`, `lstm.py`) or a path in a `configs` folder."""
  if os.path.isfile(name_or_path):
    return name_or_path
  folder, name = os.path.split(os.path.normpath(name_or_path))
  if folder and os.path.basename(folder) != "configs":
    raise AmpSpaceError(f"config {name_or_path!r}: no such file")
  name = name if name.endswith(".py") else name + ".py"
  path = os.path.join(CONFIG_DIR, name)
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


def flag_path(value: str) -> str:
  """A `--config` value, `PATH[:ARG]`, with PATH found as `config_path` finds it (ARG kept);
  a PATH found nowhere is left as it is, for config_flags to report."""
  path, sep, arg = value.partition(":")
  if not path or os.path.isfile(path):
    return value
  try:
    return config_path(path) + sep + arg
  except AmpSpaceError:
    return value


def define_config_flag(name: str, help_string: str, flag_values=None, **kwargs):
  """ml_collections' `DEFINE_config_file` (overrides `--NAME.key=value` and all), its path
  resolved by `flag_path`."""
  from absl import flags
  from ml_collections import config_flags

  flag_values = flags.FLAGS if flag_values is None else flag_values
  holder = config_flags.DEFINE_config_file(
    name, None, help_string, flag_values=flag_values, **kwargs
  )
  flag = flag_values[name]
  flag.parser = _ResolvingParser(flag.parser)
  return holder


class _ResolvingParser:
  """A config-file flag parser that resolves the path first (delegates everything else)."""

  def __init__(self, parser):
    self._parser = parser

  def parse(self, argument):
    return self._parser.parse(flag_path(argument) if isinstance(argument, str) else argument)

  def __getattr__(self, name):  # flag_type, help output: the wrapped parser's
    if name.startswith("__") or name == "_parser":
      raise AttributeError(name)
    return getattr(self._parser, name)


# ---------------------------------------------------------------- KEY=VALUE overrides
def set_key(config, key: str, value, *, where: str = "override", create: bool = False) -> None:
  """config[a][b][c] = value for key "a.b.c" (a leading "config." is dropped); a key the
  config lacks is an error naming it (with `create`, a missing last key is added, as for
  options a trainer reads with `.get`, e.g. train.log_data)."""
  *parents, leaf = key.removeprefix("config.").split(".")
  node = config
  for part in parents:
    if part not in node:
      raise AmpSpaceError(f"{where} {key}: no such config key {part!r}")
    node = node[part]
  if leaf not in node and not create:
    raise AmpSpaceError(f"{where} {key}: no such config key {leaf!r}")
  node[leaf] = value


def get_key(config, key: str, *, where: str = "override"):
  """config[a][b][c] for key "a.b.c"; a key the config lacks is an error naming it."""
  node = config
  for part in key.removeprefix("config.").split("."):
    if part not in node:
      raise AmpSpaceError(f"{where} {key}: no such config key {part!r}")
    node = node[part]
  return node


def typed_value(old, text: str, key: str):
  """`text` read as the type of the config's current value `old`, as the trainer's
  `--config.KEY=VALUE` flags read it: a string stays text, a float takes "3e-3", an int or bool
  or tuple is read as YAML; another type is an error naming the key."""
  import yaml

  if isinstance(old, str):
    return text
  if isinstance(old, float):  # YAML reads "3e-3" (no dot) as a string; Python reads it
    try:
      return float(text)
    except ValueError:
      raise AmpSpaceError(f"override {key}={text}: expected a float") from None
  value = yaml.safe_load(text)
  if isinstance(old, tuple) and isinstance(value, list):
    return tuple(value)
  if type(value) is not type(old) and old is not None:
    raise AmpSpaceError(f"override {key}={text}: expected a {type(old).__name__}")
  return value


def apply_override(config, item: str, *, flag: str = "--set") -> None:
  """Applies one "KEY=VALUE" (text, typed by the key's current value) to `config`; the one
  override engine of the experiments (sim-to-real, search) and their tests."""
  key, sep, text = item.partition("=")
  if not sep or not key:
    raise AmpSpaceError(f"{flag} {item!r}: expected KEY=VALUE, e.g. model.channels=8")
  key = key.removeprefix("config.")
  old = get_key(config, key, where=flag)  # a missing key is an error naming it
  set_key(config, key, typed_value(old, text, key), where=flag)
