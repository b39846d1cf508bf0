"""A device captured as a user's recording session would look: the stand-in "real" device.

`python -m ampspace.capture --device=gx_amp --knob=gain --di=DI_DIR --out=RECORDINGS`

Sim-to-real needs a "real" device that shares no code with the models' pretraining zoo, and
recordings of it that carry what real ones carry. This renders a device (by default a
Guitarix LV2 component model) at dial positions 1..10 of one knob, the others at their
defaults, and writes what an interface would have recorded:
  - 24-bit WAV, one fixed input trim per device (the loudest dial peaks at -3 dBFS);
  - a fixed interface latency (`--latency`, samples) and a little noise (`--noise_dbfs`);
  - that latency known the way recordings know it (`--latency_by`): an `annotation`
    (`latency_samples` in settings.yaml, the paper's `time-delay`), or a calibration `blip`
    at the start of every DI file, re-amped with it (NAM's convention), measured on ingest.
The folder is the Amp-Space release layout (`DIR/di/<di>.wav`, `DIR/<device>/<di>/
settings.yaml` with one output per dial), so `amp_space/real` ingests it like any user's.
Every knob is written as its dial position 0..10, as a guitarist notes a setting (the other
knobs at their defaults); `capture.yaml` keeps the knob values the dials stood for.
`knob_range` narrows what the swept dial spans
where a plugin's range is wider than a real knob's (gx_amp's pre-gain spans -20..+20 dB, 40 dB
of level from dial 1 to 10: dial 1 would sit below the ingest's silence floor).
"""

from __future__ import annotations

import glob
import os
import shutil
import sys

import numpy as np
import soundfile as sf
import yaml
from absl import app, flags
from tqdm import tqdm

from ampspace import SAMPLE_RATE, devices
from ampspace.audio.wav_io import read_wav
from ampspace.errors import AmpSpaceError, report_errors

DIALS = tuple(float(d) for d in range(1, 11))
CALIBRATION_SECONDS = 0.25
BLIP_AT = 4096  # inside the calibration region, after a quiet stretch
BLIP_AMPLITUDE = 0.5
PEAK_TARGET = 0.7  # the input trim puts the loudest dial's peak at -3 dBFS
SUBTYPE = "PCM_24"


def dial_value(lo: float, hi: float, dial: float) -> float:
  """The knob's own value at dial position `dial` of 0..10, the dial spanning lo..hi."""
  return lo + dial / 10.0 * (hi - lo)


def calibrated_di(di: np.ndarray) -> tuple[np.ndarray, int]:
  """The DI file as played for a blip capture: quiet, a blip, quiet, then the music at the
  returned offset."""
  start = int(CALIBRATION_SECONDS * SAMPLE_RATE)
  full = np.concatenate([np.zeros(start, np.float32), np.asarray(di, np.float32)])
  full[BLIP_AT] = BLIP_AMPLITUDE
  return full, start


def record(
  device,
  di: np.ndarray,
  settings: dict,
  trim: float,
  latency: int,
  noise: float,
  rng: np.random.Generator,
) -> np.ndarray:
  """What the interface records: the device's output, trimmed, `latency` samples late (the
  recording runs on for as long), plus noise."""
  wet = device.process(np.concatenate([di, np.zeros(latency, np.float32)]), settings)
  out = np.concatenate([np.zeros(latency, np.float32), trim * np.asarray(wet, np.float32)])
  out = out[: len(di) + latency] + noise * rng.standard_normal(len(di) + latency)
  return out.astype(np.float32)


def _write_yaml(path: str, data: dict) -> None:
  with open(path, "w") as f:
    yaml.safe_dump(data, f, sort_keys=False)


def capture_device(
  device_name: str,
  knob_name: str,
  di_dir: str,
  out: str,
  *,
  dials=DIALS,
  latency: int = 117,
  noise_dbfs: float = -96.0,
  latency_by: str = "annotation",
  label: str | None = None,
  seed: int = 0,
  knob_range: tuple[float, float] | None = None,
  progress: bool = True,
) -> dict:
  """Writes the capture folder `out` (see the module doc); returns a summary. Idempotent: a
  finished folder (its `capture.yaml`) is left alone; an unfinished one is written anew in a
  temporary folder beside it, then renamed, so nothing half-written is left behind."""
  if latency_by not in ("annotation", "blip"):
    raise AmpSpaceError(f"--latency_by must be annotation or blip, got {latency_by!r}")
  if latency < 0:
    raise AmpSpaceError(f"--latency must be >= 0 samples, got {latency}")
  summary_path = os.path.join(out, "capture.yaml")
  if os.path.exists(summary_path):
    with open(summary_path) as f:
      return yaml.safe_load(f)
  di_paths = sorted(glob.glob(os.path.join(di_dir, "*.wav")))
  if not di_paths:
    raise AmpSpaceError(f"{di_dir}: no .wav DI files")
  device = devices.get_device(device_name)
  knobs = {k.name: k for k in device.knobs}
  if knob_name not in knobs:
    raise AmpSpaceError(
      f"device {device_name!r} has no knob {knob_name!r}; its knobs: {sorted(knobs)}"
    )
  label = label or device_name
  lo, hi = knob_range or (knobs[knob_name].minimum, knobs[knob_name].maximum)
  if not knobs[knob_name].minimum <= min(lo, hi) <= max(lo, hi) <= knobs[knob_name].maximum:
    raise AmpSpaceError(
      f"knob range {lo}..{hi} is outside {knob_name!r}'s "
      f"{knobs[knob_name].minimum}..{knobs[knob_name].maximum}"
    )
  dis = {os.path.splitext(os.path.basename(p))[0]: read_wav(p)[0] for p in di_paths}
  played = {d: calibrated_di(x) if latency_by == "blip" else (x, 0) for d, x in dis.items()}
  settings = {
    d: {**{k.name: k.default for k in device.knobs}, knob_name: dial_value(lo, hi, d)}
    for d in dials
  }
  default_dials = {
    k.name: round(10 * (k.default - k.minimum) / (k.maximum - k.minimum), 4)
    for k in device.knobs
    if k.maximum > k.minimum
  }
  dial_settings = {d: {**default_dials, knob_name: d} for d in dials}
  # One input trim for the whole session, set on the loudest dial (as an engineer would).
  loudest = max(
    float(np.max(np.abs(device.process(x, settings[max(dials)])))) for x, _ in played.values()
  )
  trim = PEAK_TARGET / max(loudest, 1e-6)
  noise = 10 ** (noise_dbfs / 20)
  rng = np.random.default_rng(seed)

  tmp = out.rstrip("/") + ".tmp"
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(os.path.join(tmp, "di"))
  specs = [{"name": k, "minimum": 0.0, "maximum": 10.0} for k in default_dials]
  bar = tqdm(
    total=len(dis) * len(dials),
    desc=f"capture {label}",
    unit="take",
    disable=not progress,
    file=sys.stderr,
  )
  peak = 0.0
  for di_id, (di, start) in played.items():
    sf.write(os.path.join(tmp, "di", di_id + ".wav"), di, SAMPLE_RATE, subtype=SUBTYPE)
    folder = os.path.join(tmp, label, di_id)
    os.makedirs(folder)
    files = []
    for d in dials:
      y = record(device, di, settings[d], trim, latency, noise, rng)
      peak = max(peak, float(np.max(np.abs(y))))
      name = f"{knob_name}_{d:04.1f}.wav"
      sf.write(os.path.join(folder, name), y, SAMPLE_RATE, subtype=SUBTYPE)
      files.append(
        {"filename": name, "settings": {k: float(v) for k, v in dial_settings[d].items()}}
      )
      bar.update()
    meta = {
      "device": label,
      "brand": "recorded",
      "device_type": device.device_type,
      "source": "real",
      "attributes": dict(getattr(device, "attributes", {}) or {}),
      "di_file": f"di/{di_id}.wav",
      "di_id": di_id,
      "di_start": start,
      "di_end": start + len(dis[di_id]),
      "sample_rate": SAMPLE_RATE,
      "knob_specs": specs,
      "files": files,
    }
    if latency_by == "annotation":
      meta["latency_samples"] = latency
    else:
      meta["blip_at"] = BLIP_AT
    _write_yaml(os.path.join(folder, "settings.yaml"), meta)
  bar.close()
  if peak >= 0.999:
    shutil.rmtree(tmp)
    raise AmpSpaceError(f"{out}: the capture clips (peak {peak:.3f}); lower the trim")
  summary = {
    "device": device_name,
    "label": label,
    "knob": knob_name,
    "dials": list(dials),
    "latency_samples": latency,
    "latency_by": latency_by,
    "noise_dbfs": noise_dbfs,
    "knob_range": [lo, hi],
    "knob_values": {f"{d:g}": settings[d] for d in dials},
    "input_trim": round(trim, 6),
    "peak": round(peak, 4),
    "dis": sorted(dis),
    "subtype": SUBTYPE,
  }
  _write_yaml(os.path.join(tmp, "capture.yaml"), summary)
  if os.path.exists(out):
    shutil.rmtree(out)
  os.replace(tmp, out)
  return summary


FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string("device", "gx_amp", "Device to capture (registry name, lv2:URI, ...).")
  flags.DEFINE_string("knob", "gain", "The knob swept over dials 1..10.")
  flags.DEFINE_string("di", None, "Folder of DI .wav files.")
  flags.DEFINE_string("out", None, "Capture folder to write (release layout).")
  flags.DEFINE_integer("latency", 117, "Interface latency in samples.")
  flags.DEFINE_float("noise_dbfs", -96.0, "Noise floor of the interface (RMS, dBFS).")
  flags.DEFINE_enum(
    "latency_by", "annotation", ["annotation", "blip"], "How the recording tells its latency."
  )
  flags.DEFINE_string("label", None, "Device name in the annotation (default: --device).")
  flags.DEFINE_list(
    "knob_range",
    None,
    "LO,HI: the knob values dial 0 and 10 stand for (default: the knob's whole range).",
  )


@report_errors
def main(argv):
  del argv
  if not FLAGS.di or not FLAGS.out:
    raise AmpSpaceError("--di and --out are required")
  s = capture_device(
    FLAGS.device,
    FLAGS.knob,
    FLAGS.di,
    FLAGS.out,
    latency=FLAGS.latency,
    noise_dbfs=FLAGS.noise_dbfs,
    latency_by=FLAGS.latency_by,
    label=FLAGS.label,
    knob_range=tuple(map(float, FLAGS.knob_range)) if FLAGS.knob_range else None,
  )
  print(
    f"wrote {FLAGS.out}: {len(s['dis'])} DIs x {len(s['dials'])} dials of {s['knob']}, "
    f"latency {s['latency_samples']} samples by {s['latency_by']}"
  )


if __name__ == "__main__":
  define_flags()
  app.run(main)
