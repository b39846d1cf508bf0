"""`python -m ampspace.runtime.c_runtime --build [--force]`: prebuilds the C runtime library."""

from __future__ import annotations

import sys

from ampspace.runtime.c_runtime import build
from ampspace.errors import report_errors


@report_errors
def main(argv: list[str]) -> None:
  if "--build" not in argv:
    raise SystemExit("usage: python -m ampspace.runtime.c_runtime --build [--force]")
  print(build(force="--force" in argv))


if __name__ == "__main__":
  main(sys.argv[1:])
