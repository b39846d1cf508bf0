"""Experiments as importable modules: each holds its protocol, data preparation, runs and
reports, and the command that `launch/<name>.py` runs (`python -m launch.sim_to_real`,
`python -m launch.search`, `python launch/interpolation.py`, `python launch/ablation.py`).

- `sim_to_real`: the paper's Table 3, fair and resumable (docs/sim_to_real.md);
- `interpolation`: the soundspace experiment, VAE against Wave2WaveNet (docs/soundspace.md);
- `search`: the Optuna architecture search;
- `ablation`: the loss × decoder table.
"""
