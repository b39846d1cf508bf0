"""`python -m launch.search`: the command of ampspace.experiments.search (its docstring has the flags)."""

from absl import app

from ampspace.experiments import search

if __name__ == "__main__":
  search.define_flags()
  app.run(search.main)
