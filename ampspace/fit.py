"""`python -m ampspace.fit --input=input.wav --output=output.wav --workdir=DIR`: one capture
of one setting to a model and its test ESR.

The guitarist's everyday job: a DI file re-amped through a device at one setting. One command
takes the pair to a trained model and scores it on held-out audio:

  1. reads both WAVs (mono, 44.1 kHz, the same rate and about the same length; no resampling
     and no downmixing here: each mismatch ends with one line naming the file). `--latency=N`
     (samples, from your interface or its annotation) moves the output N samples earlier
     first; latency is never estimated from the music;
  2. cuts the pair into `--segment_seconds` segments and holds out test audio: the separate
     `--test_input/--test_output` pair, or the last `--test_fraction` of the capture (whole
     segments); the segments just before the test part are the validation split. Segments
     where the DI or the output is silent (about -60 dBFS) are left out. The result is a
     NAM-layout capture folder, DIR/capture/ (`device.yaml`; `train/`, `validation/`, `test/`,
     each pinned by its `capture.yaml`; 16-bit `input.wav`/`output.wav` per segment), written
     whole or not at all, and reused by a later call on the same files and options;
  3. builds `amp_space/real` from it into DIR/tfds;
  4. trains `configs/capture.py:<--model>` for `--minutes` of wall clock into DIR/model
     (`nam_layout`, `paper`, `lstm`, or `finetune` with `--init_from=WORKDIR_OR.nam`);
  5. evaluates on the test split (DIR/model/eval/test/: metrics, listening WAVs) and computes
     the pooled test ESR, Σ error² / Σ target² over every test segment, plain (as NAM reports
     it) and pre-emphasised (1 - 0.85 z^-1), into DIR/fit.json;
  6. with `--nam=OUT.nam` (`--model=nam_layout` only), exports the model as a
     neural-amp-modeler file with `ampspace.runtime.export`.

`--minutes` is the total training time of the workdir: the same command run again returns
the stored result at once; after an interruption it resumes from the last checkpoint for the
time left, and a larger `--minutes` trains on from where the last call stopped.

COMMAND:
  python -m ampspace.fit --input=input.wav --output=output.wav --workdir=runs/my_amp \\
      [--model=nam_layout] [--minutes=5] [--device=my_amp] [--knobs=gain=6,tone=4] \\
      [--latency=0] [--test_input=T_IN.wav --test_output=T_OUT.wav] [--test_fraction=0.15] \\
      [--segment_seconds=5] [--nam=OUT.nam] [--init_from=WORKDIR_OR.nam]
EXPECTED: progress on stderr, then one line on stdout:
  model: runs/my_amp/model  test ESR <ESR> (pre-emphasised <ESR>) on <seconds> s of held-out audio
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys

import numpy as np
import soundfile as sf
import yaml
from absl import app, flags, logging

from ampspace import SAMPLE_RATE, nam_format, trainers
from ampspace import conditioning as cond
from ampspace.audio.metrics import pre_emphasis
from ampspace.audio.wav_io import read_wav
from ampspace.config_files import load_config
from ampspace.errors import AmpSpaceError, parse_flags_one_line_errors, report_errors
from ampspace.files import sha256_file, write_json_atomic

# The modules that load jax, flax, Grain or TFDS (checkpoints, evaluate, runtime.*, data.*)
# are imported where used, so that importing this command (--help, a flag error) loads none.

MODELS = ("nam_layout", "paper", "finetune", "lstm")
SPLITS = ("train", "validation", "test")
VALIDATION_FRACTION = 0.1
MAX_LENGTH_DIFFERENCE = SAMPLE_RATE  # 1 s: more, and the files are not one re-amp
MIN_SEGMENT_SECONDS = 1.0
# The dataset's ingest (tfds_ampspace/amp_space/ingest.py) rejects a clip whose DI or output is
# silent (RMS at or below -60 dBFS) or clipped (over 1% of samples at |x| >= 0.999). Silent
# segments are left out here, with a little margin for the 16-bit files; clipping is an error.
SILENCE_DBFS = -59.5
CLIP_LEVEL = 0.999
MAX_CLIPPED_FRACTION = 0.01
SUBTYPE = "PCM_16"
CAPTURE_FILE = "fit_capture.json"  # in DIR/capture: what the folder was made from
MODEL_FILE = "fit_model.json"  # in DIR/model: the model's recipe and its training time
RESULT_FILE = "fit.json"


# ---------------------------------------------------------------- pure pieces
def segment_bounds(n: int, seg: int) -> tuple[tuple[int, int], ...]:
  """[0, n) cut into pieces of `seg` samples; a remainder of at least half a segment is a
  segment of its own, a shorter one joins the last piece (nothing is dropped)."""
  if seg <= 0:
    raise AmpSpaceError(f"segment length must be positive, got {seg} samples")
  if n <= 0:
    return ()
  k, rest = divmod(n, seg)
  bounds = [(i * seg, (i + 1) * seg) for i in range(k)]
  if rest and (not bounds or 2 * rest >= seg):
    bounds.append((k * seg, n))
  elif rest:
    bounds[-1] = (bounds[-1][0], n)
  return tuple(bounds)


def split_segments(
  n_segments: int, test_fraction: float, validation_fraction: float = VALIDATION_FRACTION
) -> tuple[str, ...]:
  """The split of each of `n_segments` consecutive segments: train first, then validation
  (10% of the segments, at least one), then test (the last `test_fraction`, at least one; none
  when `test_fraction` is 0: the test audio is a separate pair)."""
  if not 0.0 <= test_fraction < 1.0:
    raise AmpSpaceError(f"--test_fraction must be in [0, 1), got {test_fraction}")
  n_test = max(1, round(test_fraction * n_segments)) if test_fraction > 0 else 0
  n_val = max(1, round(validation_fraction * n_segments))
  n_train = n_segments - n_val - n_test
  if n_train < 1:
    parts = "train, validation and test" if n_test else "train and validation"
    raise AmpSpaceError(
      f"the capture gives {n_segments} usable segment(s); it needs at least "
      f"{n_val + n_test + 1} ({parts}): record a longer capture or lower "
      f"--segment_seconds"
    )
  return ("train",) * n_train + ("validation",) * n_val + ("test",) * n_test


def shift_earlier(output: np.ndarray, latency: int) -> np.ndarray:
  """The output moved `latency` samples earlier (its first `latency` samples dropped): what
  the interface's latency delayed lines up with the DI again."""
  if latency < 0:
    raise AmpSpaceError(f"--latency must be >= 0 samples, got {latency}")
  if latency >= len(output):
    raise AmpSpaceError(
      f"--latency={latency} samples is longer than the output ({len(output)} samples)"
    )
  return output[latency:]


def parse_knobs(text: str) -> dict[str, float]:
  """'gain=6,tone=4' -> {'gain': 6.0, 'tone': 4.0}: dial values (0..10), each knob a name of
  the conditioning vocabulary (or an alias of one)."""
  from ampspace.runtime.export import parse_assignments

  knobs = parse_assignments(text, "knobs", True)
  for name, value in knobs.items():
    if cond.canonical_knob(name) not in cond.KNOB_VOCAB:
      raise AmpSpaceError(
        f"--knobs: {name!r} is not a knob name the models know; use one of "
        f"{', '.join(cond.KNOB_VOCAB)}"
      )
    if not 0.0 <= value <= 10.0:
      raise AmpSpaceError(f"--knobs: {name}={value:g} is outside the dial's 0..10")
  return knobs


def level_problem(x: np.ndarray) -> tuple[str, float] | None:
  """('silent', dBFS) or ('clipped', fraction) where the dataset's ingest would reject `x`."""
  rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0
  if rms <= 10 ** (SILENCE_DBFS / 20):
    return "silent", 20 * np.log10(rms + 1e-20)
  clipped = float(np.mean(np.abs(x) >= CLIP_LEVEL))
  if clipped > MAX_CLIPPED_FRACTION:
    return "clipped", clipped
  return None


def pooled_esr(pairs) -> tuple[float, float]:
  """(plain, pre-emphasised) ESR over all (target, prediction) pairs together: Σ error² /
  Σ target², each segment pre-emphasised on its own."""
  sse = sst = sse_pre = sst_pre = 0.0
  for target, pred in pairs:
    t, p = np.asarray(target, np.float64), np.asarray(pred, np.float64)
    sse += float(np.sum((t - p) ** 2))
    sst += float(np.sum(t**2))
    tp, pp = pre_emphasis(t), pre_emphasis(p)
    sse_pre += float(np.sum((tp - pp) ** 2))
    sst_pre += float(np.sum(tp**2))
  if sst <= 0 or sst_pre <= 0:
    raise AmpSpaceError("the test audio is silent: no ESR to compute")
  return sse / sst, sse_pre / sst_pre


def format_esr(x: float) -> str:
  return f"{x:.4f}" if x >= 1e-3 else f"{x:.2e}"


def final_line(model_dir: str, result: dict) -> str:
  return (
    f"model: {model_dir}  test ESR {format_esr(result['test_esr'])} (pre-emphasised "
    f"{format_esr(result['test_esr_pre_emphasised'])}) on "
    f"{result['test_seconds']:.1f} s of held-out audio"
  )


# ---------------------------------------------------------------- reading the pair
def read_audio(path: str, flag: str) -> tuple[np.ndarray, int]:
  """A mono file as float32 and its rate; one-line errors naming the flag and the file."""
  where = f"--{flag}={path}"
  if not os.path.isfile(path):
    raise AmpSpaceError(f"{where}: file not found")
  try:
    info = sf.info(path)
  except Exception as e:  # soundfile raises LibsndfileError / RuntimeError variants
    raise AmpSpaceError(f"{where}: cannot read audio ({str(e).splitlines()[0]})") from None
  if info.channels != 1:
    raise AmpSpaceError(
      f"{where}: has {info.channels} channels; a capture is mono: downmix it "
      f"(or export the one channel you recorded) and try again"
    )
  try:
    return read_wav(path, expected_sample_rate=None)
  except AmpSpaceError as e:
    raise AmpSpaceError(f"--{flag}={e}") from None


def read_pair(
  input_path: str, output_path: str, latency: int, *, flags_: tuple[str, str] = ("input", "output")
) -> tuple[np.ndarray, np.ndarray]:
  """The DI and the device output, the output `latency` samples earlier, trimmed to one
  length (they may differ by up to 1 s)."""
  fi, fo = flags_
  x, sr_x = read_audio(input_path, fi)
  y, sr_y = read_audio(output_path, fo)
  if sr_x != sr_y:
    raise AmpSpaceError(
      f"--{fo}={output_path}: sample rate {sr_y} Hz, but --{fi}={input_path} "
      f"is {sr_x} Hz; both must be {SAMPLE_RATE} Hz"
    )
  if sr_x != SAMPLE_RATE:
    raise AmpSpaceError(
      f"--{fi}={input_path}: sample rate {sr_x} Hz; fit needs {SAMPLE_RATE} "
      f"Hz and does not resample: convert both files first"
    )
  y = shift_earlier(y, latency)
  if abs(len(x) - len(y)) > MAX_LENGTH_DIFFERENCE:
    shifted = f" after the {latency}-sample latency shift" if latency else ""
    raise AmpSpaceError(
      f"--{fo}={output_path}: {len(y) / SAMPLE_RATE:.2f} s long{shifted}, "
      f"but --{fi}={input_path} is {len(x) / SAMPLE_RATE:.2f} s: they differ "
      f"by more than 1 s, so the output is not the re-amp of this input"
    )
  n = min(len(x), len(y))
  return x[:n], y[:n]


# ---------------------------------------------------------------- the capture folder
@dataclasses.dataclass(frozen=True)
class Segment:
  split: str
  name: str  # its folder: where in which recording it came from
  di: np.ndarray
  out: np.ndarray


def _check_clipping(seg_di, seg_out, paths: tuple[str, str], a: int, b: int) -> None:
  for x, path in ((seg_di, paths[0]), (seg_out, paths[1])):
    problem = level_problem(x)
    if problem and problem[0] == "clipped":
      raise AmpSpaceError(
        f"{path}: {100 * problem[1]:.1f}% of samples clipped between "
        f"{a / SAMPLE_RATE:.1f} s and {b / SAMPLE_RATE:.1f} s (the dataset "
        f"allows {100 * MAX_CLIPPED_FRACTION:g}%): record it at a lower level"
      )


def plan_segments(
  x,
  y,
  seg: int,
  test_fraction: float,
  test_pair=None,
  *,
  paths=("input.wav", "output.wav"),
  test_paths=("", ""),
) -> tuple[list, list]:
  """(segments, names of the silent ones left out): the capture cut into `seg`-sample
  segments, the last `test_fraction` of them test (or every segment of `test_pair`, a (DI,
  output) tuple, test), the ones before the test part validation."""
  silent = []

  def usable(di, out, prefix, p):
    found = []
    for k, (a, b) in enumerate(segment_bounds(len(di), seg)):
      name = f"{prefix}{k:03d}_{a / SAMPLE_RATE:.1f}s"
      _check_clipping(di[a:b], out[a:b], p, a, b)
      if level_problem(di[a:b]) or level_problem(out[a:b]):
        silent.append(name)
      else:
        found.append((name, di[a:b], out[a:b]))
    return found

  main = usable(x, y, "seg", paths)
  splits = split_segments(len(main), 0.0 if test_pair is not None else test_fraction)
  kept = [Segment(s, name, di, out) for s, (name, di, out) in zip(splits, main)]
  if test_pair is not None:
    test = usable(*test_pair, "test", test_paths)
    if not test:
      raise AmpSpaceError(f"{test_paths[0]}: every segment of the test pair is silent")
    kept += [Segment("test", name, di, out) for name, di, out in test]
  return kept, silent


def write_capture(
  folder: str, segments: list[Segment], *, device: str, knobs: dict, summary: dict
) -> None:
  """Writes the NAM-layout capture folder whole, or not at all: in `folder`.partial beside
  it, renamed when complete (a failure removes the partial folder)."""
  tmp = folder.rstrip("/") + ".partial"
  shutil.rmtree(tmp, ignore_errors=True)
  try:
    os.makedirs(tmp)
    with open(os.path.join(tmp, "device.yaml"), "w") as f:
      yaml.safe_dump(
        {"device": device, "device_type": "other", "source": "real", "knobs": dict(knobs)},
        f,
        sort_keys=False,
      )
    for split in SPLITS:
      if not any(s.split == split for s in segments):
        continue
      os.makedirs(os.path.join(tmp, split))
      with open(os.path.join(tmp, split, "capture.yaml"), "w") as f:
        yaml.safe_dump({"split": split}, f)
    for s in segments:
      where = os.path.join(tmp, s.split, s.name)
      os.makedirs(where)
      sf.write(os.path.join(where, "input.wav"), np.clip(s.di, -1, 1), SAMPLE_RATE, subtype=SUBTYPE)
      sf.write(
        os.path.join(where, "output.wav"), np.clip(s.out, -1, 1), SAMPLE_RATE, subtype=SUBTYPE
      )
    with open(os.path.join(tmp, CAPTURE_FILE), "w") as f:
      json.dump(summary, f, indent=2)
    os.replace(tmp, folder)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise


def capture_identity(opts: dict) -> dict:
  """What the capture folder is made from: the files' bytes and the options that cut it."""
  files = {
    k: sha256_file(opts[k]) if opts.get(k) else None
    for k in ("input", "output", "test_input", "test_output")
  }
  return {
    **{f"{k}_sha256": v for k, v in files.items()},
    "latency": int(opts["latency"]),
    "segment_seconds": float(opts["segment_seconds"]),
    "test_fraction": None if opts.get("test_input") else float(opts["test_fraction"]),
    "device": opts["device"],
    "knobs": dict(opts["knobs"]),
  }


def prepare_capture(workdir: str, opts: dict) -> dict:
  """DIR/capture for these files and options: made, or reused when an earlier call made it
  from the same ones; the summary stored with it."""
  folder = os.path.join(workdir, "capture")
  identity = capture_identity(opts)
  if os.path.exists(folder):
    path = os.path.join(folder, CAPTURE_FILE)
    if not os.path.isfile(path):
      raise AmpSpaceError(
        f"{folder}: exists but is not a capture folder ampspace.fit wrote; pick another --workdir"
      )
    with open(path) as f:
      stored = json.load(f)
    differ = sorted(
      k
      for k in set(identity) | set(stored["identity"])
      if identity.get(k) != stored["identity"].get(k)
    )
    if differ:
      raise AmpSpaceError(
        f"--workdir={workdir}: holds a fit of other audio or options "
        f"({', '.join(differ)} differ); pick another --workdir"
      )
    return stored
  seg = int(round(opts["segment_seconds"] * SAMPLE_RATE))
  x, y = read_pair(opts["input"], opts["output"], opts["latency"])
  test_pair = None
  if opts.get("test_input"):
    test_pair = read_pair(
      opts["test_input"], opts["test_output"], opts["latency"], flags_=("test_input", "test_output")
    )
  segments, silent = plan_segments(
    x,
    y,
    seg,
    opts["test_fraction"],
    test_pair,
    paths=(opts["input"], opts["output"]),
    test_paths=(opts.get("test_input") or "", opts.get("test_output") or ""),
  )
  seconds = {
    s: round(sum(len(g.di) for g in segments if g.split == s) / SAMPLE_RATE, 2) for s in SPLITS
  }
  summary = {
    "identity": identity,
    "segments": {s: sum(g.split == s for g in segments) for s in SPLITS},
    "seconds": seconds,
    "left_out_silent": silent,
  }
  os.makedirs(workdir, exist_ok=True)
  write_capture(folder, segments, device=opts["device"], knobs=opts["knobs"], summary=summary)
  return summary


# ---------------------------------------------------------------- dataset, model, scores
def build_dataset(capture_dir: str, data_dir: str) -> None:
  """amp_space/real from the capture folder (benchmarks/bench_accuracy.py builds with it too)."""
  import tensorflow_datasets as tfds

  import tfds_ampspace  # noqa: F401  (registers amp_space)

  builder = tfds.builder("amp_space/real", data_dir=data_dir, file_format="array_record")
  if not builder.is_prepared():
    builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=os.path.abspath(capture_dir))
    )


def fit_config(model: str, init_from: str, data_dir: str):
  """configs/capture.py's recipe `model` on this workdir's dataset. `init_from` (a training
  workdir or a `.nam` file) also gives the architecture: a workdir its model and loss, a
  `.nam` file a layer_array_wavenet of its layout (with the nam_layout recipe)."""
  if model not in MODELS:
    raise AmpSpaceError(f"--model={model}: use one of {', '.join(MODELS)}")
  if model == "finetune" and not init_from:
    raise AmpSpaceError(
      "--model=finetune needs --init_from=WORKDIR_OR.nam (a pretrained "
      "training workdir or a neural-amp-modeler capture)"
    )
  if init_from:
    if nam_format.is_nam_file(init_from):
      if model not in ("nam_layout", "finetune"):
        raise AmpSpaceError(
          f"--init_from={init_from}: a .nam file holds a NAM-layout WaveNet; "
          f"use --model=nam_layout (or finetune), not {model}"
        )
      config = load_config("capture", "nam_layout")
      config.model = {
        "name": "layer_array_wavenet",
        **nam_format.read_nam(init_from).model_kwargs(),
      }
      config.optimizer.learning_rate = 1e-3  # fine-tuning, as the finetune recipe
    else:
      from ampspace import checkpoints

      source = checkpoints.load_config(init_from)
      config = load_config("capture", model)
      config.model = source.model.to_dict()
      config.loss = source.loss.to_dict()
    config.init_from = os.path.abspath(init_from)
  else:
    config = load_config("capture", model)
  config.dataset.data_dir = os.path.abspath(data_dir)
  config.eval.max_examples = 0  # every test segment
  return config


def _has_checkpoint(model_dir: str) -> bool:
  ckpt = os.path.join(model_dir, "checkpoints")
  return os.path.isdir(ckpt) and any(n.isdigit() for n in os.listdir(ckpt))


def train(config, model_dir: str, minutes: float, recipe: dict) -> dict:
  """Trains until the workdir's model has had `minutes` of wall clock in all (resuming from
  its checkpoint); {steps or None, train_seconds, preempted}."""
  path = os.path.join(model_dir, MODEL_FILE)
  state = {**recipe, "train_seconds": 0.0}
  if os.path.isfile(path):
    with open(path) as f:
      state = json.load(f)
    if {k: state.get(k) for k in recipe} != recipe:
      raise AmpSpaceError(
        f"{model_dir}: holds a model of another recipe "
        f"(--model={state.get('model')}, --init_from="
        f"{state.get('init_from') or '(none)'}); pick another --workdir"
      )
  elif _has_checkpoint(model_dir):
    raise AmpSpaceError(
      f"{model_dir}: holds checkpoints ampspace.fit did not write; pick another --workdir"
    )
  if not _has_checkpoint(model_dir):
    state["train_seconds"] = 0.0
  left = 60.0 * minutes - state["train_seconds"]
  if left < 1.0:
    return {"steps": None, "train_seconds": state["train_seconds"], "preempted": False}
  config.train.max_seconds = left
  config.train.snapshot_seconds = (left,)
  os.makedirs(model_dir, exist_ok=True)
  write_json_atomic(path, state, indent=2)
  result = trainers.get_trainer(config.trainer)(config, model_dir)
  state["train_seconds"] = round(state["train_seconds"] + result["train_seconds"], 2)
  write_json_atomic(path, state, indent=2)
  return {
    "steps": result["steps"],
    "train_seconds": state["train_seconds"],
    "preempted": bool(result.get("preempted")),
  }


def held_out_scores(model_dir: str, config) -> dict:
  """Pooled test ESR (plain and pre-emphasised) of the latest checkpoint over every test
  segment, the seconds of test audio, the step, and the conditioning the model trained on."""
  from ampspace import checkpoints
  from ampspace.data import pipeline, sources
  from ampspace.runtime.inference import make_apply, run_clip

  restored = checkpoints.restore_model(model_dir, config)
  graphdef, params, step, context = (
    restored.graphdef,
    restored.params,
    restored.step,
    restored.context,
  )
  apply = make_apply(graphdef, params, config.loss.get("decode", "expected_value"))
  source = sources.open_split(config.dataset, "test")
  pairs, seconds, c = [], 0.0, None
  for i in range(len(source)):
    record = source[i]
    di = pipeline.decode_audio(record, "di")
    c = pipeline.conditioning_of(record)
    pairs.append((pipeline.decode_audio(record, "output"), run_clip(apply, di, c, context)))
    seconds += len(di) / SAMPLE_RATE
  esr, esr_pre = pooled_esr(pairs)
  return {
    "test_esr": esr,
    "test_esr_pre_emphasised": esr_pre,
    "test_seconds": round(seconds, 2),
    "test_segments": len(pairs),
    "step": int(step),
    "conditioning": c,
  }


def capture_conditioning(device: str, knobs: dict) -> np.ndarray:
  """The conditioning vector the dataset gives the capture's clips (device.yaml's device and
  dial values, no attributes), as the builder computes it."""
  return cond.conditioning_for(device, knobs, zoo=False, where="--knobs")


def nam_export_settings(device: str, knobs: dict, trained_c: np.ndarray) -> dict:
  """ampspace.runtime.export.export_to_nam's device/knobs that give the conditioning the model was
  trained with (the .nam file has no knobs: that setting is folded into its weights)."""
  from ampspace.runtime import export

  name = device if device in cond.DEVICE_VOCAB and device != "other" else None
  c = export.setting_conditioning({"device": name or "other", "knobs": knobs, "attributes": {}})
  if c.shape != trained_c.shape or not np.allclose(c, trained_c, atol=1e-6):
    raise AmpSpaceError(
      f"--nam with --device={device}: that name is a device of the zoo, whose "
      f"knob ranges and defaults would give the .nam file another setting than "
      f"the capture's; use another --device name"
    )
  return {"device": name, "knobs": dict(knobs)}


def export_nam(model_dir: str, path: str, device: str, knobs: dict, trained_c) -> str:
  """The model as a `.nam` file, written by ampspace.runtime.export at the setting it trained on."""
  from ampspace.runtime import export

  settings = nam_export_settings(device, knobs, np.asarray(trained_c, np.float32))
  return export.export_to_nam(model_dir, path, **settings)


# ---------------------------------------------------------------- the whole path
def stage(title: str) -> None:
  print(f"=== {title}", file=sys.stderr, flush=True)


def check_options(opts: dict) -> None:
  """One-line errors for options that are wrong whatever the audio."""
  if not opts.get("input") or not opts.get("output") or not opts.get("workdir"):
    raise AmpSpaceError("--input, --output and --workdir are required")
  workdir = opts["workdir"]
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise AmpSpaceError(f"--workdir={workdir}: exists and is a file, expected a folder")
  if not str(opts.get("device") or "").strip():
    raise AmpSpaceError("--device must name the device (any name, e.g. my_amp)")
  if bool(opts.get("test_input")) != bool(opts.get("test_output")):
    raise AmpSpaceError("--test_input and --test_output go together")
  if opts["minutes"] <= 0:
    raise AmpSpaceError(f"--minutes must be positive, got {opts['minutes']}")
  if opts["segment_seconds"] < MIN_SEGMENT_SECONDS:
    raise AmpSpaceError(
      f"--segment_seconds must be at least {MIN_SEGMENT_SECONDS:g}, got {opts['segment_seconds']}"
    )
  if not 0.0 < opts["test_fraction"] < 1.0:
    raise AmpSpaceError(f"--test_fraction must be between 0 and 1, got {opts['test_fraction']}")
  if opts["latency"] < 0 or opts["latency"] > SAMPLE_RATE:
    raise AmpSpaceError(
      f"--latency={opts['latency']}: give the interface's latency in samples, 0..{SAMPLE_RATE}"
    )
  if opts.get("nam") and not opts["nam"].lower().endswith(".nam"):
    raise AmpSpaceError(f"--nam={opts['nam']}: the file name must end in .nam")
  for key in ("input", "output", "test_input", "test_output"):
    if opts.get(key) and not os.path.isfile(opts[key]):
      raise AmpSpaceError(f"--{key}={opts[key]}: file not found")


def fit(opts: dict) -> dict:
  """The command's whole path (see the module doc) for options named as its flags (`knobs`
  as text or a mapping); returns what DIR/fit.json holds."""
  check_options(opts)
  knobs = opts.get("knobs") or ""
  opts = {
    **opts,
    "knobs": parse_knobs(knobs)
    if isinstance(knobs, str)
    else parse_knobs(",".join(f"{k}={v}" for k, v in knobs.items())),
  }
  workdir = opts["workdir"]
  data_dir = os.path.join(workdir, "tfds")
  model_dir = os.path.join(workdir, "model")
  config = fit_config(opts["model"], opts.get("init_from") or "", data_dir)
  if opts.get("nam"):
    if config.model.name != "layer_array_wavenet":
      raise AmpSpaceError(
        f"--nam: only --model=nam_layout maps to NAM's .nam format (a "
        f"NAM-layout WaveNet); --model={opts['model']} does not"
      )
    nam_export_settings(
      opts["device"], opts["knobs"], capture_conditioning(opts["device"], opts["knobs"])
    )
  steps = 5 if opts.get("nam") else 4

  stage(f"1/{steps} capture folder -> {os.path.join(workdir, 'capture')}")
  capture = prepare_capture(workdir, opts)
  seg = capture["segments"]
  print(
    f"segments of {opts['segment_seconds']:g} s: {seg['train']} train, "
    f"{seg['validation']} validation, {seg['test']} test"
    + (
      f"; {len(capture['left_out_silent'])} silent ones left out"
      if capture["left_out_silent"]
      else ""
    ),
    file=sys.stderr,
    flush=True,
  )
  options = json.loads(json.dumps({k: v for k, v in opts.items() if k != "nam"}))
  result_path = os.path.join(workdir, RESULT_FILE)
  result = None
  if os.path.isfile(result_path) and _has_checkpoint(model_dir):
    with open(result_path) as f:
      stored = json.load(f)
    if stored.get("options") == options:  # the same command again: its result
      stage("done before: the stored result")
      result = stored
  if result is None:
    stage(f"2/{steps} build amp_space/real -> {data_dir}")
    build_dataset(os.path.join(workdir, "capture"), data_dir)
    stage(
      f"3/{steps} train configs/capture.py:{opts['model']} for {opts['minutes']:g} min "
      f"-> {model_dir}"
    )
    recipe = {
      "model": opts["model"],
      "init_from": os.path.abspath(opts["init_from"]) if opts.get("init_from") else "",
    }
    trained = train(config, model_dir, opts["minutes"], recipe)
    if trained["preempted"]:
      print(f"preempted at step {trained['steps']}; rerun the same command to resume", flush=True)
      sys.exit(143)
    stage(f"4/{steps} evaluate on the held-out test split")
    from ampspace import evaluate

    ev = evaluate.evaluate(model_dir, split="test", config=config)
    scores = held_out_scores(model_dir, config)
    result = {
      "model": model_dir,
      "test_esr": scores["test_esr"],
      "test_esr_pre_emphasised": scores["test_esr_pre_emphasised"],
      "test_seconds": scores["test_seconds"],
      "test_segments": scores["test_segments"],
      "steps": scores["step"],
      "train_seconds": trained["train_seconds"],
      "evaluate": ev["groups"]["all"],
      "eval_dir": os.path.join(model_dir, "eval", "test"),
      "capture": os.path.join(workdir, "capture"),
      "dataset": data_dir,
      "segments": capture["segments"],
      "seconds": capture["seconds"],
      "left_out_silent": capture["left_out_silent"],
      "options": options,
      "conditioning": [float(v) for v in scores["conditioning"]],
    }
    write_json_atomic(result_path, result, indent=2)
  if opts.get("nam"):
    stage(f"5/{steps} export {opts['nam']}")
    path = export_nam(model_dir, opts["nam"], opts["device"], opts["knobs"], result["conditioning"])
    print(f"wrote {path}", flush=True)
    result = {**result, "nam": path}
    write_json_atomic(result_path, result, indent=2)
  return result


FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defined on demand, so that importing this module (tests) defines no flags."""
  flags.DEFINE_string("input", None, "The DI file you re-amped (mono WAV, 44.1 kHz).")
  flags.DEFINE_string("output", None, "What the device recorded from it (mono WAV, 44.1 kHz).")
  flags.DEFINE_string("workdir", None, "Where the capture folder, dataset, model and fit.json go.")
  flags.DEFINE_enum("model", "nam_layout", list(MODELS), "configs/capture.py's recipe.")
  flags.DEFINE_float("minutes", 5.0, "Training time (wall clock, in all, for this workdir).")
  flags.DEFINE_string("device", "my_device", "The device's name in the capture's device.yaml.")
  flags.DEFINE_string("knobs", "", "Its setting as dial values 0..10, e.g. gain=6,tone=4.")
  flags.DEFINE_integer(
    "latency",
    0,
    "The recording chain's latency in samples (measured, "
    "e.g. by your interface): the output is moved this much earlier.",
  )
  flags.DEFINE_string("test_input", None, "A separate held-out DI (then --test_output too).")
  flags.DEFINE_string("test_output", None, "The device's recording of --test_input.")
  flags.DEFINE_float(
    "test_fraction",
    0.15,
    "Without a test pair: the last fraction of the capture held out (whole segments).",
  )
  flags.DEFINE_float("segment_seconds", 5.0, "Length of the segments the capture is cut into.")
  flags.DEFINE_string(
    "nam", None, "Also write the model as a neural-amp-modeler .nam file (--model=nam_layout only)."
  )
  flags.DEFINE_string(
    "init_from",
    "",
    "Start from a training workdir or a .nam file (its "
    "architecture too); needed by --model=finetune.",
  )


def options_from_flags() -> dict:
  model = FLAGS.model
  if FLAGS.init_from and not FLAGS["model"].present:
    model = "nam_layout" if FLAGS.init_from.lower().endswith(".nam") else "finetune"
  return {
    "input": FLAGS.input,
    "output": FLAGS.output,
    "workdir": FLAGS.workdir,
    "model": model,
    "minutes": FLAGS.minutes,
    "device": FLAGS.device,
    "knobs": FLAGS.knobs,
    "latency": FLAGS.latency,
    "test_input": FLAGS.test_input,
    "test_output": FLAGS.test_output,
    "test_fraction": FLAGS.test_fraction,
    "segment_seconds": FLAGS.segment_seconds,
    "nam": FLAGS.nam,
    "init_from": FLAGS.init_from,
  }


@report_errors
def main(argv):
  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # Orbax and TFDS are chatty at INFO
  if len(argv) > 1:
    raise AmpSpaceError(f"unexpected arguments: {' '.join(argv[1:])}")
  result = fit(options_from_flags())
  print(final_line(result["model"], result), flush=True)


def run():
  define_flags()
  app.run(main, flags_parser=parse_flags_one_line_errors)


if __name__ == "__main__":
  run()
