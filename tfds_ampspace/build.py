"""`tfds build` without TensorFlow: the same command, flags and behaviour.

  python -m tfds_ampspace.build tfds_ampspace/amp_space --config=tiny \
      --file_format=array_record --data_dir=~/tensorflow_datasets

Why: the stock `tfds` entry point (tensorflow_datasets.scripts.cli.main) imports its
`convert_format` command, which touches `tf.train.Example` at import time, so `tfds build`
fails with ModuleNotFoundError where TensorFlow is not installed, even for datasets that never
use it. The `build` command itself is TF-free; this module runs it through the same flag parser
and logging set-up as the stock CLI. With TensorFlow installed, `tfds build ...` is equivalent.
"""

# No `from __future__ import annotations` here: simple_parsing reads the dataclass field types
# at run time, and a string annotation would not resolve.

import dataclasses

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


def main(args: Args) -> None:
  import tfds_ampspace  # noqa: F401  (registers amp_space, so `amp_space/tiny` also works)

  tfds.core.visibility.set_availables([tfds.core.visibility.DatasetType.TFDS_PUBLIC,
                                       tfds.core.visibility.DatasetType.COMMUNITY_PUBLIC])
  logging.set_verbosity(logging.INFO)
  args.execute()


def run() -> None:
  app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
  run()
