"""amp_space built through Apache Beam against the in-process build: hours of paired audio per
core-hour and per wall-hour, rendering included.

  bash launch/setup_beam.sh
  .venv-beam/bin/python benchmarks/bench_dataset_beam.py           # benchmarks/results/dataset_beam.{json,md}
  .venv-beam/bin/python benchmarks/bench_dataset_beam.py --quick   # a smoke run

The same config (every native device with a `gain` knob over the paper's 1..10 grid, plucked-
string DIs) is built three ways into fresh folders: the builder's generator in this process;
Beam's DirectRunner in memory (one worker); and the DirectRunner with `--direct_num_workers`
processes (`multi_processing`), the local stand-in for a Dataflow, Flink or Spark cluster. Each
build's examples must equal the in-process build's (same ids, same bytes), or the benchmark
fails. Core-hours are the CPU time of this process and of its finished child processes (the
Beam workers). Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time

import apache_beam as beam
import numpy as np
import tensorflow_datasets as tfds

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from ampspace import SAMPLE_RATE  # noqa: E402
from ampspace.files import atomic_write  # noqa: E402
from tfds_ampspace.amp_space import amp_space_dataset_builder as asb  # noqa: E402


def _cpu_with_children() -> float:
  own = resource.getrusage(resource.RUSAGE_SELF)
  kids = resource.getrusage(resource.RUSAGE_CHILDREN)
  return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _examples(builder) -> dict:
  return {
    (split, ex["clip_id"]): ex for split, src in builder.as_data_source().items() for ex in src
  }


def _same(reference: dict, other: dict, label: str) -> None:
  if sorted(reference) != sorted(other):
    raise SystemExit(f"{label}: the clip ids differ from the in-process build's")
  for key, ex in reference.items():
    for feature, value in ex.items():
      if not np.array_equal(np.asarray(value), np.asarray(other[key][feature])):
        raise SystemExit(f"{label}: {key} {feature} differs from the in-process build's")


def build(cfg, data_dir: str, beam_args: list[str] | None) -> dict:
  builder = asb.Builder(config=cfg, data_dir=data_dir, file_format="array_record")
  download_config = None
  if beam_args is not None:
    options = beam.options.pipeline_options.PipelineOptions(beam_args)
    download_config = tfds.download.DownloadConfig(beam_options=options)
  cpu0, wall0 = _cpu_with_children(), time.perf_counter()
  builder.download_and_prepare(download_config=download_config)
  cpu, wall = _cpu_with_children() - cpu0, time.perf_counter() - wall0
  examples = _examples(builder)
  hours = sum(len(ex["output"]) for ex in examples.values()) / SAMPLE_RATE / 3600
  return {
    "examples": examples,
    "paired_audio_hours": round(hours, 4),
    "cpu_seconds": round(cpu, 2),
    "wall_seconds": round(wall, 2),
    "hours_per_core_hour": round(hours / (cpu / 3600), 1),
    "hours_per_wall_hour": round(hours / (wall / 3600), 1),
  }


def _markdown(result: dict) -> str:
  lines = [
    "# amp_space build through Apache Beam",
    "",
    f"Command: `{result['command']}`  ",
    f"Machine: {result['machine']}  ",
    f"Config: {result['config']}",
    "",
    "Every build wrote the same examples as the in-process build (same clip ids, same "
    "bytes in every feature).",
    "",
    "| build | paired audio (h) | CPU s | wall s | h per core-hour | h per wall-hour |",
    "|---|---:|---:|---:|---:|---:|",
  ]
  for r in result["builds"]:
    lines.append(
      f"| {r['build']} | {r['paired_audio_hours']} | {r['cpu_seconds']} | "
      f"{r['wall_seconds']} | {r['hours_per_core_hour']} | "
      f"{r['hours_per_wall_hour']} |"
    )
  return "\n".join(lines) + "\n"


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="fewer, shorter DIs")
  parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
  parser.add_argument("--out", default=os.path.join(HERE, "results"))
  args = parser.parse_args()
  num_dis, seconds = (2, 1.0) if args.quick else (8, 4.0)
  cfg = asb.AmpSpaceConfig(
    name="bench_beam",
    devices=("native",),
    sweep="one_knob:gain",
    num_dis=num_dis,
    di_seconds=seconds,
  )
  ways = [
    ("in-process generator", None),
    ("Beam DirectRunner, in memory, 1 worker", ["--runner=DirectRunner", "--direct_num_workers=1"]),
    (
      f"Beam DirectRunner, multi_processing, {args.workers} workers",
      [
        "--runner=DirectRunner",
        f"--direct_num_workers={args.workers}",
        "--direct_running_mode=multi_processing",
      ],
    ),
  ]
  scratch = tempfile.mkdtemp(prefix="bench_beam_")
  rows, reference = [], None
  try:
    for i, (label, beam_args) in enumerate(ways):
      print(f"[bench_dataset_beam] {label}", flush=True)
      r = build(cfg, os.path.join(scratch, str(i)), beam_args)
      examples = r.pop("examples")
      if reference is None:
        reference = examples
      else:
        _same(reference, examples, label)
      rows.append({"build": label, **r})
      print(f"  {r}", flush=True)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  result = {
    "command": "python benchmarks/bench_dataset_beam.py" + (" --quick" if args.quick else ""),
    "machine": f"{platform.machine()}, {os.cpu_count()} cores, python "
    f"{platform.python_version()}, apache-beam {beam.__version__}",
    "config": f"devices=native (those with a gain knob), sweep={cfg.sweep}, "
    f"{num_dis} DIs x {seconds:g} s",
    "builds": rows,
  }
  os.makedirs(args.out, exist_ok=True)
  name = "dataset_beam_quick" if args.quick else "dataset_beam"
  atomic_write(os.path.join(args.out, name + ".json"), json.dumps(result, indent=1))
  atomic_write(os.path.join(args.out, name + ".md"), _markdown(result))
  print(_markdown(result))


if __name__ == "__main__":
  main()
