"""DI corpus speed: FluidSynth render per program, the whole corpus writer, user-DI ingest.

  python benchmarks/bench_di.py [--phrases=16] [--minutes=4]

Prints a Markdown table and writes benchmarks/results/di.{json,md}. "× real time" is seconds
of audio per second of wall clock; "× per CPU-s" divides by the CPU time the work used (this
process plus its FluidSynth children), which is steadier on a shared machine. The load
average at the start is printed beside the table because other work on the machine slows
the wall-clock figures.
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

import numpy as np
import soundfile as sf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from ampspace import SAMPLE_RATE  # noqa: E402
from ampspace.di import corpus, fluidsynth_render, karplus, phrases  # noqa: E402


def _cpu() -> float:
  s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
  return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _timed(fn):
  w0, c0 = time.perf_counter(), _cpu()
  result = fn()
  return result, time.perf_counter() - w0, _cpu() - c0


def _row(name, audio_s, wall, cpu, note=""):
  return {
    "case": name,
    "audio_s": round(audio_s, 1),
    "wall_s": round(wall, 2),
    "cpu_s": round(cpu, 2),
    "x_realtime": round(audio_s / wall, 1),
    "x_per_cpu_s": round(audio_s / max(cpu, 1e-9), 1),
    "note": note,
  }


def bandwidth(x: np.ndarray) -> dict:
  """Where the spectrum ends: frequency below which 99.9 % of the energy lies, and the share
  of energy above 5 kHz (the soundfont's band limit, stated in docs/di_corpus.md)."""
  spec = np.abs(np.fft.rfft(np.asarray(x, np.float64))) ** 2
  freqs = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
  cum = np.cumsum(spec) / spec.sum()
  return {
    "rolloff_999_hz": round(float(freqs[min(len(freqs) - 1, np.searchsorted(cum, 0.999))])),
    "energy_above_5k": float(spec[freqs > 5000].sum() / spec.sum()),
  }


def bench_programs(n: int, seconds: float) -> tuple[list[dict], list[dict]]:
  rows, bands = [], []
  for prog, name in phrases.PROGRAMS.items():
    group = [phrases.make_phrase(0, i, seconds, program=prog) for i in range(n)]
    audio, wall, cpu = _timed(lambda: fluidsynth_render.render_phrases(group))
    rows.append(
      _row(
        f"fluidsynth render, program {prog} ({name})",
        n * seconds,
        wall,
        cpu,
        f"{n} phrases, one process",
      )
    )
    bands.append({"program": prog, "name": name, **bandwidth(np.concatenate(audio))})
  return rows, bands


def bench_corpus(minutes: float, tmp: str) -> list[dict]:
  rows = []
  workers = os.cpu_count() or 1
  for w in sorted({1, workers}):
    out = os.path.join(tmp, f"corpus_w{w}")
    s, wall, cpu = _timed(
      lambda: corpus.build_corpus(
        out, minutes=minutes, engine="fluidsynth", workers=w, progress=False
      )
    )
    rows.append(
      _row(
        f"python -m ampspace.di (fluidsynth), {w} worker(s)",
        s["minutes"] * 60,
        wall,
        cpu,
        "phrases + render + levels + WAV + manifest",
      )
    )
  out = os.path.join(tmp, "corpus_ks")
  s, wall, cpu = _timed(
    lambda: corpus.build_corpus(
      out, minutes=min(minutes, 1.0), engine="karplus", workers=1, progress=False
    )
  )
  rows.append(
    _row(
      "python -m ampspace.di --engine=karplus",
      s["minutes"] * 60,
      wall,
      cpu,
      "package-free fallback",
    )
  )
  return rows


def bench_user(tmp: str) -> list[dict]:
  src = os.path.join(tmp, "user")
  os.makedirs(src)
  take = np.concatenate([karplus.phrase(k, 30.0) for k in range(4)])  # 2 min
  sf.write(os.path.join(src, "take.wav"), np.stack([take, take], 1), 48000)  # stereo, 48 kHz
  audio_s = len(take) / 48000
  s, wall, cpu = _timed(
    lambda: corpus.build_corpus(
      os.path.join(tmp, "corpus_user"), minutes=0, from_dir=src, progress=False
    )
  )
  return [
    _row("user DIs: 48 kHz stereo → 44.1 kHz passages", audio_s, wall, cpu, f"{s['user']} passages")
  ]


def to_markdown(rows: list[dict], bands: list[dict], meta: dict) -> str:
  lines = [
    f"DI corpus speed ({meta['machine']}, {meta['cpus']} CPUs, load average "
    f"{meta['load_average']} at start; `{meta['command']}`)",
    "",
    "| case | audio (s) | wall (s) | × real time | × per CPU-s | note |",
    "|---|---:|---:|---:|---:|---|",
  ]
  for r in rows:
    lines.append(
      f"| {r['case']} | {r['audio_s']} | {r['wall_s']} | {r['x_realtime']} | "
      f"{r['x_per_cpu_s']} | {r['note']} |"
    )
  lines += [
    "",
    "Bandwidth of the rendered programs (same phrases as above):",
    "",
    "| program | 99.9 % of energy below (Hz) | energy above 5 kHz |",
    "|---|---:|---:|",
  ]
  for b in bands:
    lines.append(
      f"| {b['program']} ({b['name']}) | {b['rolloff_999_hz']} | {b['energy_above_5k']:.1e} |"
    )
  return "\n".join(lines) + "\n"


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--phrases", type=int, default=16, help="phrases per program")
  parser.add_argument("--minutes", type=float, default=4.0, help="corpus size to write")
  parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
  args = parser.parse_args()
  fluidsynth_render.find_fluidsynth()
  fluidsynth_render.find_soundfont()
  meta = {
    "machine": platform.processor() or platform.machine(),
    "cpus": os.cpu_count(),
    "load_average": ", ".join(f"{x:.1f}" for x in os.getloadavg()),
    "command": "python benchmarks/bench_di.py " + " ".join(sys.argv[1:]),
    "sample_rate": SAMPLE_RATE,
  }
  phrases.make_phrase(0, 1, style="melody")  # import music21 and parse once, outside timings
  tmp = tempfile.mkdtemp(prefix="bench_di_")
  try:
    rows, bands = bench_programs(args.phrases, 10.0)
    rows += bench_corpus(args.minutes, tmp) + bench_user(tmp)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  md = to_markdown(rows, bands, meta)
  print(md)
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "di.json"), "w") as f:
    json.dump({"meta": meta, "rows": rows, "bandwidth": bands}, f, indent=1)
  with open(os.path.join(args.out, "di.md"), "w") as f:
    f.write(md)


if __name__ == "__main__":
  main()
