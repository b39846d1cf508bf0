"""One error type for bad user input, and the one-line reporting used by every entry point."""

from __future__ import annotations

import functools
import sys


class AmpSpaceError(ValueError):
  """Bad input or configuration; the message names the file or key and the problem."""


def report_errors(main_fn):
  """Wraps an absl/argparse main so that an AmpSpaceError ends with one clear line, not a traceback."""

  @functools.wraps(main_fn)
  def wrapper(*args, **kwargs):
    try:
      return main_fn(*args, **kwargs)
    except (AmpSpaceError, FileNotFoundError, NotADirectoryError, FileExistsError) as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)

  return wrapper


def parse_flags_one_line_errors(argv):
  """An absl `flags_parser` that reports config-override mistakes (an unknown key such as
  --config.train.stepz=3) as one line instead of the traceback config_flags raises."""
  from absl import flags

  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    if "Traceback (most recent call last):" in lines:  # a config file raised while loading
      lines = [lines[0], lines[-1]]
    print("error: " + " ".join(lines), file=sys.stderr)
    sys.exit(2)
  except (AttributeError, KeyError, TypeError, ValueError, OSError) as e:
    text = " ".join(str(e).replace("\\n", " ").replace("\\'", "'").split()).strip("'\"")
    print(f"error: bad command-line flag: {text}", file=sys.stderr)
    sys.exit(2)
