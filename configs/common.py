"""What the configs share: `parse_arg`, the reader of every config's argument, and the blocks
that more than one experiment builds the same way.

A config file loads this one by name, `common = config_module("common")`: the shipped one
(the repository's `configs/` in a checkout, `ampspace/configs/` in an installed ampspace).

`parse_arg` follows big_vision's: the argument after `config.py:` is comma-separated items,
read against the defaults a config declares:

  def get_config(arg=None):
    arg = common.parse_arg(arg, __file__, runlocal=False, gains=(5.0,))
    ...  # arg.runlocal, arg.gains

so that `config.py:runlocal,gains=3+7` gives runlocal=True, gains=(3.0, 7.0).
"""

from __future__ import annotations

import os

import ml_collections

from ampspace.errors import AmpSpaceError

_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")
_ITEM_NAMES = {float: "numbers", int: "integers", str: "words"}


class OneOf:
  """A `parse_arg` spec whose value is one of `choices`, given as a bare word (`paper`) or as
  NAME=WORD; the first choice is the default. (A plain class: config files are loaded by
  path, outside sys.modules, where dataclasses cannot resolve their module.)"""

  def __init__(self, choices: tuple[str, ...]):
    self.choices = tuple(choices)

  def __repr__(self):
    return f"one_of{self.choices!r}"


def one_of(*choices: str) -> OneOf:
  if not choices:
    raise ValueError("one_of needs at least one choice")
  return OneOf(tuple(choices))


def _where(config_file: str) -> str:
  """`configs/capture.py` for a config file's path (its folder and name)."""
  path = os.path.normpath(config_file)
  return os.path.join(os.path.basename(os.path.dirname(path)), os.path.basename(path))


def _usage(spec: dict) -> str:
  parts = []
  for name, default in spec.items():
    if isinstance(default, OneOf):
      parts.append("|".join(default.choices) + f" (default {default.choices[0]})")
    elif isinstance(default, bool):
      parts.append(name)
    elif isinstance(default, tuple):
      shown = "+".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default)
      parts.append(f"{name}=A+B+... (default {shown})")
    else:
      parts.append(f"{name}={type(default).__name__.upper()} (default {default!r})")
  return ", ".join(parts) if parts else "nothing"


def _value(name: str, default, text: str):
  """`text` read as the type of `default`; ValueError with what was expected."""
  if isinstance(default, OneOf):
    if text not in default.choices:
      raise ValueError(f"{name} must be one of {', '.join(default.choices)}")
    return text
  if isinstance(default, bool):
    if text.lower() in _TRUE:
      return True
    if text.lower() in _FALSE:
      return False
    raise ValueError(f"{name} must be true or false (or the bare word {name})")
  if isinstance(default, tuple):
    kind = type(default[0]) if default else str
    try:
      values = tuple(kind(v) for v in text.split("+"))
    except ValueError:
      values = ()
    if not text or not values:
      raise ValueError(f"{name} must be {_ITEM_NAMES.get(kind, kind.__name__)} joined by +")
    return values
  try:
    return type(default)(text)
  except ValueError:
    raise ValueError(f"{name} must be {type(default).__name__}") from None


def parse_arg(arg: str | None, config_file: str, /, **spec) -> ml_collections.ConfigDict:
  """A config's argument (`config.py:ARG`) as a ConfigDict with one field per name of `spec`.

  `spec` maps each name to its default, whose type says how a value is read: bool, int, float,
  str, a tuple (items joined by `+`, read as the type of the default's first item), or
  `one_of(...)` (one of its words; default its first). ARG is comma-separated items, spaces
  around them ignored, empty ones skipped:

    NAME=VALUE  sets NAME (a bool takes true/false, 1/0 or yes/no);
    NAME        sets the bool NAME True (`runlocal`);
    WORD        picks WORD for the one_of spec that lists it (`capture.py:paper`).

  Names not given keep their defaults; None or "" gives every default. An unknown item, a bad
  value or a name given twice raises AmpSpaceError (a ValueError) naming the config file
  (`config_file`, a config's `__file__`), the item and what the config accepts.
  """
  where = _where(config_file)
  result = {name: (d.choices[0] if isinstance(d, OneOf) else d) for name, d in spec.items()}
  given = set()

  def fail(item: str, problem: str = ""):
    context = f" in {arg!r}" if item != arg.strip() else ""
    what = (
      f"config argument {item!r}{context}: {problem}"
      if problem
      else f"unknown config argument {item!r}{context}"
    )
    raise AmpSpaceError(f"{where}: {what}; accepted (comma-separated): {_usage(spec)}")

  for item in filter(None, (s.strip() for s in (arg or "").split(","))):
    name, sep, text = item.partition("=")
    name = name.strip()
    if not sep:
      words = [n for n, d in spec.items() if isinstance(d, OneOf) and item in d.choices]
      if isinstance(spec.get(item), bool):
        name, text = item, "true"
      elif words:
        name, text = words[0], item
      elif item in spec:
        fail(item, f"{item} needs a value, {item}=...")
      else:
        fail(item)
    elif name not in spec:
      fail(item)
    if name in given:
      fail(item, f"{name} given twice")
    try:
      result[name] = _value(name, spec[name], text.strip())
    except ValueError as e:
      fail(item, str(e))
    given.add(name)
  return ml_collections.ConfigDict(result)


# ---------------------------------------------------------------- shared blocks
def experiment(trainer: str) -> ml_collections.ConfigDict:
  """The top of every experiment: its trainer, seed and (no) initialisation."""
  c = ml_collections.ConfigDict()
  c.trainer = trainer
  c.seed = 0
  c.init_from = ""
  # Wave2WaveNet fine-tuning: "match" inverts the initialised model's output when it correlates
  # negatively with the training targets (a device of the other polarity); "keep" never does.
  c.init_polarity = "keep"
  # Fine-tuning: True leaves the rows of every conditioning projection that read the knob
  # values as the initialisation has them, so fine-tuning at one setting cannot change what the
  # pretraining learnt a knob does (`common.freeze_knob_rows`).
  c.freeze_knob_conditioning = False
  return c


def amp_space_dataset(runlocal: bool) -> ml_collections.ConfigDict:
  """amp_space/tiny (built when missing) on a CPU, amp_space/synthetic at paper scale."""
  d = ml_collections.ConfigDict()
  d.name = "amp_space/tiny" if runlocal else "amp_space/synthetic"
  d.data_dir = ""  # "" = TFDS default (~/tensorflow_datasets)
  d.manual_dir = ""  # a folder from `python -m ampspace.render`, or recordings
  d.build_if_missing = runlocal
  d.train_split = "train"
  d.eval_split = "validation"
  return d


def input_pipeline(
  runlocal: bool, batch_size: int, window: int | None = None
) -> ml_collections.ConfigDict:
  """The Grain input block; `window` for the models trained on windows of audio."""
  i = ml_collections.ConfigDict()
  if window is not None:
    i.window = window  # target samples per example
  i.batch_size = batch_size  # global, over all devices and hosts
  i.worker_count = 0 if runlocal else 4  # Grain multiprocessing workers per host
  i.read_threads = 2 if runlocal else 8
  return i


def adam_cosine(
  learning_rate: float, warmup_steps: int, grad_clip: float = 1.0
) -> ml_collections.ConfigDict:
  """Adam on a warmup-then-cosine schedule, no weight decay, gradients clipped by global norm."""
  o = ml_collections.ConfigDict()
  o.name = "adam"
  o.learning_rate = learning_rate
  o.schedule = "cosine"
  o.warmup_steps = warmup_steps
  o.weight_decay = 0.0
  o.grad_clip = grad_clip
  return o


def train_loop(
  *,
  steps: int,
  log_every: int,
  eval_every: int,
  eval_examples: int,
  checkpoint_every: int,
  keep_checkpoints: int,
) -> ml_collections.ConfigDict:
  """The training loop's block: its lengths and intervals, asynchronous checkpoints and
  TensorBoard."""
  t = ml_collections.ConfigDict()
  t.steps = steps
  t.log_every = log_every
  t.eval_every = eval_every
  t.eval_examples = eval_examples
  t.checkpoint_every = checkpoint_every
  t.keep_checkpoints = keep_checkpoints
  t.async_checkpoints = True
  t.tensorboard = True
  # Wall-clock budgets (ampspace/trainers/common.WallClockBudget): > 0 stops the run after this
  # many seconds of training; snapshot_seconds saves the parameters as they stand at each of
  # these times and lists them in WORKDIR/snapshots.json (accuracy races, steps/s checks).
  t.max_seconds = 0.0
  t.snapshot_seconds = ()
  return t
