"""Real-time factor of every device on one core at 44.1 kHz, pedalboard's built-in chain in the
same run as the reference.

  python benchmarks/bench_devices.py [--seconds 10] [--repeats 5] [--out benchmarks/results]

Pins itself to one core and to one BLAS/OpenMP thread before NumPy loads, renders the same
plucked-string DI through each device at its defaults, keeps the best of `--repeats` runs
(the least disturbed by other processes), and writes devices.json and devices.md (the table
it prints). Targets: native amps >= 300x real time per core, native pedals >= 1000x, judged
on CPU time: the process's own CPU seconds (`time.process_time`), which on a shared machine
do not count the time other processes hold the core. Wall-clock real-time factors are
reported beside them; on an idle core the two agree.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
  os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

AMP_TARGET, PEDAL_TARGET = 300.0, 1000.0


def best_time(fn, repeats: int) -> tuple[float, float]:
  """(best CPU seconds, best wall seconds) over `repeats` runs, after one warm-up run."""
  fn()  # warm-up: imports, caches, plugin first-run work
  cpu, wall = [], []
  for _ in range(repeats):
    c, t = time.process_time(), time.perf_counter()
    fn()
    cpu.append(time.process_time() - c)
    wall.append(time.perf_counter() - t)
  return min(cpu), min(wall)


def pedalboard_chain():
  import pedalboard as pb

  return pb.Pedalboard(
    [
      pb.Gain(gain_db=6),
      pb.Distortion(drive_db=25),
      pb.LowShelfFilter(cutoff_frequency_hz=200, gain_db=3),
      pb.PeakFilter(cutoff_frequency_hz=800, gain_db=-3, q=0.7),
      pb.HighShelfFilter(cutoff_frequency_hz=4000, gain_db=2),
      pb.Compressor(threshold_db=-20, ratio=4),
    ]
  )


def target_for(device) -> float | None:
  if device.source != "synthetic" or getattr(device, "vst_name", None):
    return None  # plugins: measured, no target
  if device.device_type in ("amp", "preamp"):
    return AMP_TARGET
  return PEDAL_TARGET


def run(seconds: float, repeats: int, devices: list[str] | None) -> dict:
  from ampspace import SAMPLE_RATE
  from ampspace.devices import ALL_DEVICES, get_device
  from ampspace.di.karplus import phrase

  di = phrase(0, seconds)
  rows = []
  chain = pedalboard_chain()
  x2 = di[None, :]
  c, t = best_time(lambda: chain(x2, SAMPLE_RATE, reset=True), repeats)
  rows.append(
    {
      "device": "pedalboard_chain",
      "type": "reference",
      "kind": "pedalboard built-ins",
      "rtf_cpu": seconds / c,
      "rtf": seconds / t,
      "target": None,
    }
  )
  names = devices or list(ALL_DEVICES)
  for name in names:
    dev = get_device(name)
    kind = "native" if not getattr(dev, "vst_name", None) else f"LV2 ({dev.vst_name})"
    c, t = best_time(lambda: dev.process(di, None, SAMPLE_RATE), repeats)
    rows.append(
      {
        "device": name,
        "type": dev.device_type,
        "kind": kind,
        "rtf_cpu": seconds / c,
        "rtf": seconds / t,
        "target": target_for(dev),
      }
    )
    print(f"{name:22s} cpu {seconds / c:8.0f}x  wall {seconds / t:8.0f}x", file=sys.stderr)
  return {
    "seconds": seconds,
    "repeats": repeats,
    "sample_rate": SAMPLE_RATE,
    "load_average": os.getloadavg()[0],
    "cpus": os.cpu_count(),
    "cpu": platform.processor() or platform.machine(),
    "python": platform.python_version(),
    "numpy": np.__version__,
    "rows": rows,
  }


def to_markdown(result: dict) -> str:
  lines = [
    f"Real-time factor, one core, {result['sample_rate']} Hz, {result['seconds']:g} s of "
    f"audio, best of {result['repeats']} (`python benchmarks/bench_devices.py`); "
    f"1-min load average {result['load_average']:.1f} on {result['cpus']} cores. "
    f"Targets are judged on CPU time.",
    "",
    "| device | type | implementation | RTF (CPU time) | RTF (wall clock) | target | "
    "meets (CPU time) |",
    "|---|---|---|---:|---:|---:|:---:|",
  ]
  for r in result["rows"]:
    target = f"{r['target']:.0f}x" if r["target"] else "-"
    meets = "-" if not r["target"] else ("yes" if r["rtf_cpu"] >= r["target"] else "**no**")
    lines.append(
      f"| {r['device']} | {r['type']} | {r['kind']} | {r['rtf_cpu']:.0f}x | "
      f"{r['rtf']:.0f}x | {target} | {meets} |"
    )
  return "\n".join(lines) + "\n"


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--seconds", type=float, default=10.0)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
  parser.add_argument("--devices", default="", help="comma-separated subset (default: all)")
  parser.add_argument("--core", type=int, default=0, help="CPU core to pin to")
  args = parser.parse_args()
  if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {args.core})
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from ampspace.files import atomic_write

  result = run(args.seconds, args.repeats, [d for d in args.devices.split(",") if d] or None)
  md = to_markdown(result)
  print(md)
  atomic_write(os.path.join(args.out, "devices.json"), json.dumps(result, indent=1) + "\n")
  atomic_write(os.path.join(args.out, "devices.md"), md)


if __name__ == "__main__":
  main()
