"""Render DIs × device settings into paired audio in the Amp-Space release layout.

  python -m ampspace.render --device=tube_amp --sweep=one_knob:gain --di=DI_DIR --out=OUT

Layout (the paper's generator's):
  OUT/<brand>/<vst_name>/<device>/<sweep>/<di_stem>/NNNNNNNN.wav
  OUT/<brand>/<vst_name>/<device>/<sweep>/<di_stem>/settings.yaml
  OUT/di/<di_stem>.wav        the DI itself, referenced by settings.yaml's di_file

settings.yaml: brand, vst_name, device, device_type, data_type, source, attributes, di_file,
di_id, di_start, di_end, sample_rate, defaults, knob_specs, files: [{filename, settings:
[{Knob: value}, ...]}]. A folder's settings.yaml is written last, atomically, so a folder
with one is complete; rerunning resumes where it stopped.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import glob
import json
import multiprocessing
import os
import shutil
import sys

import numpy as np
from absl import app, flags
from tqdm import tqdm

from ampspace import SAMPLE_RATE
from ampspace.audio.wav_io import read_wav, write_wav
from ampspace.devices import get_device
from ampspace.errors import AmpSpaceError, report_errors
from ampspace.files import atomic_path, write_yaml_atomic
from ampspace.sweeps import parse_sweep, sweep_dirname

SETTINGS_FILE = "settings.yaml"
CLIP_REPORT_FRACTION = 0.001  # a clip with more than 0.1% of samples at full scale is reported


def vst_name_of(device) -> str:
  """The layout's <vst_name> level: the plugin's own name, or "native" for our DSP."""
  return getattr(device, "vst_name", None) or "native"


@dataclasses.dataclass
class ClipReport:
  path: str
  clipped_fraction: float


def check_rendered(out: np.ndarray, where: str) -> float:
  """Every rendered clip must be finite, without DC drift, and not silent; returns clipping."""
  if not np.all(np.isfinite(out)):
    raise AmpSpaceError(f"{where}: device produced NaN/Inf")
  rms = float(np.sqrt(np.mean(out.astype(np.float64) ** 2)))
  if rms < 1e-5:
    raise AmpSpaceError(f"{where}: device output is silent (rms {rms:.2e})")
  if abs(float(np.mean(out))) > 0.1 * max(rms, 1e-3) + 0.01:
    raise AmpSpaceError(f"{where}: device output has DC drift (mean {np.mean(out):.3f})")
  return float(np.mean(np.abs(out) >= 0.999))


def di_annotations(di_dir: str) -> dict[str, dict]:
  """{file stem: {di_id, di_start, di_end, di_source}} from the DI folder's manifest.json (written
  by `python -m ampspace.di`), so user passages keep their source id and position; {} if none."""
  path = os.path.join(di_dir, "manifest.json")
  if not os.path.exists(path):
    return {}
  try:
    with open(path) as f:
      passages = json.load(f).get("passages", [])
    return {
      os.path.splitext(os.path.basename(e["file"]))[0]: {
        "di_id": str(e["id"]),
        "di_start": int(e["start"]),
        "di_end": int(e["end"]),
        "di_source": str(e.get("source", "")),
      }
      for e in passages
    }
  except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
    raise AmpSpaceError(f"{path}: cannot read the DI manifest ({e})") from None


def _render_folder(
  device_name: str,
  settings_list: list[dict],
  di_path: str,
  folder: str,
  out_root: str,
  sweep: str,
  di_annotation: dict | None = None,
) -> list[ClipReport]:
  """Renders one DI through every setting into `folder` (one worker's job)."""
  device = get_device(device_name)
  di, _ = read_wav(di_path)
  os.makedirs(folder, exist_ok=True)
  files, reports = [], []
  for i, settings in enumerate(settings_list):
    filename = f"{i:08d}.wav"
    path = os.path.join(folder, filename)
    if not os.path.exists(path):  # resumable: a finished clip is never rendered twice
      out = device.process(di, settings, SAMPLE_RATE)
      reports.append(ClipReport(path, check_rendered(out, path)))
      write_wav(path, out)
    files.append({"filename": filename, "settings": [{k: float(v)} for k, v in settings.items()]})
  stem = os.path.splitext(os.path.basename(di_path))[0]
  desc = device.describe()
  write_yaml_atomic(
    os.path.join(folder, SETTINGS_FILE),
    {
      "brand": device.brand,
      "vst_name": vst_name_of(device),
      "device": device.name,
      "device_type": device.device_type,
      "data_type": "synthetic" if device.source == "synthetic" else "real",
      "source": device.source,
      "attributes": desc["attributes"],
      "di_file": os.path.relpath(os.path.join(out_root, "di", stem + ".wav"), out_root),
      **(di_annotation or {"di_id": stem, "di_start": 0, "di_end": int(len(di))}),
      "sample_rate": SAMPLE_RATE,
      # The plugin latency the device already removed: a report, not the recording's latency
      # (a render has none; `latency_samples` would tell the builder to shift the output).
      "sweep": sweep,
      "plugin_latency_compensated": int(device.latency_samples),
      "defaults": device.defaults,
      "knob_specs": desc["knobs"],
      "clipped_files": sorted(
        os.path.basename(r.path) for r in reports if r.clipped_fraction > CLIP_REPORT_FRACTION
      ),
      "files": files,
    },
  )
  return reports


def render(
  device_name: str,
  sweep: str,
  di_dir: str,
  out: str,
  *,
  seed: int = 0,
  workers: int | None = None,
  progress: bool = True,
) -> dict:
  """Renders every DI in `di_dir` through `device_name` at every setting of `sweep`."""
  device = get_device(device_name)
  settings_list = parse_sweep(sweep, device, seed)
  di_paths = sorted(glob.glob(os.path.join(di_dir, "*.wav")))
  if not di_paths:
    raise AmpSpaceError(f"{di_dir}: no .wav DI files found")
  for p in di_paths:  # validate every DI before writing anything
    read_wav(p)
  if os.path.isfile(out):
    raise AmpSpaceError(f"{out}: output path is a file, expected a folder")
  os.makedirs(os.path.join(out, "di"), exist_ok=True)
  annotations = di_annotations(di_dir)
  base = os.path.join(
    out, device.brand, sweep_dirname(vst_name_of(device)), device.name, sweep_dirname(sweep)
  )
  jobs = []
  for p in di_paths:
    stem = os.path.splitext(os.path.basename(p))[0]
    di_copy = os.path.join(out, "di", stem + ".wav")
    if not os.path.exists(di_copy):
      with atomic_path(di_copy) as tmp:
        shutil.copyfile(p, tmp)
    folder = os.path.join(base, stem)
    if not os.path.exists(os.path.join(folder, SETTINGS_FILE)):
      jobs.append((device_name, settings_list, di_copy, folder, out, sweep, annotations.get(stem)))
  workers = workers or min(len(jobs), os.cpu_count() or 1) or 1
  reports: list[ClipReport] = []
  bar = tqdm(
    total=len(jobs), desc=f"render {device_name}", unit="DI", disable=not progress, file=sys.stderr
  )
  if workers <= 1:
    for job in jobs:
      reports += _render_folder(*job)
      bar.update()
  else:
    # forkserver, not fork: the caller may already run JAX's threads (quickstart, notebooks),
    # and forking a multithreaded process can deadlock.
    with concurrent.futures.ProcessPoolExecutor(
      workers, mp_context=multiprocessing.get_context("forkserver")
    ) as pool:
      for r in pool.map(_render_folder, *zip(*jobs)) if jobs else []:
        reports += r
        bar.update()
  bar.close()
  clipped = [r for r in reports if r.clipped_fraction > CLIP_REPORT_FRACTION]
  for r in clipped:
    print(f"warning: {r.path}: {100 * r.clipped_fraction:.2f}% of samples clipped", file=sys.stderr)
  return {
    "folders": len(di_paths),
    "rendered_folders": len(jobs),
    "clips": len(di_paths) * len(settings_list),
    "clipped": len(clipped),
  }


FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defined on demand, so importing this module (quickstart, builders) defines no flags."""
  flags.DEFINE_string("device", None, "Device name (see ampspace.devices.ALL_DEVICES).")
  flags.DEFINE_string("sweep", "default", "Sweep spec, e.g. one_knob:gain.")
  flags.DEFINE_string("di", None, "Folder of DI .wav files (44.1 kHz mono).")
  flags.DEFINE_string("out", None, "Output root of the release layout.")
  flags.DEFINE_integer("seed", 0, "Seed for random sweeps.")
  flags.DEFINE_integer("workers", 0, "Worker processes (0: one per core).")


@report_errors
def main(argv):
  del argv
  for name in ("device", "di", "out"):
    if not getattr(FLAGS, name):
      raise AmpSpaceError(f"--{name} is required")
  summary = render(
    FLAGS.device, FLAGS.sweep, FLAGS.di, FLAGS.out, seed=FLAGS.seed, workers=FLAGS.workers or None
  )
  print(
    f"rendered {summary['clips']} clips into {FLAGS.out} "
    f"({summary['rendered_folders']} new folders, {summary['clipped']} clipped clips)"
  )


def run():
  define_flags()
  app.run(main)


if __name__ == "__main__":
  run()
