"""Experiments as importable modules: each holds its protocol, data preparation, runs and
reports, and a `define_flags`/`main` pair that `launch/<name>.py` runs as a command
(`python -m launch.sim_to_real`, `python -m launch.search`).

- `sim_to_real`: the paper's Table 3, fair and resumable (docs/sim_to_real.md);
- `search`: the Optuna architecture search.
"""
