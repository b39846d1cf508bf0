"""`python -m launch.launcher {local,slurm,tpu_vm} ... -- <ampspace.train arguments>`: the same
training command on every process (ampspace.launcher has the backends)."""

import sys

from ampspace import launcher

if __name__ == "__main__":
  sys.exit(launcher.main())
