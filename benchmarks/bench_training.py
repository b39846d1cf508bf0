"""Training samples/s and inference real-time factor: our JAX models vs NAM's PyTorch WaveNet.

  bash benchmarks/setup_nam_venv.sh                 # once: .venv-nam with CPU torch + NAM
  .venv/bin/python benchmarks/bench_training.py     # writes benchmarks/results/training.{json,md}
  .venv/bin/python benchmarks/bench_training.py --quick   # a smoke run (small batch, few steps)

Measured in one run on one machine, each model in turn, with the same batch, window, optimizer
(Adam) and thread count:

- `ours_nam_standard`: LayerArrayWaveNet in NAM's "standard" layout (layer arrays of 16 then 8
  channels, kernel 3, dilations 1..512 each, receptive field 4093, tanh, summed-activation head
  scaled by 0.02), regression output, MSE — the like-for-like model;
- `ours_paper_256`: the paper's Wave2WaveNet (depth 20, 16 channels, 256 mu-law classes,
  class-weighted squared EMD, expected-value decoding), reported beside it;
- `nam_standard`: neural-amp-modeler's PyTorch WaveNet built from the same layer-array config
  through its Python API (`nam.models.wavenet.WaveNet.init_from_config`), trained by a plain
  PyTorch loop (forward, MSE, backward, Adam step; no Lightning overhead), run in `.venv-nam`
  by a subprocess of this script (`--nam-worker`) so torch never enters the project's venv.

Training samples/s = batch × window (output samples per step) / seconds per step, after
warm-up steps (compilation excluded). Inference real-time factor = seconds of 44.1 kHz audio
processed per second of compute (higher is faster), for one stream (batch 1) run in chunks of
`--chunk` output samples, each chunk carrying its receptive field (offline, as in evaluation).
Timings are medians over `--repeats` alternated rounds, so a busy shared machine penalises both
sides alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SAMPLE_RATE = 44100
NAM_DILATIONS = [2**i for i in range(10)]
NAM_STANDARD_CONFIG = {
  "layers_configs": [
    {
      "input_size": 1,
      "condition_size": 1,
      "channels": 16,
      "kernel_size": 3,
      "dilations": NAM_DILATIONS,
      "activation": "Tanh",
      "gated": False,
      "head": {"out_channels": 8, "kernel_size": 1, "bias": False},
    },
    {
      "input_size": 16,
      "condition_size": 1,
      "channels": 8,
      "kernel_size": 3,
      "dilations": NAM_DILATIONS,
      "activation": "Tanh",
      "gated": False,
      "head": {"out_channels": 1, "kernel_size": 1, "bias": True},
    },
  ],
  "head_scale": 0.02,
}


def _timed(fn, warmup: int, steps: int) -> float:
  """Median seconds of one call of `fn` (which must block until its result is ready)."""
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return statistics.median(times)


# ------------------------------------------------------------------------------ ours (JAX)
def jax_model(name: str, paper_channels: int = 16):
  from flax import nnx

  from ampspace import conditioning as cond
  from ampspace.models import get_model_cls

  if name == "ours_nam_standard":
    return get_model_cls("layer_array_wavenet")(cond.conditioning_dim(), rngs=nnx.Rngs(0)), "mse"
  if name == "ours_paper_256":
    return get_model_cls("wave2wavenet")(
      cond.conditioning_dim(),
      depth=20,
      channels=paper_channels,
      num_classes=256,
      rngs=nnx.Rngs(0),
    ), "emd_squared"
  raise ValueError(name)


def bench_jax(
  name: str,
  batch: int,
  window: int,
  chunk: int,
  warmup: int,
  steps: int,
  infer_seconds: float,
  paper_channels: int = 16,
) -> dict:
  import jax
  import jax.numpy as jnp
  import numpy as np
  import optax
  from flax import nnx

  from ampspace import conditioning as cond
  from ampspace import losses
  from ampspace.audio import mulaw

  model, loss_name = jax_model(name, paper_channels)
  graphdef, params = nnx.split(model)
  rf = model.receptive_field
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.uniform(-0.5, 0.5, (batch, window + rf - 1, 1)).astype(np.float32))
  c = jnp.asarray(rng.uniform(0, 1, (batch, cond.conditioning_dim())).astype(np.float32))
  target = jnp.tanh(3 * x[:, rf - 1 :, 0])
  classes = jnp.asarray(mulaw.quantize(np.asarray(target)))
  weights = jnp.ones(mulaw.NUM_CLASSES, jnp.float32)
  tx = optax.adam(1e-3)
  opt_state = tx.init(params)

  def loss_fn(p):
    out = nnx.merge(graphdef, p)(x, c)
    if loss_name == "mse":
      return losses.mse_loss(out[..., 0], target)
    return losses.emd_squared_loss(out, classes, weights)

  @jax.jit
  def train_step(p, s):
    loss, g = jax.value_and_grad(loss_fn)(p)
    u, s = tx.update(g, s, p)
    return optax.apply_updates(p, u), s, loss

  state = {"p": params, "s": opt_state}

  def one_step():
    state["p"], state["s"], loss = train_step(state["p"], state["s"])
    loss.block_until_ready()

  step_s = _timed(one_step, warmup, steps)

  @jax.jit
  def infer(p, xc, cc):
    out = nnx.merge(graphdef, p)(xc, cc)
    return out[..., 0] if out.shape[-1] == 1 else losses.expected_value_decode(out)

  n_chunks = max(1, int(infer_seconds * SAMPLE_RATE) // chunk)
  xs = rng.uniform(-0.5, 0.5, (n_chunks, 1, chunk + rf - 1, 1)).astype(np.float32)

  def run_stream():
    for i in range(n_chunks):
      y = infer(state["p"], xs[i], c[:1])
    y.block_until_ready()

  stream_s = _timed(run_stream, 1, max(1, steps // 2))
  return {
    "model": name,
    "framework": f"jax {jax.__version__}",
    "backend": jax.default_backend(),
    "device": str(jax.devices()[0].device_kind),
    "params": int(sum(v.size for v in jax.tree.leaves(params))),
    "receptive_field": rf,
    "batch": batch,
    "window": window,
    "train_step_s": step_s,
    "train_samples_per_s": batch * window / step_s,
    "infer_chunk": chunk,
    "infer_audio_s": n_chunks * chunk / SAMPLE_RATE,
    "infer_rtf": n_chunks * chunk / SAMPLE_RATE / stream_s,
  }


# ------------------------------------------------------------------------------ NAM (PyTorch)
def bench_nam(
  batch: int,
  window: int,
  chunk: int,
  warmup: int,
  steps: int,
  infer_seconds: float,
  threads: int,
  device: str = "cpu",
) -> dict:
  import numpy as np
  import torch
  from nam.models.wavenet import WaveNet

  import nam

  torch.manual_seed(0)
  torch.set_num_threads(threads)
  torch.set_num_interop_threads(1)
  if device == "cuda" and not torch.cuda.is_available():
    raise SystemExit("--device=cuda: this PyTorch sees no CUDA device")
  # A GPU runs asynchronously: a timed call ends only once the device has finished.
  sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
  model = WaveNet.init_from_config(json.loads(json.dumps(NAM_STANDARD_CONFIG))).to(device)
  rf = model.receptive_field
  rng = np.random.default_rng(0)
  x = torch.from_numpy(rng.uniform(-0.5, 0.5, (batch, window + rf - 1)).astype(np.float32))
  x = x.to(device)
  target = torch.tanh(3 * x[:, rf - 1 :])
  opt = torch.optim.Adam(model.parameters(), lr=1e-3)
  model.train()

  def one_step():
    opt.zero_grad(set_to_none=True)
    y = model(x, pad_start=False)
    loss = torch.nn.functional.mse_loss(y, target)
    loss.backward()
    opt.step()
    sync()

  step_s = _timed(one_step, warmup, steps)
  model.eval()
  n_chunks = max(1, int(infer_seconds * SAMPLE_RATE) // chunk)
  xs = torch.from_numpy(rng.uniform(-0.5, 0.5, (n_chunks, 1, chunk + rf - 1)).astype(np.float32))
  xs = xs.to(device)

  def run_stream():
    with torch.inference_mode():
      for i in range(n_chunks):
        model(xs[i], pad_start=False)
    sync()

  stream_s = _timed(run_stream, 1, max(1, steps // 2))
  return {
    "model": "nam_standard",
    "framework": f"torch {torch.__version__}, "
    f"neural-amp-modeler {getattr(nam, '__version__', '?')}",
    "backend": device,
    "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
    "params": int(sum(p.numel() for p in model.parameters())),
    "receptive_field": rf,
    "batch": batch,
    "window": window,
    "threads": torch.get_num_threads(),
    "train_step_s": step_s,
    "train_samples_per_s": batch * window / step_s,
    "infer_chunk": chunk,
    "infer_audio_s": n_chunks * chunk / SAMPLE_RATE,
    "infer_rtf": n_chunks * chunk / SAMPLE_RATE / stream_s,
  }


def run_nam_subprocess(args) -> dict:
  python = args.nam_python or os.path.join(REPO, args.nam_venv, "bin", "python")
  if not os.path.exists(python):
    raise SystemExit(f"{python}: not found; run `bash benchmarks/setup_nam_venv.sh` first")
  cmd = [
    python,
    os.path.abspath(__file__),
    "--nam-worker",
    f"--batch={args.batch}",
    f"--window={args.window}",
    f"--chunk={args.chunk}",
    f"--warmup={args.warmup}",
    f"--steps={args.steps}",
    f"--infer-seconds={args.infer_seconds}",
    f"--threads={args.threads}",
    f"--device={args.device}",
  ]
  r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
  if r.returncode:
    raise SystemExit(f"NAM worker failed:\n{r.stderr[-3000:]}")
  return json.loads(r.stdout.strip().splitlines()[-1])


def add_round_ratios(summary: dict, models: dict) -> None:
  """Ours / NAM within each alternated round: on a loaded machine the load shifts between
  rounds (both sides alike), so same-round ratios show how stable the median ratio is."""
  ours, nam = models["ours_nam_standard"]["rounds"], models["nam_standard"]["rounds"]
  for key, metric in (
    ("train_round_ratios", "train_samples_per_s"),
    ("infer_round_ratios", "infer_rtf"),
  ):
    summary[key] = [a[metric] / b[metric] for a, b in zip(ours, nam)]


def markdown(result: dict) -> str:
  s = result["summary"]
  lines = [
    "# Training and inference speed: Wave2WaveNet (JAX) vs NAM WaveNet (PyTorch)",
    "",
    f"Command: `{result['command']}`  ",
    f"Machine: {result['machine']}  ",
    f"Threads per framework: {result['threads']}.  ",
    "Devices: "
    + ", ".join(
      f"{n} on {r['backend']} ({r.get('device', r['backend'])})"
      for n, r in result["models"].items()
    )
    + ".  ",
    f"Batch {result['batch']} × window {result['window']}; inference chunks of "
    f"{result['chunk']} samples, batch 1; medians of {result['repeats']} alternated rounds.",
    "",
    "| model | framework | params | receptive field | train samples/s | inference RTF |",
    "|---|---|---:|---:|---:|---:|",
  ]
  for name in ("ours_nam_standard", "nam_standard", "ours_paper_256"):
    r = result["models"][name]
    lines.append(
      f"| {name} | {r['framework']} | {r['params']} | {r['receptive_field']} | "
      f"{r['train_samples_per_s']:.0f} | {r['infer_rtf']:.2f} |"
    )
  lines += [
    "",
    f"Like for like (ours as NAM standard / NAM standard): training "
    f"**{s['train_ratio']:.2f}×** (target ≥ 1.5×: "
    f"{'met' if s['train_target_met'] else 'not met'}), inference "
    f"**{s['infer_ratio']:.2f}×** (target ≥ 1×: "
    f"{'met' if s['infer_target_met'] else 'not met'}).",
    "Same-round ratios (ours / NAM): training "
    + ", ".join(f"{x:.2f}×" for x in s.get("train_round_ratios", []))
    + "; inference "
    + ", ".join(f"{x:.2f}×" for x in s.get("infer_round_ratios", []))
    + ".",
    f"Paper model (256-way, EMD², {result.get('paper_channels', 16)} channels) vs NAM standard: training {s['paper_train_ratio']:.2f}×,"
    f" inference {s['paper_infer_ratio']:.2f}×.",
    "",
  ]
  return "\n".join(lines)


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--batch", type=int, default=16)
  p.add_argument("--window", type=int, default=8192, help="output samples per example")
  p.add_argument("--chunk", type=int, default=8192, help="inference chunk (output samples)")
  p.add_argument("--warmup", type=int, default=2)
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--repeats", type=int, default=2, help="alternated rounds; medians reported")
  p.add_argument("--infer-seconds", type=float, default=5.0)
  p.add_argument(
    "--threads",
    type=int,
    default=1,
    help="CPU threads for both frameworks (1: robust on a shared, loaded machine, "
    "where multi-threaded kernels of both wait on descheduled threads)",
  )
  p.add_argument("--nam-venv", default=".venv-nam")
  p.add_argument(
    "--nam-python",
    default="",
    help="the Python that holds torch and NAM (default: NAM_VENV/bin/python); on a GPU "
    "image, its own python3",
  )
  p.add_argument(
    "--device",
    choices=("cpu", "cuda"),
    default="cpu",
    help="where NAM's PyTorch model runs; ours runs on JAX's default backend (a GPU if "
    "JAX sees one)",
  )
  p.add_argument(
    "--paper-channels",
    type=int,
    default=16,
    help="channels of the paper's 256-way model (16: the CPU configs; 64: paper scale)",
  )
  p.add_argument("--out", default=os.path.join(HERE, "results"))
  p.add_argument("--quick", action="store_true", help="smoke run: batch 2, window 2048")
  p.add_argument("--nam-worker", action="store_true", help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.quick:
    args.batch, args.window, args.chunk, args.steps, args.repeats = 2, 2048, 2048, 2, 1
    args.infer_seconds = 0.5
  if args.nam_worker:
    print(
      json.dumps(
        bench_nam(
          args.batch,
          args.window,
          args.chunk,
          args.warmup,
          args.steps,
          args.infer_seconds,
          args.threads,
          args.device,
        )
      )
    )
    return
  sys.path.insert(0, REPO)
  from ampspace.files import atomic_write  # here: nam_recipe.py imports this module without it

  if (
    args.threads == 1 and args.device == "cpu"
  ):  # before jax is imported: XLA's CPU client reads these at start-up
    os.environ["XLA_FLAGS"] = (
      os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen="
      "false intra_op_parallelism_threads=1"
    ).strip()
  rounds: dict[str, list[dict]] = {
    "ours_nam_standard": [],
    "nam_standard": [],
    "ours_paper_256": [],
  }
  for rep in range(args.repeats):
    for name in rounds:
      print(f"[bench] round {rep + 1}/{args.repeats}: {name}", file=sys.stderr, flush=True)
      if name == "nam_standard":
        rounds[name].append(run_nam_subprocess(args))
      else:
        rounds[name].append(
          bench_jax(
            name,
            args.batch,
            args.window,
            args.chunk,
            args.warmup,
            args.steps,
            args.infer_seconds,
            args.paper_channels,
          )
        )
  models = {}
  for name, rs in rounds.items():
    m = dict(rs[0])
    for key in ("train_step_s", "train_samples_per_s", "infer_rtf"):
      m[key] = statistics.median(r[key] for r in rs)
    m["rounds"] = [{k: r[k] for k in ("train_samples_per_s", "infer_rtf")} for r in rs]
    models[name] = m
  ours, nam, paper = models["ours_nam_standard"], models["nam_standard"], models["ours_paper_256"]
  summary = {
    "train_ratio": ours["train_samples_per_s"] / nam["train_samples_per_s"],
    "infer_ratio": ours["infer_rtf"] / nam["infer_rtf"],
    "paper_train_ratio": paper["train_samples_per_s"] / nam["train_samples_per_s"],
    "paper_infer_ratio": paper["infer_rtf"] / nam["infer_rtf"],
  }
  add_round_ratios(summary, models)
  summary["train_target_met"] = summary["train_ratio"] >= 1.5
  summary["infer_target_met"] = summary["infer_ratio"] >= 1.0
  result = {
    "command": "python benchmarks/bench_training.py " + " ".join(sys.argv[1:]),
    "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
    f"{platform.system()} {platform.release()}",
    "batch": args.batch,
    "window": args.window,
    "chunk": args.chunk,
    "repeats": args.repeats,
    "threads": args.threads,
    "device": args.device,
    "paper_channels": args.paper_channels,
    "xla_flags": os.environ.get("XLA_FLAGS", ""),
    "models": models,
    "summary": summary,
  }
  os.makedirs(args.out, exist_ok=True)
  for ext, text in (("json", json.dumps(result, indent=2)), ("md", markdown(result))):
    atomic_write(os.path.join(args.out, f"training.{ext}"), text)
  print(markdown(result))


if __name__ == "__main__":
  main()
