"""Prebuilds the LV2 host library: `python -m ampspace.devices.lv2host [--force]`."""

from __future__ import annotations

import sys

from ampspace.devices.lv2host import build
from ampspace.errors import report_errors


@report_errors
def main(argv: list[str]) -> None:
  print(build(force="--force" in argv))


if __name__ == "__main__":
  main(sys.argv[1:])
