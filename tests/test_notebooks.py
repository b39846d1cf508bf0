"""Executes every colab/ notebook headless with nbclient on tiny data; any cell error fails.

The notebooks read their inputs from environment variables (AMPSPACE_NB_WORKDIR, _OUT,
_DATA_DIR, AMPSPACE_MOS_*), which the kernel inherits from this process. A tiny trained
workdir is built once per session (the quickstart's model, 30 steps); set AMPSPACE_NB_WORKDIR
to reuse one between runs. Slow (minutes on 2 CPU cores): opt in with
  pytest -m notebook tests/test_notebooks.py
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import sys

import numpy as np
import pytest


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLAB = os.path.join(REPO, "colab")
KERNEL_PROBE = "import sys; print('KERNEL_PYTHON=' + sys.executable)"


@pytest.mark.notebook
def test_every_notebook_is_covered():
  found = sorted(f for f in os.listdir(COLAB) if f.endswith(".ipynb"))
  assert found == ["dataset_explorer.ipynb", "listening_samples.ipynb", "mos_study.ipynb"]


@pytest.fixture(scope="session")
def nb_workdir(tmp_path_factory) -> str:
  """A quickstart workdir with a trained tiny Wave2WaveNet (trained here when missing)."""
  from ampspace import notebook_utils as nbu

  workdir = os.environ.get("AMPSPACE_NB_WORKDIR") or str(tmp_path_factory.mktemp("nb_workdir"))
  nbu.ensure_tiny_model(workdir, steps=30)
  return workdir


def execute(name: str, out_dir, env: dict, monkeypatch):
  """Runs colab/`name` in a fresh python3 kernel with `env`; returns the executed notebook."""
  import nbformat
  from nbclient import NotebookClient

  for key in [k for k in os.environ if k.startswith(("AMPSPACE_NB_", "AMPSPACE_MOS_"))]:
    monkeypatch.delenv(key)
  for key, value in env.items():
    monkeypatch.setenv(key, str(value))
  nb = nbformat.read(os.path.join(COLAB, name), as_version=4)
  nbformat.validate(nb)
  assert "google.colab" in "".join(
    nb.cells[1].source if nb.cells[0].cell_type == "markdown" else nb.cells[0].source
  ), "first code cell: Colab install"
  nb.cells.append(nbformat.v4.new_code_cell(KERNEL_PROBE))
  client = NotebookClient(
    nb, kernel_name="python3", timeout=900, resources={"metadata": {"path": str(out_dir)}}
  )
  try:
    client.execute()  # raises CellExecutionError with the traceback on any cell error
  finally:
    nbformat.write(nb, os.path.join(str(out_dir), "executed_" + name))
  probe = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
  assert f"KERNEL_PYTHON={sys.executable}" in probe, (probe, sys.executable)
  errors = [
    o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
  ]
  assert not errors
  return nb


def outputs_with(nb, mime: str, needle: str = "") -> int:
  return sum(
    1
    for c in nb.cells
    if c.cell_type == "code"
    for o in c.outputs
    if mime in o.get("data", {}) and needle in str(o["data"][mime])
  )


def stream_text(nb) -> str:
  return "".join(
    o.get("text", "")
    for c in nb.cells
    if c.cell_type == "code"
    for o in c.outputs
    if o.output_type == "stream"
  )


def read_wav(path):
  from ampspace.audio.wav_io import read_wav as rw

  return rw(path)[0]


@pytest.mark.notebook
@pytest.mark.slow
def test_listening_samples(nb_workdir, tmp_path, monkeypatch):
  from ampspace import SAMPLE_RATE

  out = tmp_path / "listening"
  nb = execute(
    "listening_samples.ipynb",
    tmp_path,
    {"AMPSPACE_NB_WORKDIR": nb_workdir, "AMPSPACE_NB_OUT": out},
    monkeypatch,
  )
  assert outputs_with(nb, "text/html", "<audio") >= 5  # DI/target/prediction + 2 strips
  assert outputs_with(nb, "image/png") >= 2
  if importlib.util.find_spec("ipywidgets"):  # the [notebook] extra; without it, no controls
    assert outputs_with(nb, "application/vnd.jupyter.widget-view+json") >= 1
  di, target, pred = (read_wav(out / f"default_{n}.wav") for n in ("di", "target", "prediction"))
  assert len(di) == len(target) == len(pred) > SAMPLE_RATE
  assert not np.allclose(target, di) and np.abs(pred).max() > 1e-3
  summary = json.loads((out / "listening.json").read_text())
  steps = os.listdir(os.path.join(nb_workdir, "train", "checkpoints"))
  assert summary["step"] == max(int(d) for d in steps if d.isdigit())
  assert summary["knobs"] == {"gain": 5.0}
  assert all(np.isfinite(v) for v in summary["metrics"].values())
  rows = summary["sweep"]["rows"]
  assert [r["value"] for r in rows] == [1, 3, 5, 7, 9]
  rms = [r["target_rms"] for r in rows]
  assert rms == sorted(rms) and rms[-1] > 2 * rms[0]  # the amp gets louder with gain
  gap = int(round(0.25 * SAMPLE_RATE))
  for name in ("target", "prediction"):
    assert len(read_wav(out / f"sweep_gain_{name}.wav")) == 5 * len(di) + 4 * gap
  for png in ("default_spectrogram.png", "sweep_gain_spectrogram.png"):
    assert (out / png).stat().st_size > 10_000


def check_mos_outputs(out, conditions: set[str], stimuli: int, listeners: int, seed: int):
  from ampspace import notebook_utils as nbu

  with open(out / "ratings_simulated.csv") as f:
    reader = csv.DictReader(f)
    assert tuple(reader.fieldnames) == nbu.RATING_COLUMNS
    ratings = list(reader)
  assert len(ratings) == listeners * stimuli * len(conditions)
  assert {r["rater"] for r in ratings} == {"simulated"}
  assert {r["seed"] for r in ratings} == {str(seed)}
  assert {r["condition"] for r in ratings} == conditions
  assert all(r["rating"] in "12345" for r in ratings)
  # The blind order per listener is the recorded seed's, and everyone hears everything once.
  protocol = json.loads((out / "protocol.json").read_text())
  assert protocol["seed"] == seed and len(protocol["listeners"]) == listeners
  stim = nbu.read_stimuli(protocol["stimuli_dir"])
  again = nbu.mos_order(listeners, stim, seed)
  for lid, order in again.items():
    files = [os.path.basename(s.path) for s in order]
    assert protocol["orders"][lid] == files
    assert [r["file"] for r in ratings if r["listener"] == lid] == files
  assert len({tuple(o) for o in protocol["orders"].values()}) == listeners
  # Summary: per condition n, mean and the interval of a bootstrap over listeners (seeded by
  # the recorded seed), recomputed here from the CSV.
  with open(out / "mos_summary.csv") as f:
    summary = list(csv.DictReader(f))
  assert list(summary[0]) == [
    "condition",
    "n",
    "listeners",
    "mean",
    "sd",
    "ci_half",
    "ci_low",
    "ci_high",
    "method",
  ]
  assert {s["condition"] for s in summary} == conditions
  assert {s["method"] for s in summary} == {"listener_bootstrap"}
  again = {
    s["condition"]: s for s in nbu.mos_summary(str(out / "ratings_simulated.csv"), seed=seed)
  }
  for s in summary:
    x = np.array([int(r["rating"]) for r in ratings if r["condition"] == s["condition"]], float)
    assert int(s["n"]) == len(x) and float(s["mean"]) == pytest.approx(x.mean())
    assert int(s["listeners"]) == listeners
    assert float(s["ci_low"]) == pytest.approx(again[s["condition"]]["ci_low"])
    assert float(s["ci_high"]) == pytest.approx(again[s["condition"]]["ci_high"])
  assert summary[0]["condition"] == "real_target"  # the reference is rated best
  assert (out / "mos_summary.png").stat().st_size > 5_000
  return ratings


@pytest.mark.notebook
@pytest.mark.slow
def test_mos_study_generates_stimuli(nb_workdir, tmp_path, monkeypatch):
  out = tmp_path / "mos"
  nb = execute(
    "mos_study.ipynb",
    tmp_path,
    {
      "AMPSPACE_NB_WORKDIR": nb_workdir,
      "AMPSPACE_NB_OUT": out,
      "AMPSPACE_MOS_SEED": 11,
      "AMPSPACE_MOS_LISTENERS": 5,
    },
    monkeypatch,
  )
  conditions = {"real_target", "wave2wavenet", "interpolation", "anchor"}
  stimuli = {n.split("__")[0] for n in os.listdir(out / "stimuli")}
  assert len(stimuli) == 2  # the tiny dataset's test and validation DIs
  check_mos_outputs(out, conditions, len(stimuli), listeners=5, seed=11)
  assert "SIMULATED listeners" in stream_text(nb)
  assert outputs_with(nb, "image/png") >= 1  # the bar plot


@pytest.mark.notebook
@pytest.mark.slow
def test_mos_study_reads_a_stimulus_folder(tmp_path, monkeypatch):
  """A folder of `<stimulus>__<condition>.wav` (e.g. the VAE's renderings): no model needed."""
  from ampspace import SAMPLE_RATE
  from ampspace.audio.wav_io import write_wav

  folder = tmp_path / "stimuli"
  rng = np.random.default_rng(0)
  t = np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
  for i, f in enumerate((110.0, 165.0, 220.0)):
    ref = 0.4 * np.tanh(3 * np.sin(2 * np.pi * f * t)) + 0.02 * rng.standard_normal(len(t))
    write_wav(folder / f"riff_{i}__real_target.wav", ref.astype(np.float32))
    write_wav(
      folder / f"riff_{i}__vae.wav", (ref + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    )
    write_wav(
      folder / f"riff_{i}__noise.wav", (0.3 * rng.standard_normal(len(t))).astype(np.float32)
    )
  # Plain WAVs as launch/interpolation.py writes them, imported as one more stimulus.
  interp = tmp_path / "interp_mos"
  write_wav(interp / "di.wav", (0.1 * np.sin(2 * np.pi * 110 * t)).astype(np.float32))
  write_wav(interp / "real_A_gain5.wav", ref.astype(np.float32))
  write_wav(interp / "vae.wav", (ref + 0.05 * rng.standard_normal(len(t))).astype(np.float32))
  write_wav(interp / "noise.wav", (0.3 * rng.standard_normal(len(t))).astype(np.float32))
  out = tmp_path / "mos"
  execute(
    "mos_study.ipynb",
    tmp_path,
    {
      "AMPSPACE_NB_WORKDIR": tmp_path / "no_model_here",
      "AMPSPACE_NB_OUT": out,
      "AMPSPACE_MOS_STIMULI": folder,
      "AMPSPACE_MOS_LISTENERS": 4,
      "AMPSPACE_MOS_IMPORT": f"{interp}:real_A_gain5",
    },
    monkeypatch,
  )
  assert not (tmp_path / "no_model_here").exists()  # nothing was trained
  assert not any(n.startswith("imported__") for n in os.listdir(folder))  # input untouched
  assert sorted(n for n in os.listdir(out / "stimuli") if n.startswith("imported__")) == [
    "imported__noise.wav",
    "imported__real_target.wav",
    "imported__vae.wav",
  ]
  ratings = check_mos_outputs(out, {"real_target", "vae", "noise"}, 4, listeners=4, seed=2021)
  mean = lambda c: np.mean([int(r["rating"]) for r in ratings if r["condition"] == c])
  assert mean("real_target") > mean("vae") > mean("noise")


@pytest.mark.notebook
@pytest.mark.slow
def test_dataset_explorer_builds_and_browses_tiny(tmp_path, monkeypatch):
  out = tmp_path / "explorer"
  nb = execute(
    "dataset_explorer.ipynb",
    tmp_path,
    {"AMPSPACE_NB_DATA_DIR": tmp_path / "tfds", "AMPSPACE_NB_OUT": out},
    monkeypatch,
  )
  assert (tmp_path / "tfds" / "amp_space" / "tiny").is_dir()  # built by the notebook
  report = json.loads((out / "explorer.json").read_text())
  assert report["dataset"] == "amp_space/tiny" and report["devices"] == ["tube_amp"]
  assert sum(report["sizes"].values()) == 15  # 5 DIs x gains 2, 5, 8
  per_value = report["per_value"]
  assert [p["value"] for p in per_value] == [2.0, 5.0, 8.0]
  assert all(p["clips"] == 1 for p in per_value)
  rms = [p["rms"] for p in per_value]
  assert rms == sorted(rms) and rms[-1] > 2 * rms[0]
  assert outputs_with(nb, "text/html", "<audio") >= 2
  for png in ("clip0_waveform.png", "clip0_spectrogram.png", "knob_spectra.png"):
    assert (out / png).stat().st_size > 5_000
