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
