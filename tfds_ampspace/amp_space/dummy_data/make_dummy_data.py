"""Writes the tiny recordings the builder tests ingest: one folder per accepted layout.

  .venv/bin/python tfds_ampspace/amp_space/dummy_data/make_dummy_data.py

Deterministic. Every "recording" is a plucked-string DI through a soft clipper, delayed by a
known latency that each layout gives in one of the three accepted ways (the tests check that
it is found and removed), as 16-bit WAV, 0.08 s each so the whole folder stays under 200 KB.

  release/  Amp-Space release layout (settings.yaml per folder), latency 3 samples, annotated
            (`latency_samples`)
  csv/      flattened data.csv variant, latency 2, measured from a loopback recording of each
            DI (`loopback_file`)
  nam/      NAM-style input.wav / output*.wav pairs with knob YAML/JSON, latency 5, measured
            from a calibration blip at the start of input.wav (`blip_at`, `di_start`)
"""

from __future__ import annotations

import csv
import json
import os
import shutil

import numpy as np
import soundfile as sf
import yaml

from ampspace import SAMPLE_RATE
from ampspace.di import karplus

HERE = os.path.dirname(os.path.abspath(__file__))
SECONDS = 0.08
LATENCY = {"release": 3, "csv": 2, "nam": 5}
BLIP_AT, NAM_DI_START = 300, 1200  # the calibration region at the start of the NAM input


def fake_device(di: np.ndarray, gain: float, lag: int) -> np.ndarray:
  """A soft clipper whose drive follows the knob, recorded `lag` samples late."""
  y = 0.8 * np.tanh((1.0 + gain) * di)
  out = np.zeros_like(y)
  out[lag:] = y[: len(y) - lag]
  return out


def _wav(path: str, x: np.ndarray) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  sf.write(path, x, SAMPLE_RATE, subtype="PCM_16")


def main(root: str = HERE) -> None:
  for name in LATENCY:
    shutil.rmtree(os.path.join(root, name), ignore_errors=True)
  dis = {f"di_{i}": karplus.phrase(100 + i, SECONDS) for i in range(3)}
  # release layout: <brand>/<vst>/<device>/<sweep>/<di>/ with settings.yaml
  for di_id, di in dis.items():
    _wav(os.path.join(root, "release", "di", di_id + ".wav"), di)
    folder = os.path.join(root, "release", "acme", "recorded", "fuzzbox", "gain", di_id)
    files = []
    for i, gain in enumerate((2.0, 8.0)):
      _wav(os.path.join(folder, f"{i:08d}.wav"), fake_device(di, gain, LATENCY["release"]))
      files.append({"filename": f"{i:08d}.wav", "settings": [{"gain": gain}, {"tone": 5.0}]})
    with open(os.path.join(folder, "settings.yaml"), "w") as f:
      yaml.safe_dump(
        {
          "brand": "acme",
          "vst_name": "recorded",
          "device": "fuzzbox",
          "device_type": "fuzz",
          "source": "real",
          "attributes": {"transistor": "germanium", "clipping": "germanium"},
          "di_file": f"di/{di_id}.wav",
          "di_id": di_id,
          "di_start": 0,
          "di_end": len(di),
          "sample_rate": SAMPLE_RATE,
          "latency_samples": LATENCY["release"],
          "knob_specs": [
            {"name": "gain", "minimum": 0, "maximum": 10},
            {"name": "tone", "minimum": 0, "maximum": 10},
          ],
          "files": files,
        },
        f,
        sort_keys=False,
      )
  # data.csv: global keys, filename, one column per knob, attr_ columns
  rows = []
  for j, (di_id, di) in enumerate(dis.items()):
    _wav(os.path.join(root, "csv", "di", di_id + ".wav"), di)
    for gain in ((3.0, 6.0, 9.0)[j],):
      filename = f"out/{di_id}_gain{gain:g}.wav"
      _wav(os.path.join(root, "csv", filename), fake_device(di, gain, LATENCY["csv"]))
      # the DI through the interface alone: a pure delay, at a lower level
      loopback = np.zeros_like(di)
      loopback[LATENCY["csv"] :] = 0.7 * di[: len(di) - LATENCY["csv"]]
      _wav(os.path.join(root, "csv", "loopback", di_id + ".wav"), loopback)
      rows.append(
        {
          "device": "overdrive_pedal",
          "brand": "acme",
          "device_type": "overdrive",
          "source": "real",
          "di_file": f"di/{di_id}.wav",
          "di_id": di_id,
          "di_start": 0,
          "di_end": len(di),
          "filename": filename,
          "gain": gain,
          "loopback_file": f"loopback/{di_id}.wav",
          "level": 5.0,
          "attr_clipping": "silicon",
        }
      )
  with open(os.path.join(root, "csv", "data.csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  # NAM-style: one input.wav at the top, one folder per captured setting
  calibration = np.zeros(NAM_DI_START, np.float32)
  calibration[BLIP_AT] = 0.5
  nam_di = np.concatenate([calibration] + list(dis.values())[:2])
  _wav(os.path.join(root, "nam", "input.wav"), nam_di)
  for gain in (4.0, 7.0):
    folder = os.path.join(root, "nam", f"gain_{gain:g}")
    _wav(os.path.join(folder, "output.wav"), fake_device(nam_di, gain, LATENCY["nam"]))
    with open(os.path.join(folder, "capture.json"), "w") as f:
      json.dump(
        {
          "device": "tube_combo",
          "brand": "acme",
          "device_type": "amp",
          "attributes": {"power_tube": "6V6"},
          "knobs": {"gain": gain, "volume": 6},
          "blip_at": BLIP_AT,
          "di_start": NAM_DI_START,
        },
        f,
        indent=1,
      )


if __name__ == "__main__":
  main()
