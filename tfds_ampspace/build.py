"""`tfds build` without TensorFlow: the same command, flags and behaviour.

  python -m tfds_ampspace.build tfds_ampspace/amp_space --config=tiny \
      --file_format=array_record --data_dir=~/tensorflow_datasets

Why: the stock `tfds` entry point (tensorflow_datasets.scripts.cli.main) imports its
`convert_format` command, which touches `tf.train.Example` at import time, so `tfds build`
fails with ModuleNotFoundError where TensorFlow is not installed, even for datasets that never
use it. The `build` command itself is TF-free; this module runs it through the same flag parser
and logging set-up as the stock CLI. With TensorFlow installed, `tfds build ...` is equivalent.

Two flags of its own, taken out before TFDS parses the rest:
  --di_dir=DIR   a folder of DI files, searched first for the DIs recordings name (repeatable;
                 passed to the layout readers as AMPSPACE_DI_DIR);
  --verbose      show the Python traceback of a failed build. Without it, rejected input
                 (an AmpSpaceError, a missing file) ends with the list of problems, each naming
                 its file, and exit status 2.
"""

# No `from __future__ import annotations` here: simple_parsing reads the dataclass field types
# at run time, and a string annotation would not resolve.

import dataclasses
import functools
import os
import sys

import simple_parsing
import tensorflow_datasets as tfds
from absl import app, logging
from tensorflow_datasets.scripts.cli import build, cli_utils


@dataclasses.dataclass(frozen=True, kw_only=True)
class Args(cli_utils.Args):
  """Build datasets (the `tfds build` command, TensorFlow-free)."""

  command: build.Args = simple_parsing.subparsers({"build": build.Args})

  def execute(self) -> None:
    self.command.execute()


def parse_flags(argv):
  parse = cli_utils.make_flags_parser(Args, description="tfds build, without TensorFlow")
  return parse([argv[0], "build", *argv[1:]])


def split_own_flags(argv: list[str]) -> tuple[list[str], list[str], bool]:
  """(argv for TFDS, --di_dir folders, --verbose) from the command line."""
  rest, di_dirs, verbose = [], [], False
  args = iter(argv)
  for arg in args:
    if arg == "--verbose":
      verbose = True
    elif arg.startswith("--di_dir="):
      di_dirs.append(arg.split("=", 1)[1])
    elif arg == "--di_dir":
      di_dirs.append(next(args, ""))
    else:
      rest.append(arg)
  return rest, di_dirs, verbose


def user_problem(error: BaseException) -> BaseException | None:
  """The bad-input error behind a failure (Beam and worker pools may wrap it), or None for a bug."""
  from ampspace.errors import AmpSpaceError

  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, (AmpSpaceError, FileNotFoundError, NotADirectoryError)):
      return error
    error = error.__cause__ or error.__context__
  return None


def main(args: Args, verbose: bool = False) -> None:
  import tfds_ampspace  # noqa: F401  (registers amp_space, so `amp_space/tiny` also works)

  tfds.core.visibility.set_availables(
    [
      tfds.core.visibility.DatasetType.TFDS_PUBLIC,
      tfds.core.visibility.DatasetType.COMMUNITY_PUBLIC,
    ]
  )
  logging.set_verbosity(logging.INFO)
  try:
    args.execute()
  except Exception as e:  # pylint: disable=broad-except
    problem = user_problem(e)
    if verbose or problem is None:
      raise
    print(f"error: {problem}\n(run with --verbose for the traceback)", file=sys.stderr)
    sys.exit(2)


def run() -> None:
  from tfds_ampspace.amp_space import layouts

  argv, di_dirs, verbose = split_own_flags(sys.argv)
  for folder in di_dirs:
    if not os.path.isdir(folder):
      print(f"error: --di_dir {folder!r}: not a folder", file=sys.stderr)
      sys.exit(2)
  if di_dirs:
    os.environ[layouts.DI_DIR_ENV] = os.pathsep.join(os.path.abspath(d) for d in di_dirs)
  app.run(functools.partial(main, verbose=verbose), argv=argv, flags_parser=parse_flags)


if __name__ == "__main__":
  run()
