"""`python launch/interpolation.py --out=runs/interpolation --size=runlocal`: the paper's
interpolation experiment (ampspace.experiments.interpolation; its docstring has the stages)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # as a script

from ampspace.experiments import interpolation  # noqa: E402

if __name__ == "__main__":
  interpolation.run()
