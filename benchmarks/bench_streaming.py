"""Streaming and offline inference speed of Wave2WaveNet, as real-time factors (RTF).

  .venv/bin/python benchmarks/bench_streaming.py           # writes benchmarks/results/streaming.{json,md}
  .venv/bin/python benchmarks/bench_streaming.py --quick   # fewer block sizes, shorter audio

Streaming runs in a child process pinned to one core with every thread pool at one thread
(XLA, OpenBLAS, OpenMP), the way a real-time audio thread runs: per block size, the jitted JAX
streamer (`ampspace.runtime.stream.Streamer`), the NumPy export runtime (`ampspace.runtime.export_runtime`),
the C runtime (`ampspace.runtime.c_runtime`, w2w.c) and the export's LV2 plugin (`--lv2`, with the
tube_amp's knob ports) in the project's own LV2 host (`ampspace.devices.lv2host`, one run() per
block) process `--seconds` of audio block by block, each block's output fetched before the
next. The LV2 row is left out, with the reason on stderr, where lilv or the LV2 headers are
missing. Offline inference runs in a second child on all cores:
`ampspace.runtime.inference.run_clip` (XLA convolutions over chunks), the NumPy runtime over the whole
signal, and the C runtime with the signal split over one thread per core.

RTF = audio seconds / wall seconds (>1 is faster than real time); the best of `--repeats`
runs is kept, and the CPU-time RTF (audio seconds / process CPU seconds) is reported beside it
because the machine may be shared. The model's multiply-adds per sample give the achieved
GFLOP/s and the rate a target RTF would need.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
SR = 44100
BLOCKS = (32, 64, 128, 256, 512, 1024, 2048)
ONE_CORE_ENV = {
  "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
  "OMP_NUM_THREADS": "1",
  "OPENBLAS_NUM_THREADS": "1",
  "MKL_NUM_THREADS": "1",
  "TF_CPP_MIN_LOG_LEVEL": "3",
}
TARGETS = {"streaming_64": 10.0, "lv2_streaming_64": 10.0, "offline": 30.0}
LV2_URI = "urn:ampspace:bench_model"  # the bundle's plugin (lv2_bundle names it by the folder)


def flops_per_sample(arch: dict) -> int:
  """Multiply-adds ×2 of one output sample (convs, residual/skip, head; activations not counted)."""
  C, S, H, K = arch["channels"], arch["skip_channels"], arch["head_channels"], arch["num_classes"]
  L, k = len(arch["dilations"]), arch["kernel_size"]
  macs = C + L * (k * C * 2 * C + C * C + C * S) + S * H + H * K
  return 2 * macs


def build_model(channels: int, depth: int):
  from flax import nnx

  from ampspace import conditioning as cond
  from ampspace.models.wave2wavenet import Wave2WaveNet

  return Wave2WaveNet(cond.conditioning_dim(), depth=depth, channels=channels, rngs=nnx.Rngs(0))


def _signal(seconds: float):
  import numpy as np

  rng = np.random.default_rng(0)
  n = int(seconds * SR)
  t = np.arange(n) / SR
  return (
    0.4 * np.sin(2 * np.pi * 110 * t) * np.exp(-(t % 1.0) * 3) + 0.01 * rng.standard_normal(n)
  ).astype(np.float32)


def _best(fn, repeats: int) -> tuple[float, float, list[float]]:
  """(best wall s, CPU s of that run, per-block wall times of that run)."""
  best = None
  for _ in range(repeats):
    c0, w0 = time.process_time(), time.perf_counter()
    blocks = fn()
    w, c = time.perf_counter() - w0, time.process_time() - c0
    if best is None or w < best[0]:
      best = (w, c, blocks)
  return best


def lv2_plugin_opener(tmp: str, model):
  """block -> the model's LV2 plugin (an export with the tube_amp's knobs) opened in the
  project's host for that block length; None, with the reason on stderr, where it cannot be
  built or hosted here."""
  from ampspace.runtime import export
  from ampspace.runtime.c_runtime import lv2_bundle
  from ampspace.errors import AmpSpaceError

  folder = os.path.join(tmp, "lv2")
  try:
    json_path, _ = export.export_model(model, os.path.join(tmp, "bench_lv2.npz"), device="tube_amp")
    uri = lv2_bundle.write_bundle(json_path, os.path.join(folder, "bench_model.lv2"))
    assert uri == LV2_URI, uri
    os.environ["LV2_PATH"] = folder  # lilv reads it when the host opens the plugin
    lv2_bundle.HostedPlugin(uri, 64).close()
  except (AmpSpaceError, OSError) as e:
    print(f"  stream lv2: left out ({e})", file=sys.stderr, flush=True)
    return None
  return lambda block: lv2_bundle.HostedPlugin(uri, block)


C_HOST = os.path.join(HERE, "lv2_block_host.c")


def lv2_c_host(tmp: str) -> str | None:
  """The C LV2 host (lv2_block_host.c) built in `tmp`; None, with the reason on stderr, where
  it cannot be built (no compiler or no lilv headers)."""
  exe = os.path.join(tmp, "lv2_block_host")
  try:
    lilv = subprocess.run(
      ["pkg-config", "--cflags", "--libs", "lilv-0"], capture_output=True, text=True, check=True
    ).stdout.split()
    subprocess.run(
      ["cc", "-O2", C_HOST, *lilv, "-lm", "-o", exe], capture_output=True, text=True, check=True
    )
  except (OSError, subprocess.CalledProcessError) as e:
    print(f"  stream lv2_c: left out ({getattr(e, 'stderr', '') or e})", file=sys.stderr)
    return None
  return exe


def time_c_host(exe: str, block: int, seconds: float, repeats: int) -> dict:
  """The plugin (the LV2_PATH the opener set) run by the C host: {rtf, rtf_cpu, audio_s}."""
  out = subprocess.run(
    [exe, LV2_URI, str(block), str(seconds), str(repeats)],
    capture_output=True,
    text=True,
    check=True,
  ).stdout.split()
  n = int(seconds * SR) // block * block
  return {"rtf": float(out[1]), "rtf_cpu": float(out[3]), "audio_s": n / SR}


def stream_child(args) -> dict:
  import jax
  import numpy as np

  from ampspace.runtime import c_runtime, export, export_runtime as rt
  from ampspace.runtime.stream import Streamer, arrays_of

  model = build_model(args.channels, args.depth)
  arch, _ = arrays_of(model)
  export.export_model(model, os.path.join(args.tmp, "bench_model.npz"))
  runtime = rt.load(os.path.join(args.tmp, "bench_model.json"))
  cmodel = c_runtime.Model(runtime)
  c = runtime.conditioning()
  open_lv2 = lv2_plugin_opener(args.tmp, model)
  c_host = lv2_c_host(args.tmp) if open_lv2 else None
  x = _signal(args.seconds)
  rows = []
  for B in args.blocks:
    n_blocks = len(x) // B
    audio_s = n_blocks * B / SR
    blocks = [x[i * B : (i + 1) * B] for i in range(n_blocks)]

    s = Streamer(model, B)
    state = s.init(c)
    cj = jax.numpy.asarray(c)
    for blk in blocks[:3]:  # compile and warm up
      state, y = s(state, blk, cj)
    np.asarray(y)

    def run_jax():
      nonlocal state
      times = []
      for blk in blocks:
        t0 = time.perf_counter()
        state, y = s(state, blk, cj)
        np.asarray(y)
        times.append(time.perf_counter() - t0)
      return times

    def block_timer(process):
      for blk in blocks[:3]:  # warm up
        process(blk)

      def run():
        times = []
        for blk in blocks:
          t0 = time.perf_counter()
          process(blk)
          times.append(time.perf_counter() - t0)
        return times

      return run

    impls = [
      ("jax", run_jax),
      ("numpy", block_timer(runtime.stream(c).process)),
      ("c", block_timer(cmodel.stream(c).process)),
    ]
    if open_lv2:
      impls.append(("lv2", block_timer(open_lv2(B).process)))
    for name, fn in impls:
      wall, cpu, times = _best(fn, args.repeats)
      deadline = B / SR
      rows.append(
        {
          "impl": name,
          "block": B,
          "audio_s": audio_s,
          "wall_s": wall,
          "cpu_s": cpu,
          "rtf": audio_s / wall,
          "rtf_cpu": audio_s / max(cpu, 1e-9),
          "p99_block_ms": 1e3 * float(np.percentile(times, 99)),
          "deadline_ms": 1e3 * deadline,
          "late_blocks": float(np.mean(np.asarray(times) > deadline)),
          "gflops": flops_per_sample(arch) * audio_s * SR / wall / 1e9,
        }
      )
      print(
        f"  stream {name:5s} B={B:5d}: {rows[-1]['rtf']:.2f}x real time "
        f"(CPU-time {rows[-1]['rtf_cpu']:.2f}x)",
        file=sys.stderr,
        flush=True,
      )
    if c_host:  # the same plugin, run() per block from C: no Python between blocks
      r = time_c_host(c_host, B, args.seconds, args.repeats)
      rows.append(
        {
          "impl": "lv2_c",
          "block": B,
          **r,
          "p99_block_ms": None,
          "deadline_ms": 1e3 * B / SR,
          "late_blocks": None,
          "gflops": flops_per_sample(arch) * SR * r["rtf"] / 1e9,
        }
      )
      print(f"  stream lv2_c B={B:5d}: {r['rtf']:.2f}x real time", file=sys.stderr, flush=True)
  return {"rows": rows, "arch": arch, "flops_per_sample": flops_per_sample(arch)}


def offline_child(args) -> dict:
  import jax
  from flax import nnx

  from ampspace.runtime import c_runtime, export, export_runtime as rt, inference

  model = build_model(args.channels, args.depth)
  export.export_model(model, os.path.join(args.tmp, "bench_model_off.npz"))
  runtime = rt.load(os.path.join(args.tmp, "bench_model_off.json"))
  cmodel = c_runtime.Model(runtime)
  cores = len(os.sched_getaffinity(0))
  c = runtime.conditioning()
  x = _signal(args.offline_seconds)
  audio_s = len(x) / SR
  graphdef, params = nnx.split(model)
  apply = inference.make_apply(graphdef, params)
  inference.run_clip(apply, x, c, model.context)  # compile
  rows = []
  for name, fn in (
    (
      "jax run_clip (XLA conv, 16384-sample chunks)",
      lambda: inference.run_clip(apply, x, c, model.context),
    ),
    ("numpy runtime (4096-sample blocks)", lambda: runtime.process(x, c)),
    (
      f"C runtime ({cores} threads, 1024-sample blocks)",
      lambda: cmodel.process(x, c, threads=cores, block_size=1024),
    ),
  ):
    wall, cpu, _ = _best(fn, args.repeats)
    rows.append(
      {
        "impl": name,
        "audio_s": audio_s,
        "wall_s": wall,
        "cpu_s": cpu,
        "rtf": audio_s / wall,
        "rtf_cpu": audio_s / max(cpu, 1e-9),
      }
    )
    print(f"  offline {name}: {rows[-1]['rtf']:.2f}x real time", file=sys.stderr, flush=True)
  return {"rows": rows, "cores": cores, "jax_devices": len(jax.devices())}


def _child_main(args) -> None:
  out = stream_child(args) if args.child == "stream" else offline_child(args)
  with open(args.child_out, "w") as f:
    json.dump(out, f)


def run_child(kind: str, args, env_extra: dict) -> dict:
  out = os.path.join(args.tmp, f"{kind}.json")
  cmd = [
    sys.executable,
    os.path.abspath(__file__),
    f"--child={kind}",
    f"--child_out={out}",
    f"--tmp={args.tmp}",
    f"--seconds={args.seconds}",
    f"--repeats={args.repeats}",
    f"--offline_seconds={args.offline_seconds}",
    f"--channels={args.channels}",
    f"--depth={args.depth}",
    "--blocks=" + ",".join(map(str, args.blocks)),
  ]
  env = {**os.environ, **env_extra, "PYTHONPATH": ROOT}
  subprocess.run(cmd, env=env, check=True, cwd=ROOT)
  with open(out) as f:
    return json.load(f)


def markdown(result: dict) -> str:
  s = result["streaming"]
  lines = [
    f"Wave2WaveNet, {result['channels']} channels, depth {result['depth']} "
    f"({s['flops_per_sample'] / 1e3:.0f} kFLOP per output sample), one core "
    f"(pinned, single-threaded XLA/BLAS)."
    + (
      " `lv2`: the export's LV2 plugin (`python -m ampspace.runtime.export --lv2`) in the "
      "project's LV2 host (Python over lilv), one run() per block."
      if any(r["impl"] == "lv2" for r in s["rows"])
      else ""
    )
    + (
      " `lv2_c`: the same plugin run by a C host over lilv (benchmarks/lv2_block_host.c), one "
      "run() per block with nothing between blocks, as a DAW's audio thread runs it; best of "
      "the repeats, so no per-block times."
      if any(r["impl"] == "lv2_c" for r in s["rows"])
      else ""
    ),
    "",
    "| block | impl | RTF | RTF (CPU time) | p99 block ms | deadline ms | late blocks | GFLOP/s |",
    "|---:|---|---:|---:|---:|---:|---:|---:|",
  ]
  for r in s["rows"]:
    lines.append(
      f"| {r['block']} | {r['impl']} | {r['rtf']:.2f}× | {r['rtf_cpu']:.2f}× | "
      + (f"{r['p99_block_ms']:.2f}" if r["p99_block_ms"] is not None else "—")
      + f" | {r['deadline_ms']:.2f} | "
      + (f"{100 * r['late_blocks']:.1f}%" if r["late_blocks"] is not None else "—")
      + f" | {r['gflops']:.1f} |"
    )
  o = result["offline"]
  lines += [
    "",
    f"Offline, {o['cores']} cores:",
    "",
    "| impl | RTF | RTF (CPU time) |",
    "|---|---:|---:|",
  ]
  for r in o["rows"]:
    lines.append(f"| {r['impl']} | {r['rtf']:.2f}× | {r['rtf_cpu']:.2f}× |")
  t = result["targets"]
  lv2 = t.get("lv2_streaming_64")
  lv2_text = (
    f"; the LV2 plugin at 64-sample blocks ≥ {lv2['target']}×, best of its hosts "
    f"(measured {lv2['measured']:.2f}×, {'met' if lv2['met'] else 'not met'})"
    if lv2
    else ""
  )
  lines += [
    "",
    f"Targets: streaming at 64-sample blocks ≥ {t['streaming_64']['target']}× "
    f"(best measured {t['streaming_64']['measured']:.2f}×, "
    f"{'met' if t['streaming_64']['met'] else 'not met'}; it needs "
    f"{t['streaming_64']['gflops_needed']:.0f} GFLOP/s on one core){lv2_text}; offline ≥ "
    f"{t['offline']['target']}× (best measured {t['offline']['measured']:.2f}×, "
    f"{'met' if t['offline']['met'] else 'not met'}; it needs "
    f"{t['offline']['gflops_needed']:.0f} GFLOP/s).",
  ]
  return "\n".join(lines) + "\n"


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--quick", action="store_true")
  p.add_argument("--seconds", type=float, default=3.0, help="audio streamed per block size")
  p.add_argument("--offline_seconds", type=float, default=10.0)
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--channels", type=int, default=16)
  p.add_argument("--depth", type=int, default=20)
  p.add_argument("--blocks", default=",".join(map(str, BLOCKS)))
  p.add_argument("--out", default=os.path.join(RESULTS, "streaming"))
  p.add_argument("--child", default="")
  p.add_argument("--child_out", default="")
  p.add_argument("--tmp", default="")
  args = p.parse_args()
  args.blocks = [int(b) for b in str(args.blocks).split(",") if b]
  if args.child:
    if args.child == "stream":
      os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    _child_main(args)
    return
  if args.quick:
    args.seconds, args.offline_seconds, args.repeats = 1.0, 3.0, 1
    args.blocks = [64, 512, 2048]
  import tempfile

  with tempfile.TemporaryDirectory() as tmp:
    args.tmp = tmp
    print("streaming (one core)...", file=sys.stderr)
    streaming = run_child("stream", args, ONE_CORE_ENV)
    print("offline (all cores)...", file=sys.stderr)
    # XLA keeps its thread pool; OpenBLAS threads only spin on these skinny matmuls
    offline = run_child("offline", args, {"TF_CPP_MIN_LOG_LEVEL": "3", "OPENBLAS_NUM_THREADS": "1"})
  fps = streaming["flops_per_sample"]
  best64 = max([r["rtf"] for r in streaming["rows"] if r["block"] == 64] or [0.0])
  lv2_64 = [
    r["rtf"] for r in streaming["rows"] if r["block"] == 64 and r["impl"] in ("lv2", "lv2_c")
  ]
  best_off = max(r["rtf"] for r in offline["rows"])
  targets = {
    "streaming_64": {
      "target": TARGETS["streaming_64"],
      "measured": best64,
      "met": best64 >= TARGETS["streaming_64"],
      "gflops_needed": fps * SR * TARGETS["streaming_64"] / 1e9,
    },
    "offline": {
      "target": TARGETS["offline"],
      "measured": best_off,
      "met": best_off >= TARGETS["offline"],
      "gflops_needed": fps * SR * TARGETS["offline"] / 1e9,
    },
  }
  if lv2_64:
    targets["lv2_streaming_64"] = {
      "target": TARGETS["lv2_streaming_64"],
      "measured": max(lv2_64),
      "met": max(lv2_64) >= TARGETS["lv2_streaming_64"],
      "gflops_needed": fps * SR * TARGETS["lv2_streaming_64"] / 1e9,
    }
  result = {
    "benchmark": "streaming",
    "channels": args.channels,
    "depth": args.depth,
    "quick": args.quick,
    "streaming": streaming,
    "offline": offline,
    "targets": targets,
    "machine": {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]},
  }
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out + ".json", "w") as f:
    json.dump(result, f, indent=2)
  with open(args.out + ".md", "w") as f:
    f.write(markdown(result))
  print(markdown(result))


if __name__ == "__main__":
  main()
