"""`python -m launch.sim_to_real`: the command of ampspace.experiments.sim_to_real (its docstring has the flags)."""

from absl import app

from ampspace.experiments import sim_to_real

if __name__ == "__main__":
  sim_to_real.define_flags()
  app.run(sim_to_real.main)
