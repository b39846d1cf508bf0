"""`python -m launch.sim_to_real --scale=runlocal --workdir=runs/sim_to_real_local`: paper Table 3.

The sim-to-real gain-interpolation protocol, fair and resumable:

1. DIs: generated plucked-string phrases (or --pretrain_di_dir / --real_di_dir), two disjoint
   sets, so no DI of the "real" recordings was seen in pretraining;
2. pretraining data: native amps and drive/fuzz pedals (`--pretrain_devices`), each swept over
   its gain-role knob (gain, drive, fuzz or sustain: they share the model's gain slot, see
   ampspace.conditioning.GAIN_ROLE_KNOBS) with `one_knob_random:KNOB@N`, built as
   `amp_space/synthetic` in its own data_dir;
3. "real" devices (`--real_devices`): Guitarix LV2 component models, which share no code with
   the native zoo, captured as a user's recording folder would look (ampspace.capture: 24-bit,
   a fixed interface latency given by annotation or by a calibration blip, a little noise) and
   ingested through the builder's `real` path like any recording; or `--real_dir`, the user's
   own recordings (release, data.csv or NAM layout);
4. pretrain once (configs/sim_to_real_pretrain.py; `--architecture` picks its model, the
   paper's Wave2WaveNet or NAM's standard layout with a regression head, and every run of the
   protocol uses the same one);
5. per real device, row of Table 3 (fine-tune gains {5}, {3,7}, {2,8}) and seed, three models:
   `pretrained` (fine-tuned from the checkpoint), `baseline` (from scratch, as many optimiser
   steps as pretraining plus fine-tuning) and `baseline_es` (from scratch, early stopping on
   validation, up to 1.5 times that budget; `--models` trains a subset). All are evaluated
   the same way on every held-out test DI at test gains 5, {4,6}, {3,7}, {2,8}: pooled ESR (sum of error^2 / sum of target^2) and
   MSE per test group, per-clip sums kept in cell.json. A reference row evaluates the
   pretrained checkpoint with no fine-tuning (`zero_shot`), and every group also reports the
   prediction's level against the target's and its ESR with the polarity inverted, which show
   what pretraining transfers before fine-tuning starts;
6. the tables (mean and 95% t-interval over seeds), CSV, a plot, `protocol.json` and the
   target checks into WORKDIR/results (and --results_dir), and the tables into every
   --update_doc file between its `<!-- sim_to_real:table:begin/end -->` markers.

Independent cells run in `--workers` processes (one thread each); baselines start while the
pretraining runs. Provenance: every run and cell records the commit, a fingerprint of the
code, a hash of its config, its wall time and whether this invocation trained it. A cell made
by other code or another config is trained again, never reused; data is rebuilt likewise.
`--dry_run` prints the equivalent shell commands of every step and runs nothing.
"""

from __future__ import annotations

import concurrent.futures
import csv
import dataclasses
import glob
import hashlib
import io
import json
import multiprocessing
import os
import shlex
import shutil
import subprocess
import sys
import time

import numpy as np

from ampspace import capture, devices, render, trainers
from ampspace.audio import metrics
from ampspace.audio.wav_io import write_wav
from ampspace.conditioning import gain_role_knob
from ampspace.config_files import apply_override, config_module, load_config
from ampspace.di import karplus
from ampspace.errors import AmpSpaceError, report_errors
from ampspace.files import atomic_write, replace_between_markers

# TFDS and the modules that load jax, flax, Grain or TFDS (checkpoints, runtime.inference,
# data.*) are imported where used, so that importing this command loads none of them.

# The source tree the code fingerprint reads: the checkout (or, installed, the folder that
# holds the ampspace package).
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = {
  "pretrain": "configs/sim_to_real_pretrain.py",
  "pretrained": "configs/sim_to_real_finetune.py",
  "baseline": "configs/sim_to_real_baseline.py",
  "baseline_es": "configs/sim_to_real_baseline.py",
}
MODELS = ("pretrained", "baseline", "baseline_es")  # the table's order
# The pretrained model on the real device before any fine-tuning: a reference row, evaluated
# like every cell, that shows what pretraining alone transfers (one per device, no seeds).
ZERO_SHOT = "zero_shot"
MODEL_LABELS = {
  ZERO_SHOT: "pretrained, no fine-tuning",
  "pretrained": "pretrained + fine-tuned",
  "baseline": "baseline, equal steps",
  "baseline_es": "baseline, early stopping",
}
PAPER_ROWS = ((5.0,), (3.0, 7.0), (2.0, 8.0))
PAPER_TEST_GROUPS = ((5.0,), (4.0, 6.0), (3.0, 7.0), (2.0, 8.0))
# Paper Table 3 (MSE ×1e-3), fine-tuned on gain 5; quoted for comparison, never measured here.
PAPER_REFERENCE = {"baseline": (0.05, 0.33, 0.81, 2.10), "pretrained": (0.005, 0.023, 0.017, 0.064)}
CELL_FILE, RUN_FILE, DATA_FILE = "cell.json", "provenance.json", "data_provenance.json"
TABLE_BEGIN, TABLE_END = "<!-- sim_to_real:table:begin -->", "<!-- sim_to_real:table:end -->"
# Issue targets, checked and printed with every table (pooled plain ESR).
TARGET_ESR_AT_CENTER, TARGET_ESR_FAR = 0.05, 0.15
T_975 = {
  1: 12.706,
  2: 4.303,
  3: 3.182,
  4: 2.776,
  5: 2.571,
  6: 2.447,
  7: 2.365,
  8: 2.306,
  9: 2.262,
}  # two-sided 95% Student t quantiles by degrees of freedom


@dataclasses.dataclass(frozen=True)
class StandIn:
  """A device from another implementation, captured as a user's recordings (ampspace.capture)."""

  device: str
  knob: str
  knob_range: tuple[float, float] | None = None
  latency_by: str = "annotation"


STAND_INS = {
  # gx_amp's pre-gain spans -20..+20 dB; a real amp's gain dial spans less (capture.py).
  "gx_amp": StandIn("gx_amp", "gain", (-6.0, 20.0), "blip"),
  "gx_bossds1": StandIn("gx_bossds1", "drive", None, "annotation"),
  "gx_fuzzface": StandIn("gx_fuzzface", "fuzz", None, "blip"),
}
# Amps and drive/fuzz pedals of the native zoo (the real devices' families). tube_amp_4x12
# is left out: at high gain up to 6% of its samples sit at full scale (the builder's limit is 1%).
PRETRAIN_DEVICES = (
  "tube_amp",
  "tube_amp_fender",
  "tube_amp_mesa",
  "tube_amp_el84",
  "tube_amp_12at7",
  "ts_overdrive",
  "od_asymmetric",
  "od_mosfet",
  "rat_distortion",
  "rat_led",
  "fuzz_face",
  "fuzz_face_si",
  "big_muff",
)


@dataclasses.dataclass
class Protocol:
  """Everything the protocol depends on; `SCALES` holds the two presets."""

  workdir: str
  scale: str = "runlocal"  # config argument: "runlocal" or "" (paper)
  # configs/sim_to_real_pretrain.py's model: "paper" (Wave2WaveNet, 256-way, squared EMD) or
  # "nam_layout" (NAM's standard WaveNet layout, regression, MSE, DC-free head)
  architecture: str = "paper"
  pretrain_devices: tuple[str, ...] = PRETRAIN_DEVICES
  real_devices: tuple[str, ...] = ("gx_amp", "gx_bossds1")
  real_dir: str = ""  # user recordings instead of the stand-ins
  real_knob: str = "gain"  # the swept knob of --real_dir's device
  pretrain_series: int = 1  # one_knob_random:KNOB@N: N random contexts per DI
  pretrain_dis: int = 10
  pretrain_di_seconds: float = 2.0
  real_dis: int = 12
  real_di_seconds: float = 5.0
  # amp_space/real_heldout puts half of the real DIs in test (6 x 5 s = 30 s per test gain)
  # and a sixth in validation.
  finetune_seconds_per_gain: float = 12.0  # the paper: about 120 s per setting
  interface_latency: int = 117  # samples, of the stand-in captures
  noise_dbfs: float = -96.0
  rows: tuple[tuple[float, ...], ...] = PAPER_ROWS
  test_groups: tuple[tuple[float, ...], ...] = PAPER_TEST_GROUPS
  center_gain: float = 5.0
  seeds: tuple[int, ...] = (0, 1, 2)
  models: tuple[str, ...] = MODELS
  pretrain_steps: int | None = None  # None: the config's
  finetune_steps: int | None = None
  es_patience: int = 4  # evaluations without improvement
  es_eval_every: int = 100  # steps between the early-stopping evaluations
  es_eval_windows: int = 16  # validation windows per evaluation
  es_budget_factor: float = 1.5  # early-stopping cap, x (pretrain + fine-tune steps)
  overrides: tuple[str, ...] = ()  # KEY=VALUE config overrides for every run
  finetune_overrides: tuple[str, ...] = ()  # KEY=VALUE overrides of the fine-tuning runs only
  pretrain_di_dir: str = ""
  real_di_dir: str = ""
  results_dir: str = ""  # extra copy of the tables and plot (docs/results)
  update_docs: tuple[str, ...] = ()
  workers: int = 2
  seed: int = 0  # of the data (DIs, sweeps, captures)


SCALES = {
  "runlocal": {},
  # 50 DIs x 10 s x 13 devices x 10 gains x 2 contexts: 36 h of pairs (about 20 GB).
  "paper": dict(
    scale="",
    pretrain_series=2,
    pretrain_dis=50,
    pretrain_di_seconds=10.0,
    real_dis=40,
    real_di_seconds=10.0,
    finetune_seconds_per_gain=120.0,
    workers=1,
  ),
}


def log(msg: str) -> None:
  print(msg, file=sys.stderr, flush=True)


def gains_text(gains, sep: str = ",") -> str:
  return sep.join(f"{g:g}" for g in gains)


def group_label(gains) -> str:
  return gains_text(gains) if len(gains) == 1 else "{" + gains_text(gains) + "}"


def row_name(gains) -> str:
  return "ft_" + gains_text(gains, "_")


def write_json(path: str, data) -> None:
  atomic_write(path, json.dumps(data, indent=2) + "\n")


def read_json(path: str):
  with open(path) as f:
    return json.load(f)


# ---------------------------------------------------------------- provenance
def code_fingerprint(root: str = REPO) -> dict:
  """The commit, whether the tree differs from it, and a hash of the code as it is now (the
  tracked sources of the package, the builder, the configs and the launchers)."""

  def git(*args):
    try:
      return subprocess.run(
        ["git", "-C", root, *args], capture_output=True, text=True, timeout=30
      ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
      return ""

  files = git("ls-files", "ampspace", "tfds_ampspace", "configs", "launch").split("\n")
  files = [f for f in files if f.endswith((".py", ".c", ".yaml"))]
  if not any(files):
    files = sorted(
      os.path.relpath(p, root)
      for d in ("ampspace", "tfds_ampspace", "configs", "launch")
      for p in glob.glob(os.path.join(root, d, "**", "*.py"), recursive=True)
    )
  h = hashlib.sha256()
  for f in sorted(files):
    path = os.path.join(root, f)
    if os.path.exists(path):
      h.update(f.encode() + b"\0")
      with open(path, "rb") as fh:
        h.update(fh.read())
  return {
    "commit": git("rev-parse", "HEAD") or "unknown",
    "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    "code": h.hexdigest()[:16],
  }


def config_hash(config) -> str:
  return hashlib.sha256(
    json.dumps(config.to_dict(), sort_keys=True, default=str).encode()
  ).hexdigest()[:16]


def reusable(path: str, code: str, chash: str) -> dict | None:
  """The record at `path` if it was made by this code and config; else None."""
  if not os.path.exists(path):
    return None
  record = read_json(path)
  prov = record.get("provenance", {})
  if prov.get("code") == code and prov.get("config_hash") == chash:
    return record
  return None


# ---------------------------------------------------------------- targets and paths
@dataclasses.dataclass(frozen=True)
class Target:
  """One "real" device of the table: its recordings, swept knob and dataset."""

  name: str
  recordings: str
  knob: str
  standin: StandIn | None


@dataclasses.dataclass(frozen=True)
class Paths:
  root: str

  @property
  def pretrain_di(self):
    return os.path.join(self.root, "di", "pretrain")

  @property
  def real_di(self):
    return os.path.join(self.root, "di", "real")

  @property
  def pretrain_rendered(self):
    return os.path.join(self.root, "rendered", "pretrain")

  @property
  def pretrain_data(self):
    return os.path.join(self.root, "tfds", "pretrain")

  @property
  def pretrain_run(self):
    return os.path.join(self.root, "pretrain")

  @property
  def results(self):
    return os.path.join(self.root, "results")

  def recordings(self, name: str) -> str:
    return os.path.join(self.root, "recordings", name)

  def real_data(self, name: str) -> str:
    return os.path.join(self.root, "tfds", "real", name)

  def run(self, target: str, gains, model: str, seed: int) -> str:
    return os.path.join(self.root, "targets", target, row_name(gains), model, f"seed{seed}")


def targets(p: Protocol) -> list[Target]:
  if p.real_dir:
    root = os.path.abspath(p.real_dir)
    return [Target(os.path.basename(root.rstrip("/")) or "real", root, p.real_knob, None)]
  unknown = [d for d in p.real_devices if d not in STAND_INS]
  if unknown:
    raise AmpSpaceError(
      f"--real_devices {unknown}: no stand-in of that name; known: "
      f"{sorted(STAND_INS)} (or give --real_dir)"
    )
  return [
    Target(d, Paths(p.workdir).recordings(d), STAND_INS[d].knob, STAND_INS[d])
    for d in p.real_devices
  ]


def all_gains(p: Protocol) -> tuple[float, ...]:
  return tuple(sorted({g for r in p.rows for g in r} | {g for t in p.test_groups for g in t}))


def test_gains(p: Protocol) -> list[float]:
  return sorted({g for t in p.test_groups for g in t})


# ---------------------------------------------------------------- run configs
def config_arg(p: Protocol, gains=None) -> str:
  parts = [p.scale] if p.scale else []
  if p.architecture != "paper":
    parts.append(p.architecture)
  if gains is not None:
    parts.append("gains=" + gains_text(gains, "+"))
  return ",".join(parts)


def step_budget(p: Protocol) -> tuple[int, int]:
  """(pretraining steps, fine-tuning steps) after --pretrain_steps / --finetune_steps."""
  pre = p.pretrain_steps or load_config(CONFIGS["pretrain"], config_arg(p)).train.steps
  ft = (
    p.finetune_steps
    or load_config(CONFIGS["pretrained"], config_arg(p, (p.center_gain,))).train.steps
  )
  return int(pre), int(ft)


def run_overrides(
  p: Protocol,
  kind: str,
  target: Target | None = None,
  gains=None,
  finetune_filter: str | None = None,
  seed: int = 0,
) -> dict[str, str]:
  """Config overrides (dotted key -> text, as on the command line) of one training run."""
  paths = Paths(p.workdir)
  o: dict[str, str] = {}
  pre_steps, ft_steps = step_budget(p)
  if kind == "pretrain":
    o["dataset.name"] = PRETRAIN_DATASET
    o["dataset.data_dir"] = paths.pretrain_data
    o["dataset.manual_dir"] = paths.pretrain_rendered
    o["train.steps"] = str(pre_steps)
  else:
    o["dataset.name"] = REAL_DATASET
    o["dataset.data_dir"] = paths.real_data(target.name)
    o["dataset.manual_dir"] = target.recordings
    o["dataset.filter"] = finetune_filter or f"{target.knob}={gains_text(gains)}"
    o["seed"] = str(seed)
    if kind == "pretrained":
      o["init_from"] = paths.pretrain_run
      o["train.steps"] = str(ft_steps)
    elif kind == "baseline":
      o["train.steps"] = str(pre_steps + ft_steps)
    elif kind == "baseline_es":
      o["train.steps"] = str(int(p.es_budget_factor * (pre_steps + ft_steps)))
      o["train.early_stopping_patience"] = str(p.es_patience)
      o["train.eval_every"] = str(p.es_eval_every)
      o["train.eval_examples"] = str(p.es_eval_windows)
    else:
      raise AmpSpaceError(f"unknown model {kind!r}; known: {list(MODELS)}")
  items = [("--set", i) for i in p.overrides]
  if kind == "pretrained":
    items += [("--finetune_set", i) for i in p.finetune_overrides]
  for flag, item in items:
    key, sep, value = item.partition("=")
    if not sep or not key:
      raise AmpSpaceError(f"{flag} {item!r}: expected KEY=VALUE, e.g. model.channels=8")
    o[key.removeprefix("config.")] = value
  return o


def train_command(
  p: Protocol,
  kind: str,
  workdir: str,
  target: Target | None = None,
  gains=None,
  finetune_filter=None,
  seed: int = 0,
) -> str:
  arg = config_arg(p, gains if kind != "pretrain" else None)
  config = CONFIGS[kind] + (f":{arg}" if arg else "")
  parts = ["python", "-m", "ampspace.train", f"--config={config}", f"--workdir={workdir}"]
  parts += [
    f"--config.{k}={v}"
    for k, v in run_overrides(p, kind, target, gains, finetune_filter, seed).items()
  ]
  return " ".join(shlex.quote(x) for x in parts)


def load_run_config(
  p: Protocol,
  kind: str,
  target: Target | None = None,
  gains=None,
  finetune_filter=None,
  seed: int = 0,
):
  """The config `train_command` describes, built in this process (same file, arg, overrides)."""
  config = load_config(CONFIGS[kind], config_arg(p, gains if kind != "pretrain" else None))
  for key, text in run_overrides(p, kind, target, gains, finetune_filter, seed).items():
    apply_override(config, f"{key}={text}", flag="override")
  return config


# ---------------------------------------------------------------- data
def make_dis(out: str, num: int, seconds: float, prefix: str, seed: int) -> None:
  os.makedirs(out, exist_ok=True)
  for i in range(num):
    path = os.path.join(out, f"{prefix}_{i:04d}.wav")
    if not os.path.exists(path):
      write_wav(path, karplus.phrase(seed * 100003 + i, seconds))


def gain_knob_of(device: str) -> str:
  knob = gain_role_knob([k.name for k in devices.get_device(device).knobs])
  if knob is None:
    raise AmpSpaceError(f"--pretrain_devices: {device!r} has no gain, drive, fuzz or sustain knob")
  return knob


def pretrain_sweep(p: Protocol, device: str) -> str:
  return f"one_knob_random:{gain_knob_of(device)}@{p.pretrain_series}"


PRETRAIN_DATASET = "amp_space/synthetic_lenient"  # clipped takes left out and listed
REAL_DATASET = "amp_space/real_heldout"  # half of the real DIs in test


def data_commands(p: Protocol) -> list[str]:
  paths = Paths(p.workdir)
  q = lambda parts: " ".join(shlex.quote(x) for x in parts)
  cmds = []
  for i, device in enumerate(p.pretrain_devices):
    cmds.append(
      q(
        [
          "python",
          "-m",
          "ampspace.render",
          f"--device={device}",
          f"--sweep={pretrain_sweep(p, device)}",
          f"--di={p.pretrain_di_dir or paths.pretrain_di}",
          f"--out={paths.pretrain_rendered}",
          f"--seed={p.seed + i}",
        ]
      )
    )
  for t in targets(p):
    if t.standin:
      s = t.standin
      cmds.append(
        q(
          [
            "python",
            "-m",
            "ampspace.capture",
            f"--device={s.device}",
            f"--knob={s.knob}",
            f"--di={p.real_di_dir or paths.real_di}",
            f"--out={t.recordings}",
            f"--latency={p.interface_latency}",
            f"--noise_dbfs={p.noise_dbfs:g}",
            f"--latency_by={s.latency_by}",
          ]
          + ([f"--knob_range={s.knob_range[0]:g},{s.knob_range[1]:g}"] if s.knob_range else [])
        )
      )
  builds = [(PRETRAIN_DATASET, paths.pretrain_data, paths.pretrain_rendered)]
  builds += [(REAL_DATASET, paths.real_data(t.name), t.recordings) for t in targets(p)]
  for name, data_dir, manual in builds:
    cmds.append(
      q(
        [
          "python",
          "-m",
          "tfds_ampspace.build",
          "tfds_ampspace/amp_space",
          f"--config={name.split('/')[1]}",
          "--file_format=array_record",
          f"--data_dir={data_dir}",
          f"--manual_dir={manual}",
        ]
      )
    )
  return cmds


def data_spec(p: Protocol) -> dict:
  keys = (
    "pretrain_devices",
    "real_devices",
    "real_dir",
    "real_knob",
    "pretrain_series",
    "pretrain_dis",
    "pretrain_di_seconds",
    "real_dis",
    "real_di_seconds",
    "interface_latency",
    "noise_dbfs",
    "pretrain_di_dir",
    "real_di_dir",
    "seed",
    "rows",
    "test_groups",
  )
  return {k: getattr(p, k) for k in keys}


def prepare_data(p: Protocol, code: str) -> None:
  """DIs, pretraining renders, stand-in captures and both builds; all of it made again when
  the code or the data settings changed (never the user's own --real_dir)."""
  import tensorflow_datasets as tfds

  import tfds_ampspace  # noqa: F401  (registers amp_space)

  paths = Paths(p.workdir)
  stamp = os.path.join(p.workdir, DATA_FILE)
  spec = json.loads(json.dumps(data_spec(p)))
  if os.path.exists(stamp) and read_json(stamp) != {"code": code, "spec": spec}:
    log("data was made by other code or settings: making it again")
    for folder in ("di", "rendered", "recordings", "tfds"):
      shutil.rmtree(os.path.join(p.workdir, folder), ignore_errors=True)
  if not p.pretrain_di_dir:
    make_dis(paths.pretrain_di, p.pretrain_dis, p.pretrain_di_seconds, "pre", p.seed + 1)
  if not p.real_di_dir and not p.real_dir:
    make_dis(paths.real_di, p.real_dis, p.real_di_seconds, "real", p.seed + 2)
  workers = min(16, os.cpu_count() or 1)
  if not os.path.exists(os.path.join(paths.pretrain_data, "amp_space")):
    for i, device in enumerate(p.pretrain_devices):  # resumes: finished folders are kept
      if device in p.real_devices and not p.real_dir:
        raise AmpSpaceError(f"--pretrain_devices includes the real device {device!r}")
      render.render(
        device,
        pretrain_sweep(p, device),
        p.pretrain_di_dir or paths.pretrain_di,
        paths.pretrain_rendered,
        seed=p.seed + i,
        workers=workers,
        progress=False,
      )
  for t in targets(p):
    if t.standin:
      s = t.standin
      capture.capture_device(
        s.device,
        s.knob,
        p.real_di_dir or paths.real_di,
        t.recordings,
        latency=p.interface_latency,
        noise_dbfs=p.noise_dbfs,
        latency_by=s.latency_by,
        knob_range=s.knob_range,
        seed=p.seed,
        progress=False,
      )
  builds = [(PRETRAIN_DATASET, paths.pretrain_data, paths.pretrain_rendered)]
  builds += [(REAL_DATASET, paths.real_data(t.name), t.recordings) for t in targets(p)]
  for name, data_dir, manual in builds:
    builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
    if not builder.is_prepared():
      log(f"build {name} from {manual} in {data_dir}")
      builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual))
  write_json(stamp, {"code": code, "spec": spec})


def annotation_table(data_dir: str, split: str) -> list[dict]:
  """di_id, seconds and knob values of every record of a split of the real dataset (no audio)."""
  import tensorflow_datasets as tfds
  import tfds_ampspace  # noqa: F401

  from ampspace.data import filters

  builder = tfds.builder(REAL_DATASET, data_dir=data_dir)
  if split not in builder.info.splits:
    return []
  return filters.annotations(builder.as_data_source(split=split))


def finetune_selection(p: Protocol, target: Target, gains) -> tuple[str, dict]:
  """The row's `dataset.filter` and what it selects: the first training DIs (by id) that give
  at least --finetune_seconds_per_gain at every fine-tune gain, plus every validation DI."""
  data_dir = Paths(p.workdir).real_data(target.name)
  train = annotation_table(data_dir, "train")
  knob = target.knob
  at = lambda a, g: abs(a["knobs"].get(knob, np.nan) - g) <= 1e-4
  chosen: list[str] = []
  seconds = {g: 0.0 for g in gains}
  for di in sorted({a["di_id"] for a in train}):
    if all(s >= p.finetune_seconds_per_gain for s in seconds.values()):
      break
    chosen.append(di)
    for a in train:
      for g in gains:
        if a["di_id"] == di and at(a, g):
          seconds[g] += a["seconds"]
  missing = [g for g, s in seconds.items() if s == 0.0]
  if missing:
    raise AmpSpaceError(f"{data_dir}: the train split has no recording at {knob}={missing}")
  val_dis = sorted({a["di_id"] for a in annotation_table(data_dir, "validation")})
  spec = f"{knob}={gains_text(gains)};di_id={','.join(chosen + val_dis)}"
  return spec, {
    "train_dis": chosen,
    "seconds_per_gain": {f"{g:g}": round(s, 3) for g, s in seconds.items()},
  }


# ---------------------------------------------------------------- runs
def train_run(config, workdir: str, command: str, fingerprint: dict) -> dict:
  """Trains one run unless this code and config already finished it; returns its record.

  A run left by other code or another config is wiped first; an interrupted run of this code
  and config resumes from its checkpoint."""
  chash = config_hash(config)
  path = os.path.join(workdir, RUN_FILE)
  done = reusable(path, fingerprint["code"], chash)
  if done and done.get("finished"):
    return {**done, "trained_now": False}
  if os.path.isdir(workdir) and not done:
    shutil.rmtree(workdir)
  provenance = {**fingerprint, "config_hash": chash}
  write_json(path, {"provenance": provenance, "finished": False, "command": command})
  t0 = time.time()
  result = trainers.get_trainer(config.trainer)(config, workdir)
  if result.get("preempted"):
    raise AmpSpaceError(f"{workdir}: preempted; run the same command again to resume")
  losses = [h["loss"] for h in result["history"]]
  k = max(1, len(losses) // 10)
  record = {
    "provenance": provenance,
    "finished": True,
    "command": command,
    "steps": result["steps"],
    "best_step": result.get("best_step"),
    "seconds": round(time.time() - t0, 1),
    "loss_first": float(np.mean(losses[:k])) if losses else None,
    "loss_last": float(np.mean(losses[-k:])) if losses else None,
    "made": time.strftime("%Y-%m-%d %H:%M:%S"),
  }
  write_json(path, record)
  return {**record, "trained_now": True}


def evaluate_run(
  workdir: str, config, knob: str, gains: list[float], step: int | None = None
) -> list[dict]:
  """Every test clip at `gains`, through one decoding path for every model: per clip, its
  knob value, length and the sums that pool into ESR and MSE (plain and pre-emphasised), the
  prediction's energy and its product with the target (its level and polarity against the
  target's). `workdir`'s checkpoint at `step` (default the latest) is read with `config`'s
  model and data, so a pretrained checkpoint is evaluated on a real device's clips."""
  from ampspace import checkpoints
  from ampspace.data import pipeline, sources
  from ampspace.data.filters import text
  from ampspace.runtime.inference import make_apply, run_clip

  restored = checkpoints.restore_model(workdir, config, step)
  context, step = restored.context, restored.step
  apply = make_apply(
    restored.graphdef, restored.params, config.loss.get("decode", "expected_value")
  )
  dataset = config.dataset.copy_and_resolve_references()
  dataset.filter = f"{knob}={gains_text(gains)}"
  source = sources.open_split(dataset, "test")
  clips = []
  for i in range(len(source)):
    record = source[i]
    names = [text(n) for n in record["knob_names"]]
    di = pipeline.decode_audio(record, "di")
    target = pipeline.decode_audio(record, "output").astype(np.float64)
    pred = run_clip(apply, di, pipeline.conditioning_of(record), context).astype(np.float64)
    t_pre, p_pre = metrics.pre_emphasis(target), metrics.pre_emphasis(pred)
    clips.append(
      {
        "clip_id": record["clip_id"].decode(),
        "gain": float(record["knob_values"][names.index(knob)]),
        "samples": int(len(target)),
        "sse": float(np.sum((target - pred) ** 2)),
        "sst": float(np.sum(target**2)),
        "ssp": float(np.sum(pred**2)),
        "spt": float(np.sum(pred * target)),
        "sse_pre": float(np.sum((t_pre - p_pre) ** 2)),
        "sst_pre": float(np.sum(t_pre**2)),
        "step": int(step),
      }
    )
  if not clips:
    raise AmpSpaceError(f"{config.dataset.data_dir}: no test clip at {knob}={gains}")
  return clips


def pooled(clips: list[dict]) -> dict:
  """Pooled ESR (plain and pre-emphasised) and MSE of `clips`; where the clips carry the
  prediction's sums, also its level against the target's (dB) and the ESR it would have with
  its polarity inverted (Σ (target + prediction)² / Σ target²)."""
  sse, sst = sum(c["sse"] for c in clips), sum(c["sst"] for c in clips)
  n = sum(c["samples"] for c in clips)
  out = {
    "clips": len(clips),
    "seconds": round(n / 44100.0, 2),
    "esr": sse / max(sst, 1e-30),
    "esr_pre": sum(c["sse_pre"] for c in clips) / max(sum(c["sst_pre"] for c in clips), 1e-30),
    "mse": sse / max(n, 1),
  }
  if all("ssp" in c and "spt" in c for c in clips):
    ssp, spt = sum(c["ssp"] for c in clips), sum(c["spt"] for c in clips)
    out["level_db"] = float(10 * np.log10(max(ssp, 1e-30) / max(sst, 1e-30)))
    out["esr_inverted"] = (ssp + sst + 2 * spt) / max(sst, 1e-30)
  return out


def group_metrics(p: Protocol, clips: list[dict]) -> dict:
  out = {}
  for group in p.test_groups:
    mine = [c for c in clips if any(abs(c["gain"] - g) <= 1e-4 for g in group)]
    if not mine:
      raise AmpSpaceError(f"no test clip at gains {group}")
    out[group_label(group)] = pooled(mine)
  return out


@dataclasses.dataclass(frozen=True)
class CellJob:
  target: Target
  gains: tuple[float, ...]
  model: str
  seed: int
  finetune_filter: str
  selection: dict


def run_cell(p: Protocol, job: CellJob, fingerprint: dict, reuse_only: bool = False) -> dict | None:
  """Trains (or reuses) and evaluates one cell; writes and returns its cell.json. With
  `reuse_only`, a cell this code and config have not finished is None instead."""
  workdir = Paths(p.workdir).run(job.target.name, job.gains, job.model, job.seed)
  config = load_run_config(p, job.model, job.target, job.gains, job.finetune_filter, job.seed)
  chash = config_hash(config)
  cell_path = os.path.join(workdir, CELL_FILE)
  if job.model == "pretrained":  # the init is part of what a fine-tuned cell depends on
    chash += (
      "+"
      + read_json(os.path.join(Paths(p.workdir).pretrain_run, RUN_FILE))["provenance"][
        "config_hash"
      ]
    )
  cell = reusable(cell_path, fingerprint["code"], chash)
  if cell:
    return {**cell, "trained_now": False}
  if reuse_only:
    return None
  command = train_command(
    p, job.model, workdir, job.target, job.gains, job.finetune_filter, job.seed
  )
  log(f"train: {command}")
  run = train_run(config, workdir, command, fingerprint)
  t0 = time.time()
  clips = evaluate_run(workdir, config, job.target.knob, test_gains(p))
  cell = {
    "target": job.target.name,
    "knob": job.target.knob,
    "finetune_gains": list(job.gains),
    "model": job.model,
    "seed": job.seed,
    "train": {
      k: run.get(k)
      for k in ("steps", "best_step", "seconds", "loss_first", "loss_last", "command", "made")
    },
    **job.selection,
    "groups": group_metrics(p, clips),
    "clips": clips,
    "eval_seconds": round(time.time() - t0, 1),
    "provenance": {**fingerprint, "config_hash": chash, "made": time.strftime("%Y-%m-%d %H:%M:%S")},
  }
  write_json(cell_path, cell)
  return {**cell, "trained_now": run["trained_now"]}


def zero_shot_cell(
  p: Protocol, target: Target, fingerprint: dict, reuse_only: bool = False
) -> dict | None:
  """The pretrained checkpoint on `target`'s test clips, with no fine-tuning: the same
  evaluation as every cell, with the device's own conditioning (its untrained device row)."""
  paths = Paths(p.workdir)
  workdir = os.path.join(p.workdir, "targets", target.name, ZERO_SHOT)
  config = load_run_config(p, "pretrained", target, (p.center_gain,))
  pre = read_json(os.path.join(paths.pretrain_run, RUN_FILE))
  chash = config_hash(config) + "+" + pre["provenance"]["config_hash"]
  cell_path = os.path.join(workdir, CELL_FILE)
  cell = reusable(cell_path, fingerprint["code"], chash)
  if cell:
    return {**cell, "trained_now": False}
  if reuse_only:
    return None
  t0 = time.time()
  clips = evaluate_run(paths.pretrain_run, config, target.knob, test_gains(p))
  cell = {
    "target": target.name,
    "knob": target.knob,
    "finetune_gains": [],
    "model": ZERO_SHOT,
    "seed": 0,
    "train": {
      "steps": 0,
      "best_step": None,
      "seconds": 0.0,
      "command": f"(evaluated from {paths.pretrain_run})",
      "made": time.strftime("%Y-%m-%d %H:%M:%S"),
    },
    "groups": group_metrics(p, clips),
    "clips": clips,
    "eval_seconds": round(time.time() - t0, 1),
    "provenance": {**fingerprint, "config_hash": chash, "made": time.strftime("%Y-%m-%d %H:%M:%S")},
  }
  write_json(cell_path, cell)
  return {**cell, "trained_now": True}


def pretrain(p: Protocol, fingerprint: dict) -> dict:
  workdir = Paths(p.workdir).pretrain_run
  config = load_run_config(p, "pretrain")
  command = train_command(p, "pretrain", workdir)
  log(f"pretrain: {command}")
  return train_run(config, workdir, command, fingerprint)


def _worker_init() -> None:
  """One intra-op thread per worker: two small-model workers use two cores better than one
  worker with two threads. Runs before JAX is imported in the (spawned) worker."""
  os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen="
    "false intra_op_parallelism_threads=1"
  ).strip()
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  from absl import logging

  logging.set_verbosity(logging.WARNING)


# ---------------------------------------------------------------- statistics and tables
def interval(values) -> tuple[float, float]:
  """(mean, half-width of the 95% Student-t interval) over seeds; half-width nan for one."""
  v = np.asarray(values, np.float64)
  if len(v) < 2:
    return float(v.mean()), float("nan")
  return float(v.mean()), T_975.get(len(v) - 1, 1.96) * float(v.std(ddof=1)) / np.sqrt(len(v))


def summarise(p: Protocol, cells: list[dict]) -> list[dict]:
  """One row per (target, fine-tune gains, model, test group): mean and 95% interval over
  seeds of pooled ESR (plain and pre-emphasised) and MSE."""
  rows = []
  keyed: dict[tuple, list[dict]] = {}
  for c in cells:
    keyed.setdefault((c["target"], group_label(c["finetune_gains"]), c["model"]), []).append(c)
  for (target, ft, model), cs in keyed.items():
    for group in p.test_groups:
      label = group_label(group)
      g = [c["groups"][label] for c in cs]
      row = {
        "target": target,
        "finetune_gains": ft,
        "model": model,
        "test_gains": label,
        "seeds": len(cs),
        "clips_per_seed": g[0]["clips"],
        "test_seconds": g[0]["seconds"],
        "steps": round(float(np.mean([c["train"]["steps"] for c in cs]))),
      }
      for m in ("esr", "esr_pre", "mse", "level_db", "esr_inverted"):
        if not all(m in x for x in g):
          continue
        mean, half = interval([x[m] for x in g])
        row[m] = mean
        row[m + "_ci95"] = half
        row[m + "_per_seed"] = [x[m] for x in g]
      rows.append(row)
  return rows


def _fmt(mean: float, half: float, scale: float = 1.0, digits: int = 3) -> str:
  if np.isnan(half):
    return f"{scale * mean:.{digits}f}"
  return f"{scale * mean:.{digits}f} ± {scale * half:.{digits}f}"


def target_checks(p: Protocol, summary: list[dict]) -> dict[str, dict]:
  """Per real device, the issue's targets: pretrained beats both baselines everywhere, with
  non-overlapping 95% intervals in the far columns, and the ESR bounds after fine-tuning on
  the center gain. "Beats" compares means; `intervals_apart_at` lists the test gains where the
  pretrained model's 95% interval lies below both baselines' in every row, the gains where the
  win is more than the seeds' spread."""
  labels = [group_label(t) for t in p.test_groups]
  far = labels[-2:]
  out = {}
  for target in sorted({r["target"] for r in summary}):
    rs = [r for r in summary if r["target"] == target]
    at = {(r["finetune_gains"], r["model"], r["test_gains"]): r for r in rs}
    beats, separated, misses = True, True, []
    apart = {label: True for label in labels}
    for row in p.rows:
      ft = group_label(row)
      for label in labels:
        pre = at.get((ft, "pretrained", label))
        for base in ("baseline", "baseline_es"):
          b = at.get((ft, base, label))
          if pre is None or b is None:
            continue
          if not pre["esr"] < b["esr"]:
            beats = False
            misses.append(
              f"row {ft}, test {label}: pretrained {pre['esr']:.3f} vs {base} {b['esr']:.3f}"
            )
          if not pre["esr"] + pre["esr_ci95"] < b["esr"] - b["esr_ci95"]:
            apart[label] = False
            separated = separated and label not in far
    center = group_label((p.center_gain,))
    c = at.get((center, "pretrained", labels[0]))
    f = at.get((center, "pretrained", labels[-1]))
    out[target] = {
      "pretrained_beats_both_baselines_everywhere": beats,
      "intervals_separate_in_" + "_and_".join(far): separated,
      "intervals_apart_at": [label for label in labels if apart[label]],
      "esr_at_center": c["esr"] if c else None,
      "esr_at_center_ok": bool(c and c["esr"] <= TARGET_ESR_AT_CENTER),
      "esr_far": f["esr"] if f else None,
      "esr_far_ok": bool(f and f["esr"] <= TARGET_ESR_FAR),
      "misses": misses[:12],
    }
  return out


def markdown_tables(
  p: Protocol, summary: list[dict], checks: dict, command: str, provenance: dict
) -> str:
  labels = [group_label(t) for t in p.test_groups]
  lines = [
    f"Pooled ESR (Σ error² / Σ target², plain) and MSE ×1e-3 on held-out DIs at each "
    f"test gain: mean ± half-width of the 95% t-interval over {len(p.seeds)} seeds. "
    f"Generated by `{command}` at commit {provenance['commit'][:12]}"
    f"{' (with uncommitted changes)' if provenance['dirty'] else ''}, code "
    f"{provenance['code']}, on {provenance['made']}; do not edit by hand.",
    "",
  ]
  for target in sorted({r["target"] for r in summary}):
    rs = [r for r in summary if r["target"] == target]
    at = {(r["finetune_gains"], r["model"], r["test_gains"]): r for r in rs}
    lines += [
      f"**{target}**",
      "",
      "| fine-tune gains | model | steps | "
      + " | ".join(f"ESR {l}" for l in labels)
      + " | "
      + " | ".join(f"MSE {l}" for l in labels)
      + " |",
      "|---|---|---:|" + "---:|" * (2 * len(labels)),
    ]
    zero = [at.get((group_label(()), ZERO_SHOT, l)) for l in labels]
    if all(zero):
      lines.append(
        f"| none | {MODEL_LABELS[ZERO_SHOT]} | {zero[0]['steps']} | "
        + " | ".join(_fmt(c["esr"], c["esr_ci95"]) for c in zero)
        + " | "
        + " | ".join(_fmt(c["mse"], c["mse_ci95"], 1e3) for c in zero)
        + " |"
      )
    for row in p.rows:
      ft = group_label(row)
      for model in p.models:
        cells = [at.get((ft, model, l)) for l in labels]
        if not all(cells):
          continue
        lines.append(
          f"| {ft} | {MODEL_LABELS.get(model, model)} | {cells[0]['steps']} | "
          + " | ".join(_fmt(c["esr"], c["esr_ci95"]) for c in cells)
          + " | "
          + " | ".join(_fmt(c["mse"], c["mse_ci95"], 1e3) for c in cells)
          + " |"
        )
    c = checks[target]
    sep_key = next(k for k in c if k.startswith("intervals_separate"))
    lines += [
      "",
      "Test audio per seed: "
      + ", ".join(
        f"{l}: {at[(group_label(p.rows[0]), p.models[0], l)]['test_seconds']:g} s"
        for l in labels
        if (group_label(p.rows[0]), p.models[0], l) in at
      )
      + ". Targets: pretrained beats both baselines at every test gain in every row: "
      f"**{'yes' if c['pretrained_beats_both_baselines_everywhere'] else 'no'}** in the mean, "
      f"with the 95% intervals apart at "
      f"{', '.join(c['intervals_apart_at']) or 'no test gain'}; "
      f"95% intervals apart in {', '.join(labels[-2:])}: "
      f"**{'yes' if c[sep_key] else 'no'}**; after fine-tuning on "
      f"{p.center_gain:g}, pretrained ESR {c['esr_at_center']:.3f} at {labels[0]} "
      f"(target ≤ {TARGET_ESR_AT_CENTER}: **{'met' if c['esr_at_center_ok'] else 'missed'}"
      f"**) and {c['esr_far']:.3f} at {labels[-1]} (target ≤ {TARGET_ESR_FAR}: "
      f"**{'met' if c['esr_far_ok'] else 'missed'}**)."
      + (
        f" Before fine-tuning, the pretrained model's output at {labels[0]} is "
        f"{zero[0]['level_db']:+.1f} dB from the target's level, and its ESR would be "
        f"{zero[0]['esr_inverted']:.3f} with its polarity inverted."
        if all(zero) and "level_db" in zero[0]
        else ""
      ),
      "",
    ]
  if tuple(p.test_groups) == PAPER_TEST_GROUPS:
    lines += [
      "Paper (Naradowsky 2021, Table 3, MSE ×1e-3, fine-tuned on gain 5; quoted, not "
      "measured here): baseline "
      + " / ".join(f"{v:g}" for v in PAPER_REFERENCE["baseline"])
      + "; pretrained "
      + " / ".join(f"{v:g}" for v in PAPER_REFERENCE["pretrained"])
      + "."
    ]
  return "\n".join(lines).rstrip("\n") + "\n"


def csv_text(rows: list[dict]) -> str:
  buf = io.StringIO()
  flat = [{k: (json.dumps(v) if isinstance(v, list) else v) for k, v in r.items()} for r in rows]
  fields = list(dict.fromkeys(k for r in flat for k in r))  # rows may differ (zero-shot)
  writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
  writer.writeheader()
  writer.writerows(flat)
  return buf.getvalue()


def plot_png(p: Protocol, summary: list[dict]) -> bytes:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  names = sorted({r["target"] for r in summary})
  fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.8), squeeze=False)
  styles = {"pretrained": ("C0", "-"), "baseline": ("C3", "--"), "baseline_es": ("C1", ":")}
  center = group_label((p.center_gain,))
  for ax, name in zip(axes[0], names):
    for model in p.models:
      rs = [
        r
        for r in summary
        if r["target"] == name and r["model"] == model and r["finetune_gains"] == center
      ]
      if not rs:
        continue
      x = [abs(float(r["test_gains"].strip("{}").split(",")[0]) - p.center_gain) for r in rs]
      color, ls = styles.get(model, ("C2", "-."))
      ax.errorbar(
        x,
        [r["esr"] for r in rs],
        yerr=[r["esr_ci95"] for r in rs],
        color=color,
        linestyle=ls,
        marker="o",
        capsize=3,
        label=MODEL_LABELS.get(model, model),
      )
    zero = [r for r in summary if r["target"] == name and r["model"] == ZERO_SHOT]
    if zero:
      x = [abs(float(r["test_gains"].strip("{}").split(",")[0]) - p.center_gain) for r in zero]
      ax.plot(
        x,
        [r["esr"] for r in zero],
        color="0.5",
        linestyle="-.",
        marker="x",
        label=MODEL_LABELS[ZERO_SHOT],
      )
    ax.set_yscale("log")
    ax.set_xlabel(f"|gain − {p.center_gain:g}| of the test clips")
    ax.set_ylabel("pooled ESR")
    ax.set_title(f"{name}: fine-tuned on {center}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
  fig.tight_layout()
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=110)
  plt.close(fig)
  return buf.getvalue()


def write_results(p: Protocol, cells: list[dict], command: str, provenance: dict) -> dict:
  summary = summarise(p, cells)
  checks = target_checks(p, summary)
  markdown = markdown_tables(p, summary, checks, command, provenance)
  outputs = {
    "sim_to_real_table.md": markdown,
    "sim_to_real_table.csv": csv_text(summary),
    "sim_to_real_esr_vs_gain.png": plot_png(p, summary),
  }
  written = []
  for folder in filter(None, (Paths(p.workdir).results, p.results_dir)):
    for name, content in outputs.items():
      atomic_write(os.path.join(folder, name), content)
      written.append(os.path.join(folder, name))
  for doc in p.update_docs:
    replace_between_markers(doc, TABLE_BEGIN, TABLE_END, markdown)
    written.append(doc)
  return {"files": written, "markdown": markdown, "summary": summary, "checks": checks}


# ---------------------------------------------------------------- protocol
def check_configs(p: Protocol) -> None:
  """Loads every run's config with its overrides, so a typo fails before any work starts."""
  load_run_config(p, "pretrain")
  for t in targets(p):
    for gains in p.rows:
      for model in p.models:
        load_run_config(p, model, t, gains)


def dry_run_commands(p: Protocol) -> list[str]:
  check_configs(p)
  paths = Paths(p.workdir)
  cmds = data_commands(p) + [train_command(p, "pretrain", paths.pretrain_run)]
  for t in targets(p):
    for gains in p.rows:
      spec = (
        f"{t.knob}={gains_text(gains)};di_id=<training DIs giving "
        f"{p.finetune_seconds_per_gain:g} s per gain + validation DIs, chosen after the "
        f"build>"
      )
      for model in p.models:
        for seed in p.seeds:
          cmds.append(
            train_command(p, model, paths.run(t.name, gains, model, seed), t, gains, spec, seed)
          )
  return cmds


def run_protocol(p: Protocol, command: str = "python -m launch.sim_to_real") -> dict:
  t0 = time.time()
  fingerprint = code_fingerprint()
  check_configs(p)
  log(f"=== data (code {fingerprint['code']})")
  prepare_data(p, fingerprint["code"])
  jobs = []
  for t in targets(p):
    for gains in p.rows:
      spec, selection = finetune_selection(p, t, gains)
      for model in p.models:
        for seed in p.seeds:
          jobs.append(CellJob(t, tuple(gains), model, seed, spec, selection))
  log(f"=== pretraining and {len(jobs)} cells in {p.workers} worker(s)")
  cells: list[dict] = []
  pre = None
  if p.workers <= 1:
    pre = pretrain(p, fingerprint)
    cells = [run_cell(p, job, fingerprint) for job in jobs]
    cells += [zero_shot_cell(p, t, fingerprint) for t in targets(p)]
  else:
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
      p.workers, mp_context=ctx, initializer=_worker_init
    ) as pool:
      pre_future = pool.submit(pretrain, p, fingerprint)
      # Baselines need no pretrained model: they start beside it.
      futures = {
        pool.submit(run_cell, p, j, fingerprint): i
        for i, j in enumerate(jobs)
        if j.model != "pretrained"
      }
      pre = pre_future.result()
      futures.update(
        {
          pool.submit(run_cell, p, j, fingerprint): i
          for i, j in enumerate(jobs)
          if j.model == "pretrained"
        }
      )
      done = {}
      for future in concurrent.futures.as_completed(futures):
        i = futures[future]
        done[i] = future.result()
        job = jobs[i]
        log(
          f"cell {len(done)}/{len(jobs)}: {job.target.name} {group_label(job.gains)} "
          f"{job.model} seed {job.seed} ({'trained' if done[i]['trained_now'] else 'reused'})"
        )
      cells = [done[i] for i in range(len(jobs))]
      cells += list(pool.map(zero_shot_cell, *zip(*[(p, t, fingerprint) for t in targets(p)])))
  seconds = round(time.time() - t0, 1)
  invocation = {
    "seconds": seconds,
    "trained": sum(bool(c.get("trained_now")) for c in cells),
    "reused": sum(not c.get("trained_now") for c in cells),
  }
  out = report(p, cells, pre, command, fingerprint, invocation)
  return {"cells": cells, **out, "seconds": seconds}


def report(
  p: Protocol, cells: list[dict], pre: dict, command: str, fingerprint: dict, invocation: dict
) -> dict:
  """The tables, CSV, plot and doc markers of `cells`, and `protocol.json` with this
  invocation appended to the earlier ones."""
  paths = Paths(p.workdir)
  provenance = {**fingerprint, "made": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
  out = write_results(p, cells, command, provenance)
  manifest_path = os.path.join(paths.results, "protocol.json")
  invocations = (
    read_json(manifest_path).get("invocations", []) if os.path.exists(manifest_path) else []
  )
  invocations.append(
    {"command": command, **invocation, **fingerprint, "finished": provenance["made"]}
  )
  manifest = {
    "protocol": dataclasses.asdict(p),
    "pretrain": pre,
    "invocations": invocations,
    "checks": out["checks"],
    "results": out["files"],
    "cells": [
      {k: c[k] for k in ("target", "finetune_gains", "model", "seed", "provenance", "train")}
      | {"trained_now": bool(c.get("trained_now"))}
      for c in cells
    ],
  }
  for folder in filter(None, (paths.results, p.results_dir)):
    write_json(os.path.join(folder, "protocol.json"), manifest)
  return out


# ---------------------------------------------------------------- stages, for job arrays
# `--stage=all` (the default) runs everything in this process. A cluster runs the same protocol
# as separate jobs (ampspace.launcher's slurm_sweep writes them): `data`, then `pretrain`
# beside the from-scratch cells, then the cells that start from the pretrained checkpoint,
# then `report`. `plan` prints the cells as JSON. Every stage reuses what this code and
# config finished, so resubmitting the same sweep resumes it.
STAGES = ("all", "plan", "data", "pretrain", "cell", "report", "worker")


@dataclasses.dataclass(frozen=True)
class CellKey:
  """One cell of the table, named without its data: what a job array's index picks."""

  target: str
  gains: tuple[float, ...]
  model: str  # one of MODELS, or ZERO_SHOT
  seed: int

  @property
  def needs_pretraining(self) -> bool:
    return self.model in ("pretrained", ZERO_SHOT)

  def label(self) -> str:
    if self.model == ZERO_SHOT:
      return f"{self.target} {ZERO_SHOT}"
    return f"{self.target} {group_label(self.gains)} {self.model} seed {self.seed}"


def table_keys(p: Protocol) -> list[CellKey]:
  """Every cell in the table's order (run_protocol's): targets x rows x models x seeds, then
  one zero-shot row per target."""
  keys = [
    CellKey(t.name, tuple(g), m, s)
    for t in targets(p)
    for g in p.rows
    for m in p.models
    for s in p.seeds
  ]
  return keys + [CellKey(t.name, (), ZERO_SHOT, 0) for t in targets(p)]


def cell_keys(p: Protocol) -> list[CellKey]:
  """The cells in job-array order: first those that need only the data (the baselines), then
  those that start from the pretrained checkpoint, so the first group runs beside the
  pretraining."""
  keys = table_keys(p)
  return [k for k in keys if not k.needs_pretraining] + [k for k in keys if k.needs_pretraining]


def data_ready(p: Protocol, code: str) -> bool:
  """Whether prepare_data finished for this code and these data settings."""
  stamp = os.path.join(p.workdir, DATA_FILE)
  spec = json.loads(json.dumps(data_spec(p)))
  return os.path.exists(stamp) and read_json(stamp) == {"code": code, "spec": spec}


def pretraining_ready(p: Protocol, fingerprint: dict) -> bool:
  """Whether this code and config finished the pretraining run."""
  path = os.path.join(Paths(p.workdir).pretrain_run, RUN_FILE)
  done = reusable(path, fingerprint["code"], config_hash(load_run_config(p, "pretrain")))
  return bool(done and done.get("finished"))


def run_cell_key(
  p: Protocol, key: CellKey, fingerprint: dict, reuse_only: bool = False
) -> dict | None:
  target = {t.name: t for t in targets(p)}[key.target]
  if key.model == ZERO_SHOT:
    return zero_shot_cell(p, target, fingerprint, reuse_only)
  spec, selection = finetune_selection(p, target, key.gains)
  job = CellJob(target, key.gains, key.model, key.seed, spec, selection)
  return run_cell(p, job, fingerprint, reuse_only)


def run_stage(
  p: Protocol, stage: str, cell: int | None = None, command: str = "python -m launch.sim_to_real"
) -> dict:
  """One stage of the protocol (see STAGES); `cell` indexes cell_keys(p)."""
  if stage not in STAGES or stage == "all":
    raise AmpSpaceError(f"--stage={stage}: use one of {', '.join(STAGES[1:])} (or all)")
  t0 = time.time()
  fingerprint = code_fingerprint()
  check_configs(p)
  keys = cell_keys(p)
  if stage == "plan":
    return {
      "cells": len(keys),
      "scratch": sum(not k.needs_pretraining for k in keys),
      "keys": [dict(dataclasses.asdict(k), label=k.label()) for k in keys],
    }
  if stage == "data":
    prepare_data(p, fingerprint["code"])
    return {"data": p.workdir, "code": fingerprint["code"]}
  if not data_ready(p, fingerprint["code"]):
    raise AmpSpaceError(
      f"{p.workdir}: no data prepared by this code and these settings; run --stage=data first"
    )
  pretrain_dir = Paths(p.workdir).pretrain_run
  if stage == "pretrain":
    return pretrain(p, fingerprint)
  if stage == "cell":
    if cell is None or not 0 <= cell < len(keys):
      raise AmpSpaceError(
        f"--cell={cell}: this protocol has cells 0..{len(keys) - 1} (--stage=plan lists them)"
      )
    key = keys[cell]
    if key.needs_pretraining and not pretraining_ready(p, fingerprint):
      raise AmpSpaceError(
        f"cell {cell} ({key.label()}) starts from {pretrain_dir}, which this code has not "
        f"finished; run --stage=pretrain first"
      )
    out = run_cell_key(p, key, fingerprint)
    log(f"cell {cell}: {key.label()} ({'trained' if out['trained_now'] else 'reused'})")
    return out
  # report
  if not pretraining_ready(p, fingerprint):
    raise AmpSpaceError(f"{pretrain_dir}: pretraining not finished by this code")
  cells, missing = [], []
  for key in table_keys(p):
    c = run_cell_key(p, key, fingerprint, reuse_only=True)
    if c is None:
      missing.append(keys.index(key))
    else:
      cells.append(c)
  if missing:
    raise AmpSpaceError(
      f"{len(missing)} of {len(keys)} cells are not finished by this code: "
      f"--cell={','.join(map(str, sorted(missing)))}"
    )
  pre = read_json(os.path.join(pretrain_dir, RUN_FILE))
  invocation = {"stage": "report", "seconds": round(time.time() - t0, 1), "cells": len(cells)}
  return {"cells": cells, **report(p, cells, pre, command, fingerprint, invocation)}


# ---------------------------------------------------------------- workers of a TPU VM pod slice
# `--stage=worker --worker=I --num_workers=N`: one process per host of a pod slice (ampspace.launcher's
# tpu_sweep starts them), all sharing WORKDIR on a filesystem every host mounts. There is no
# scheduler between them, only the files the stages already write: worker 0 prepares the data
# and runs the pretraining; every worker trains its own cells (worker_assignment), waiting for
# the data and, before a fine-tuned cell, the pretraining; worker 0 then waits for every cell
# and writes the report. A worker that fails writes WORKER_FAILED_FILE, so the others stop
# waiting. Running the same command again reuses what this code and config finished.
WORKER_FAILED_FILE = "worker_failed.json"


def worker_assignment(p: Protocol, workers: int) -> list[list[int]]:
  """The cells (indices of cell_keys(p)) of each of `workers` workers. Worker 0 prepares the
  data and pretrains, so the from-scratch cells go round-robin to the other workers (to worker
  0 when it is alone), then the cells that start from the pretrained checkpoint round-robin to
  every worker, worker 0 first."""
  if workers < 1:
    raise AmpSpaceError(f"--workers={workers}: a pod slice has at least one worker")
  keys = cell_keys(p)
  others = list(range(1, workers)) or [0]
  out: list[list[int]] = [[] for _ in range(workers)]
  scratch = [i for i, k in enumerate(keys) if not k.needs_pretraining]
  tuned = [i for i, k in enumerate(keys) if k.needs_pretraining]
  for j, i in enumerate(scratch):
    out[others[j % len(others)]].append(i)
  for j, i in enumerate(tuned):
    out[j % workers].append(i)
  return out


class OtherWorkerFailed(AmpSpaceError):
  """Another worker recorded a failure: this one stops without recording its own."""


def wait_until(
  p: Protocol, ready, what: str, since: float, timeout: float, poll: float = 30.0
) -> None:
  """Returns once `ready()`; a failure another worker recorded after `since` (this worker's
  start), or `timeout` seconds, is a one-line error instead."""
  failed = os.path.join(p.workdir, WORKER_FAILED_FILE)
  deadline = since + timeout
  while not ready():
    if os.path.exists(failed):
      record = read_json(failed)
      if record.get("time", 0.0) >= since:
        raise OtherWorkerFailed(
          f"worker {record['worker']} failed ({record['stage']}: {record['error']}); "
          f"not waiting for {what}"
        )
    if time.time() > deadline:
      raise AmpSpaceError(
        f"waited {timeout / 3600:.3g} h for {what} in {p.workdir}; is every worker running?"
      )
    time.sleep(poll)


def run_worker(
  p: Protocol,
  worker: int,
  workers: int,
  command: str = "python -m launch.sim_to_real",
  timeout: float = 48 * 3600.0,
  poll: float = 30.0,
) -> dict:
  """One worker of a pod slice (see above); returns {worker, cells: [labels], [report]}."""
  if not 0 <= worker < workers:
    raise AmpSpaceError(f"--worker={worker}: the pod slice has workers 0..{workers - 1}")
  since = time.time()
  mine = worker_assignment(p, workers)[worker]
  stage = "data"
  try:
    fingerprint = code_fingerprint()
    code = fingerprint["code"]
    check_configs(p)
    keys = cell_keys(p)
    log(f"worker {worker}/{workers}: cells {','.join(map(str, mine)) or 'none'}")
    if worker == 0:
      prepare_data(p, code)
      stage = "pretrain"
      pre = pretrain(p, fingerprint)
    else:
      wait_until(
        p, lambda: data_ready(p, code), "the data (worker 0 prepares it)", since, timeout, poll
      )
    labels = []
    for i in mine:
      key, stage = keys[i], f"cell {i}"
      if key.needs_pretraining:
        wait_until(
          p,
          lambda: pretraining_ready(p, fingerprint),
          "the pretraining (worker 0 runs it)",
          since,
          timeout,
          poll,
        )
      out = run_cell_key(p, key, fingerprint)
      labels.append(key.label())
      log(
        f"worker {worker}: cell {i}: {key.label()} ({'trained' if out['trained_now'] else 'reused'})"
      )
    result: dict = {"worker": worker, "cells": labels}
    if worker == 0:
      stage = "report"
      found: dict[CellKey, dict] = {}  # the finished cells, each read once

      def all_cells_done() -> bool:
        for key in keys:
          if key not in found:
            cell = run_cell_key(p, key, fingerprint, reuse_only=True)
            if cell is not None:
              found[key] = cell
        return len(found) == len(keys)

      wait_until(p, all_cells_done, "every worker's cells", since, timeout, poll)
      cells = [found[key] for key in table_keys(p)]
      invocation = {
        "stage": f"worker x{workers}",
        "seconds": round(time.time() - since, 1),
        "cells": len(cells),
      }
      result["report"] = report(p, cells, pre, command, fingerprint, invocation)
    return result
  except (Exception, KeyboardInterrupt) as e:
    if not isinstance(e, OtherWorkerFailed):
      os.makedirs(p.workdir, exist_ok=True)
      error = str(e).splitlines()[0] if str(e) else type(e).__name__
      write_json(
        os.path.join(p.workdir, WORKER_FAILED_FILE),
        {"worker": worker, "stage": stage, "error": error, "time": time.time()},
      )
    raise


def load_protocol_file(path: str) -> dict:
  """Protocol fields from a JSON file (`--protocol`), lists made tuples; workdir excluded."""
  try:
    with open(path) as f:
      data = json.load(f)
  except OSError as e:
    raise AmpSpaceError(f"{path}: cannot read the protocol file ({e.strerror})") from None
  except json.JSONDecodeError as e:
    raise AmpSpaceError(f"{path}: not JSON ({e.msg}, line {e.lineno})") from None
  if not isinstance(data, dict):
    raise AmpSpaceError(f"{path}: expected a JSON object of protocol fields")
  known = {f.name for f in dataclasses.fields(Protocol)} - {"workdir"}
  unknown = sorted(set(data) - known)
  if unknown:
    raise AmpSpaceError(
      f"{path}: unknown protocol field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
    )

  def tuples(v):
    return tuple(tuples(x) for x in v) if isinstance(v, list) else v

  return {k: tuples(v) for k, v in data.items()}


# ---------------------------------------------------------------- command line
def define_flags() -> None:
  from absl import flags

  d = Protocol(workdir="")
  flags.DEFINE_string("workdir", None, "Everything goes here (default runs/sim_to_real[_local]).")
  flags.DEFINE_enum("scale", "runlocal", list(SCALES), "runlocal: CPU; paper: accelerators.")
  flags.DEFINE_bool("dry_run", False, "Print the commands of every step; run nothing.")
  flags.DEFINE_enum(
    "architecture",
    d.architecture,
    list(config_module(CONFIGS["pretrain"]).MODELS),
    "paper: Wave2WaveNet, 256 mu-law classes, squared EMD; nam_layout: NAM's standard WaveNet "
    "layout, regression (MSE) with the DC-free head. Both conditioned on device and knobs.",
  )
  flags.DEFINE_list("pretrain_devices", list(d.pretrain_devices), "Pretraining devices.")
  flags.DEFINE_list(
    "real_devices", list(d.real_devices), f"Stand-in 'real' devices, of {sorted(STAND_INS)}."
  )
  flags.DEFINE_string(
    "real_dir", "", "Recordings of a real device (release/csv/NAM layout); replaces the stand-ins."
  )
  flags.DEFINE_string("real_knob", d.real_knob, "The swept knob of --real_dir's recordings.")
  flags.DEFINE_string("pretrain_di_dir", "", "DI folder for pretraining (default: generated).")
  flags.DEFINE_string("real_di_dir", "", "DI folder for the stand-ins (default: generated).")
  flags.DEFINE_float("finetune_seconds_per_gain", None, "Fine-tune audio per gain setting.")
  flags.DEFINE_integer("pretrain_steps", None, "Override the pretrain config's steps.")
  flags.DEFINE_integer(
    "finetune_steps",
    None,
    "Override the fine-tune steps (baselines get pretrain + fine-tune steps).",
  )
  flags.DEFINE_list("seeds", [str(s) for s in d.seeds], "Seeds per cell.")
  flags.DEFINE_list(
    "models", list(d.models), f"Which models of each row to train, of {', '.join(MODELS)}."
  )
  flags.DEFINE_list(
    "rows", [gains_text(r, "+") for r in d.rows], "Fine-tune gain sets, e.g. 5,3+7,2+8."
  )
  flags.DEFINE_integer("workers", None, "Cells trained at once (one thread each).")
  flags.DEFINE_multi_string("set", [], "KEY=VALUE config override for every run.")
  flags.DEFINE_multi_string(
    "finetune_set",
    [],
    "KEY=VALUE config override for the fine-tuning runs only, e.g. optimizer.learning_rate=3e-3.",
  )
  flags.DEFINE_string("results_dir", "", "Also write the tables and plot here (docs/results).")
  flags.DEFINE_multi_string("update_doc", [], "Fill this file's table markers.")
  flags.DEFINE_string(
    "protocol", "", "JSON file of Protocol fields over the --scale preset (flags given win)."
  )
  flags.DEFINE_enum(
    "stage", "all", list(STAGES), "all: everything here; or one stage of a job array."
  )
  flags.DEFINE_integer("cell", None, "--stage=cell: which cell (default $SLURM_ARRAY_TASK_ID).")
  flags.DEFINE_integer("worker", None, "--stage=worker: this host's index in the pod slice.")
  flags.DEFINE_integer("num_workers", None, "--stage=worker: the pod slice's number of hosts.")
  flags.DEFINE_float(
    "wait_hours", 48.0, "--stage=worker: how long a worker waits for the others' stages."
  )
  flags.DEFINE_float("poll_seconds", 30.0, "--stage=worker: how often a waiting worker looks.")


def protocol_from_flags() -> Protocol:
  from absl import flags

  F = flags.FLAGS
  preset = dict(SCALES[F.scale])
  if F.protocol:
    preset.update(load_protocol_file(F.protocol))
  workdir = F.workdir or ("runs/sim_to_real_local" if F.scale == "runlocal" else "runs/sim_to_real")
  p = Protocol(workdir=os.path.abspath(workdir), **preset)

  def given(name: str) -> bool:  # with a protocol file, only the flags given override it
    return not F.protocol or F[name].present

  if given("architecture"):
    p.architecture = F.architecture
  if given("pretrain_devices"):
    p.pretrain_devices = tuple(F.pretrain_devices)
  if given("real_devices"):
    p.real_devices = tuple(F.real_devices)
  for name in ("real_dir", "real_knob", "pretrain_di_dir", "real_di_dir", "results_dir"):
    if given(name):
      setattr(p, name, F[name].value)
  if F.finetune_seconds_per_gain is not None:
    p.finetune_seconds_per_gain = F.finetune_seconds_per_gain
  for name in ("pretrain_steps", "finetune_steps"):
    if given(name):
      setattr(p, name, F[name].value)
  if given("models"):
    unknown = sorted(set(F.models) - set(MODELS))
    if unknown or not F.models:
      raise AmpSpaceError(f"--models {F.models}: use some of {', '.join(MODELS)}")
    p.models = tuple(m for m in MODELS if m in F.models)
  try:
    if given("seeds"):
      p.seeds = tuple(int(s) for s in F.seeds)
    if given("rows"):
      p.rows = tuple(tuple(float(g) for g in r.split("+")) for r in F.rows)
  except ValueError:
    raise AmpSpaceError(
      f"--seeds {F.seeds} / --rows {F.rows}: expected integers / gains joined by +"
    ) from None
  if F.workers is not None:
    p.workers = F.workers
  if given("set"):
    p.overrides = tuple(F.set)
  if given("update_doc"):
    p.update_docs = tuple(F.update_doc)
  if given("finetune_set"):
    p.finetune_overrides = tuple(F.finetune_set)
  return p


def main(argv):
  from absl import flags, logging

  @report_errors
  def _main():
    if len(argv) > 1:
      raise AmpSpaceError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    p = protocol_from_flags()
    if flags.FLAGS.dry_run:
      print("\n".join(dry_run_commands(p)))
      return
    command = "python -m launch.sim_to_real " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    stage = flags.FLAGS.stage
    if stage == "all":
      result = run_protocol(p, command)
      print(result["markdown"])
      print(f"finished in {result['seconds']} s; wrote:\n  " + "\n  ".join(result["files"]))
      return
    if stage == "worker":
      F = flags.FLAGS
      if F.worker is None or F.num_workers is None:
        raise AmpSpaceError("--stage=worker needs --worker=I and --num_workers=N")
      result = run_worker(
        p, F.worker, F.num_workers, command, F.wait_hours * 3600.0, F.poll_seconds
      )
      if "report" in result:
        print(result["report"]["markdown"])
        print("wrote:\n  " + "\n  ".join(result["report"]["files"]))
      return
    cell = flags.FLAGS.cell
    if stage == "cell" and cell is None:
      task = os.environ.get("SLURM_ARRAY_TASK_ID")
      if task is None:
        raise AmpSpaceError(
          "--stage=cell needs --cell=K (or SLURM_ARRAY_TASK_ID, as a job array sets)"
        )
      cell = int(task)
    result = run_stage(p, stage, cell, command)
    if stage == "plan":
      print(json.dumps(result))
    elif stage == "report":
      print(result["markdown"])
      print("wrote:\n  " + "\n  ".join(result["files"]))

  _main()
