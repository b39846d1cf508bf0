"""amp_space build throughput and storage: hours of paired audio per core-hour, bytes per hour.

  .venv/bin/python benchmarks/bench_dataset.py            # writes benchmarks/results/dataset.{json,md}
  .venv/bin/python benchmarks/bench_dataset.py --quick    # smaller, for a smoke run

Throughput: one process (the builder's generator path, one worker) builds amp_space from
plucked-string DIs rendered through each native device over a 10-value knob sweep, rendering
included, written as ArrayRecord. Core-hours are the process's CPU time (user + system), so a
busy shared machine does not flatter or punish the figure; wall time is reported beside it.

Storage: the same tube_amp clips written with each audio storage choice (int16 as a TFDS
int64 list, int16 as raw bytes, int16 + ZLIB, int32 holding 24-bit, float32, float32 + ZLIB): bytes of the ArrayRecord files per hour of
paired audio (DI + output), and the CPU time to read every record back through
tfds.data_source (what a training input pipeline pays).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time

import numpy as np
import tensorflow_datasets as tfds
from tqdm import tqdm

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from ampspace import SAMPLE_RATE  # noqa: E402
from ampspace.files import atomic_write  # noqa: E402
from tfds_ampspace.amp_space import amp_space_dataset_builder as asb  # noqa: E402

THROUGHPUT_DEVICES = ("tube_amp", "ts_overdrive", "rat_distortion", "fuzz_face")
STORAGE = {  # name -> (dtype, encoding, converter from float audio)
  "int16": (np.int16, tfds.features.Encoding.NONE, asb.to_pcm16),
  "int16+bytes": (np.int16, tfds.features.Encoding.BYTES, asb.to_pcm16),
  "int16+zlib": (np.int16, tfds.features.Encoding.ZLIB, asb.to_pcm16),
  "int32 (24-bit)": (
    np.int32,
    tfds.features.Encoding.NONE,
    lambda x: np.round(np.clip(x, -1, 1) * 8388607).astype(np.int32),
  ),
  "float32": (np.float32, tfds.features.Encoding.NONE, lambda x: np.asarray(x, np.float32)),
  "float32+zlib": (np.float32, tfds.features.Encoding.ZLIB, lambda x: np.asarray(x, np.float32)),
}


def _cpu() -> float:
  t = os.times()
  return t.user + t.system


def _build(cfg, data_dir: str) -> tuple[asb.Builder, float, float]:
  builder = asb.Builder(config=cfg, data_dir=data_dir, file_format="array_record")
  cpu0, wall0 = _cpu(), time.perf_counter()
  builder.download_and_prepare()
  return builder, _cpu() - cpu0, time.perf_counter() - wall0


def _audio_hours(builder) -> float:
  n = sum(
    len(ex["output"])
    for src in builder.as_data_source(decoders={"di": tfds.decode.SkipDecoding()}).values()
    for ex in src
  )
  return n / SAMPLE_RATE / 3600


def _disk_bytes(builder) -> int:
  return sum(
    os.path.getsize(os.path.join(builder.data_path, f))
    for f in os.listdir(builder.data_path)
    if ".array_record-" in f
  )


def throughput(num_dis: int, di_seconds: float, scratch: str) -> list[dict]:
  rows = []
  from ampspace.devices import get_device

  for device in tqdm(THROUGHPUT_DEVICES, desc="throughput", unit="device"):
    knob = get_device(device).knobs[0].name  # the sweep turns each device's first knob 1..10
    cfg = asb.AmpSpaceConfig(
      name=f"bench_{device}",
      devices=(device,),
      sweep=f"one_knob:{knob}",
      num_dis=num_dis,
      di_seconds=di_seconds,
    )
    builder, cpu, wall = _build(cfg, os.path.join(scratch, "tp"))
    hours = _audio_hours(builder)
    rows.append(
      {
        "device": device,
        "sweep": cfg.sweep,
        "paired_audio_hours": round(hours, 4),
        "cpu_seconds": round(cpu, 2),
        "wall_seconds": round(wall, 2),
        "hours_per_core_hour": round(hours / (cpu / 3600), 1),
        "hours_per_wall_hour": round(hours / (wall / 3600), 1),
      }
    )
  return rows


def storage(num_dis: int, di_seconds: float, scratch: str) -> list[dict]:
  rows = []
  saved = (asb.AUDIO_DTYPE, asb.AUDIO_ENCODING, asb.to_pcm16)
  try:
    for name, (dtype, encoding, convert) in tqdm(STORAGE.items(), desc="storage", unit="format"):
      asb.AUDIO_DTYPE, asb.AUDIO_ENCODING, asb.to_pcm16 = dtype, encoding, convert
      cfg = asb.AmpSpaceConfig(
        name="bench_storage",
        devices=("tube_amp",),
        sweep="one_knob:gain",
        num_dis=num_dis,
        di_seconds=di_seconds,
      )
      folder = os.path.join(scratch, "st_" + "".join(c for c in name if c.isalnum()))
      builder, cpu, _ = _build(cfg, folder)
      hours = _audio_hours(builder)
      cpu0 = _cpu()
      for src in builder.as_data_source().values():
        for ex in src:
          assert ex["output"].dtype == dtype
      read_cpu = _cpu() - cpu0
      size = _disk_bytes(builder)
      rows.append(
        {
          "storage": name,
          "bytes_per_paired_hour": int(size / hours),
          "gib_per_paired_hour": round(size / hours / 2**30, 3),
          "read_cpu_seconds_per_paired_hour": round(read_cpu / hours, 1),
          "build_cpu_seconds_per_paired_hour": round(cpu / hours, 1),
        }
      )
      shutil.rmtree(folder, ignore_errors=True)
  finally:
    asb.AUDIO_DTYPE, asb.AUDIO_ENCODING, asb.to_pcm16 = saved
  return rows


def _markdown(result: dict) -> str:
  lines = [
    "# amp_space dataset benchmark",
    "",
    f"Command: `{result['command']}`  ",
    f"Machine: {result['machine']}",
    "",
    "## Build throughput (render + write ArrayRecord, one process)",
    "",
    "| device | sweep | paired audio (h) | CPU s | wall s | h per core-hour | h per wall-hour |",
    "|---|---|---|---|---|---|---|",
  ]
  for r in result["throughput"]:
    lines.append(
      f"| {r['device']} | {r['sweep']} | {r['paired_audio_hours']} | "
      f"{r['cpu_seconds']} | {r['wall_seconds']} | {r['hours_per_core_hour']} | "
      f"{r['hours_per_wall_hour']} |"
    )
  lines += [
    "",
    "## Storage per hour of paired audio (DI + output, 44.1 kHz mono)",
    "",
    "| storage | bytes / h | GiB / h | build CPU s / h | read CPU s / h |",
    "|---|---|---|---|---|",
  ]
  for r in result["storage"]:
    lines.append(
      f"| {r['storage']} | {r['bytes_per_paired_hour']} | {r['gib_per_paired_hour']}"
      f" | {r['build_cpu_seconds_per_paired_hour']}"
      f" | {r['read_cpu_seconds_per_paired_hour']} |"
    )
  return "\n".join(lines) + "\n"


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="fewer, shorter DIs")
  parser.add_argument("--out", default=os.path.join(HERE, "results"))
  args = parser.parse_args()
  num_dis, seconds = (3, 2.0) if args.quick else (10, 4.0)
  scratch = tempfile.mkdtemp(prefix="bench_dataset_")
  try:
    result = {
      "command": "python benchmarks/bench_dataset.py" + (" --quick" if args.quick else ""),
      "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
      f"python {platform.python_version()}",
      "dis": {"count": num_dis, "seconds": seconds, "kind": "karplus phrases"},
      "throughput": throughput(num_dis, seconds, scratch),
      "storage": storage(num_dis, seconds, scratch),
    }
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  os.makedirs(args.out, exist_ok=True)
  for name, text in (
    ("dataset.json", json.dumps(result, indent=1)),
    ("dataset.md", _markdown(result)),
  ):
    atomic_write(os.path.join(args.out, name), text)
  print(_markdown(result))


if __name__ == "__main__":
  main()
