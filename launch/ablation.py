"""`python launch/ablation.py --workdir=runs/ablation`: the loss × decoder ablation table
(ampspace.experiments.ablation)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # as a script

from ampspace.experiments import ablation  # noqa: E402

if __name__ == "__main__":
  ablation.main()
