"""`python -m launch.sim_to_real --scale=runlocal --workdir=runs/sim_to_real_local`: paper Table 3.

The whole sim-to-real gain-interpolation protocol, resumable:

1. DIs: generated plucked-string phrases (or --pretrain_di_dir / --real_di_dir), two disjoint
   sets, so no DI of the "real" recordings was seen in pretraining;
2. pretraining data: every --pretrain_devices device (native amps with a gain knob) rendered
   with `one_knob_random:gain@N` (the gain over 1..10 while the other knobs take random dials)
   into a release-layout folder, built as `amp_space/synthetic` in its own data_dir;
3. "real" recordings: --real_dir (release, data.csv or NAM layout), or, by default, the held-out
   --heldout_device rendered at the table's gains and relabelled as a recording (device name
   not in the vocabulary, source `real`), built through the `real` config, which validates and
   latency-corrects it like any user recording. One build serves every row: the rows are
   `dataset.filter` slices of it (gain, and the DIs that make up --finetune_seconds_per_gain);
4. pretrain once (configs/sim_to_real_pretrain.py);
5. per row of Table 3 (fine-tune gains {5}, {3,7}, {2,8}): fine-tune the pretrained model
   (configs/sim_to_real_finetune.py) and train the baseline from scratch on the same data
   (configs/sim_to_real_baseline.py); evaluate both on the held-out DIs of the test split at
   test gains 5, {4,6}, {3,7}, {2,8};
6. the table (Markdown and CSV: MSE ×1e-3 as in the paper, plus ESR) and a plot of MSE against
   |gain - 5| into WORKDIR/results (and --results_dir), and the table into every
   --update_doc file between its `<!-- sim_to_real:table:begin/end -->` markers.

Every finished cell (a run's `done.json`, a cell's `cell.json`) is skipped when run again.
`--dry_run` prints the equivalent shell commands of every step and runs nothing.

What the model sees for the "real" device: its name is not in DEVICE_VOCAB, so its device
one-hot is index 0 ("other"), which no pretraining example carried; its knobs (gain and the
amp's tone knobs at their defaults) and attributes (tube types, tone stack) use the same slots
as the pretraining amps. Fine-tuning therefore has to learn the "other" row of each layer's
conditioning projection, and the gain slot's meaning transfers from pretraining.
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import io
import json
import os
import shlex
import sys
import tempfile
import time

import numpy as np
import yaml

from ampspace.errors import AmpSpaceError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {"pretrain": "configs/sim_to_real_pretrain.py",
           "pretrained": "configs/sim_to_real_finetune.py",
           "baseline": "configs/sim_to_real_baseline.py"}
MODELS = ("baseline", "pretrained")  # the table's order
PAPER_ROWS = ((5.0,), (3.0, 7.0), (2.0, 8.0))
PAPER_TEST_GROUPS = ((5.0,), (4.0, 6.0), (3.0, 7.0), (2.0, 8.0))
# Paper Table 3 (MSE ×1e-3), fine-tuned on gain 5; quoted for comparison, never measured here.
PAPER_REFERENCE = {"baseline": (0.05, 0.33, 0.81, 2.10), "pretrained": (0.005, 0.023, 0.017, 0.064)}
DONE_FILE, CELL_FILE = "done.json", "cell.json"
TABLE_BEGIN, TABLE_END = "<!-- sim_to_real:table:begin -->", "<!-- sim_to_real:table:end -->"
HELDOUT_PREFIX = "heldout_"


@dataclasses.dataclass
class Protocol:
  """Everything the protocol depends on; `SCALES` holds the two presets."""
  workdir: str
  scale: str = "runlocal"                  # config argument: "runlocal" or "" (paper)
  gain_knob: str = "gain"
  # Native amps with a gain knob. tube_amp_4x12 is left out: at high gain up to 6% of its
  # output samples sit at full scale, which the strict builder rejects as clipped.
  pretrain_devices: tuple[str, ...] = ("tube_amp", "tube_amp_fender", "tube_amp_mesa",
                                       "tube_amp_12at7")
  heldout_device: str = "tube_amp_el84"
  pretrain_series: int = 1                 # one_knob_random:gain@N: N random contexts per DI
  pretrain_dis: int = 10
  pretrain_di_seconds: float = 2.0
  real_dis: int = 16
  real_di_seconds: float = 3.0
  finetune_seconds_per_gain: float = 12.0  # the paper: about 120 s per setting
  rows: tuple[tuple[float, ...], ...] = PAPER_ROWS
  test_groups: tuple[tuple[float, ...], ...] = PAPER_TEST_GROUPS
  center_gain: float = 5.0
  pretrain_steps: int | None = None        # None: the config's
  finetune_steps: int | None = None
  overrides: tuple[str, ...] = ()          # KEY=VALUE config overrides for every run
  real_dir: str = ""                       # user recordings; "" renders the held-out device
  pretrain_di_dir: str = ""
  real_di_dir: str = ""
  results_dir: str = ""                    # extra copy of the table and plot (docs/results)
  update_docs: tuple[str, ...] = ()
  seed: int = 0


SCALES = {
    "runlocal": {},
    # 50 DIs x 10 s x 4 amps x 10 gains x 2 contexts: 11 h of pairs, about 7 GB as int16.
    "paper": dict(scale="", pretrain_series=2, pretrain_dis=50, pretrain_di_seconds=10.0,
                  real_dis=20, real_di_seconds=10.0, finetune_seconds_per_gain=120.0),
}


def log(msg: str) -> None:
  print(msg, file=sys.stderr, flush=True)


def gains_text(gains, sep: str = ",") -> str:
  return sep.join(f"{g:g}" for g in gains)


def group_label(gains) -> str:
  return gains_text(gains) if len(gains) == 1 else "{" + gains_text(gains) + "}"


def row_name(gains) -> str:
  return "ft_" + gains_text(gains, "_")


def atomic_write(path: str, text: str | bytes) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".tmp")
  with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as f:
    f.write(text)
  os.replace(tmp, path)


def write_json(path: str, data) -> None:
  atomic_write(path, json.dumps(data, indent=2) + "\n")


# ---------------------------------------------------------------- paths and commands
@dataclasses.dataclass(frozen=True)
class Paths:
  root: str

  @property
  def pretrain_di(self): return os.path.join(self.root, "di", "pretrain")
  @property
  def real_di(self): return os.path.join(self.root, "di", "real")
  @property
  def pretrain_rendered(self): return os.path.join(self.root, "rendered", "pretrain")
  @property
  def recordings(self): return os.path.join(self.root, "recordings")
  @property
  def pretrain_data(self): return os.path.join(self.root, "tfds", "pretrain")
  @property
  def real_data(self): return os.path.join(self.root, "tfds", "real")
  @property
  def pretrain_run(self): return os.path.join(self.root, "pretrain")
  @property
  def results(self): return os.path.join(self.root, "results")

  def run(self, gains, model: str) -> str:
    return os.path.join(self.root, "rows", row_name(gains), model)


def all_gains(p: Protocol) -> tuple[float, ...]:
  return tuple(sorted({g for r in p.rows for g in r} | {g for t in p.test_groups for g in t}))


def config_arg(p: Protocol, gains=None) -> str:
  parts = [p.scale] if p.scale else []
  if gains is not None:
    parts.append("gains=" + gains_text(gains, "+"))
  return ",".join(parts)


def run_overrides(p: Protocol, kind: str, gains=None, finetune_filter: str | None = None
                  ) -> dict[str, str]:
  """Config overrides (dotted key -> text, as on the command line) of one training run."""
  paths = Paths(p.workdir)
  o: dict[str, str] = {}
  if kind == "pretrain":
    o["dataset.data_dir"] = paths.pretrain_data
    o["dataset.manual_dir"] = paths.pretrain_rendered
    if p.pretrain_steps:
      o["train.steps"] = str(p.pretrain_steps)
  else:
    o["dataset.data_dir"] = paths.real_data
    o["dataset.manual_dir"] = real_root(p)
    o["dataset.filter"] = finetune_filter or f"{p.gain_knob}={gains_text(gains)}"
    if kind == "pretrained":
      o["init_from"] = paths.pretrain_run
    if p.finetune_steps:
      o["train.steps"] = str(p.finetune_steps)
  for item in p.overrides:
    key, sep, value = item.partition("=")
    if not sep or not key:
      raise AmpSpaceError(f"--set {item!r}: expected KEY=VALUE, e.g. model.channels=8")
    o[key.removeprefix("config.")] = value
  return o


def train_command(p: Protocol, kind: str, workdir: str, gains=None, finetune_filter=None) -> str:
  arg = config_arg(p, gains if kind != "pretrain" else None)
  config = CONFIGS[kind] + (f":{arg}" if arg else "")
  parts = ["python", "-m", "ampspace.train", f"--config={config}", f"--workdir={workdir}"]
  parts += [f"--config.{k}={v}" for k, v in run_overrides(p, kind, gains, finetune_filter).items()]
  return " ".join(shlex.quote(x) for x in parts)


def load_run_config(p: Protocol, kind: str, gains=None, finetune_filter=None):
  """The config `train_command` describes, built in this process (same file, arg, overrides)."""
  from ampspace.config_files import load_config

  config = load_config(os.path.join(REPO, CONFIGS[kind]),
                       config_arg(p, gains if kind != "pretrain" else None))
  for key, text in run_overrides(p, kind, gains, finetune_filter).items():
    parent, _, leaf = key.rpartition(".")
    node = config
    for part in filter(None, parent.split(".")):
      if part not in node:
        raise AmpSpaceError(f"override {key}: no such config key {part!r}")
      node = node[part]
    if leaf not in node:
      raise AmpSpaceError(f"override {key}: no such config key {leaf!r}")
    node[leaf] = typed_value(node[leaf], text, key)
  return config


def typed_value(old, text: str, key: str):
  """`text` read as the type of the config's current value, as config_flags does."""
  if isinstance(old, str):
    return text
  value = yaml.safe_load(text)
  if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
    return float(value)
  if type(value) is not type(old):
    raise AmpSpaceError(f"override {key}={text}: expected a {type(old).__name__}")
  return value


def real_root(p: Protocol) -> str:
  return os.path.abspath(p.real_dir) if p.real_dir else Paths(p.workdir).recordings


# ---------------------------------------------------------------- data
def make_dis(out: str, num: int, seconds: float, prefix: str, seed: int) -> None:
  from ampspace.audio.wav_io import write_wav
  from ampspace.di import karplus

  os.makedirs(out, exist_ok=True)
  for i in range(num):
    path = os.path.join(out, f"{prefix}_{i:04d}.wav")
    if not os.path.exists(path):
      write_wav(path, karplus.phrase(seed * 100003 + i, seconds))


def pretrain_sweep(p: Protocol) -> str:
  return f"one_knob_random:{p.gain_knob}@{p.pretrain_series}"


def real_sweep(p: Protocol) -> str:
  return f"one_knob:{p.gain_knob}={gains_text(all_gains(p))}"


def relabel_as_recording(root: str, device_name: str) -> int:
  """Turns a rendered release-layout folder into what a user's recordings would look like: a
  device name outside the vocabulary, brand `recorded`, source `real`. Idempotent."""
  n = 0
  for path in sorted(glob.glob(os.path.join(root, "**", "settings.yaml"), recursive=True)):
    with open(path) as f:
      meta = yaml.safe_load(f)
    if meta.get("device", "").startswith(HELDOUT_PREFIX):
      continue
    meta.update(device=HELDOUT_PREFIX + device_name, brand="recorded", source="real",
                data_type="real")
    atomic_write(path, yaml.safe_dump(meta, sort_keys=False))
    n += 1
  return n


def data_commands(p: Protocol) -> list[str]:
  paths = Paths(p.workdir)
  q = lambda parts: " ".join(shlex.quote(x) for x in parts)
  cmds = []
  for i, device in enumerate(p.pretrain_devices):
    cmds.append(q(["python", "-m", "ampspace.render", f"--device={device}",
                   f"--sweep={pretrain_sweep(p)}", f"--di={p.pretrain_di_dir or paths.pretrain_di}",
                   f"--out={paths.pretrain_rendered}", f"--seed={p.seed + i}"]))
  if not p.real_dir:
    cmds.append(q(["python", "-m", "ampspace.render", f"--device={p.heldout_device}",
                   f"--sweep={real_sweep(p)}", f"--di={p.real_di_dir or paths.real_di}",
                   f"--out={paths.recordings}"])
                + f"  # then relabelled as device {HELDOUT_PREFIX}{p.heldout_device}, source real")
  for config, data_dir, manual in (("synthetic", paths.pretrain_data, paths.pretrain_rendered),
                                   ("real", paths.real_data, real_root(p))):
    cmds.append(q(["python", "-m", "tfds_ampspace.build", "tfds_ampspace/amp_space",
                   f"--config={config}", "--file_format=array_record", f"--data_dir={data_dir}",
                   f"--manual_dir={manual}"]))
  return cmds


def prepare_data(p: Protocol) -> None:
  from ampspace import render
  from ampspace.data import sources

  paths = Paths(p.workdir)
  if not p.pretrain_di_dir:
    make_dis(paths.pretrain_di, p.pretrain_dis, p.pretrain_di_seconds, "pre", p.seed + 1)
  if not p.real_di_dir and not p.real_dir:
    make_dis(paths.real_di, p.real_dis, p.real_di_seconds, "real", p.seed + 2)
  workers = min(16, os.cpu_count() or 1)
  for i, device in enumerate(p.pretrain_devices):
    if device == p.heldout_device:
      raise AmpSpaceError(f"--pretrain_devices includes the held-out device {device!r}")
    render.render(device, pretrain_sweep(p), p.pretrain_di_dir or paths.pretrain_di,
                  paths.pretrain_rendered, seed=p.seed + i, workers=workers, progress=False)
  if not p.real_dir:
    render.render(p.heldout_device, real_sweep(p), p.real_di_dir or paths.real_di,
                  paths.recordings, workers=workers, progress=False)
    relabel_as_recording(paths.recordings, p.heldout_device)
  for kind in ("pretrain", "baseline"):
    config = load_run_config(p, kind, p.rows[0])
    config.dataset.build_if_missing = True
    config.dataset.filter = ""
    log(f"build {config.dataset.name} in {config.dataset.data_dir}")
    sources.ensure_built(config.dataset)


def annotation_table(data_dir: str, split: str) -> list[dict]:
  """di_id, seconds and knob values of every record of a split of the real dataset (no audio)."""
  import tensorflow_datasets as tfds
  import tfds_ampspace  # noqa: F401
  from tensorflow_datasets.core.data_sources import array_record

  from ampspace.conditioning import canonical_knob

  builder = tfds.builder("amp_space/real", data_dir=data_dir)
  if split not in builder.info.splits:
    return []
  skip = {k: tfds.decode.SkipDecoding() for k in ("di", "output")}
  source = array_record.ArrayRecordDataSource(builder.info, split=split, decoders=skip)
  out = []
  for i in range(len(source)):
    r = source[i]
    text = lambda v: v.decode() if isinstance(v, bytes) else str(v)
    out.append({"di_id": text(r["di_id"]),
                "seconds": (int(r["di_end"]) - int(r["di_start"])) / 44100.0,
                "knobs": {canonical_knob(text(n)): float(v)
                          for n, v in zip(r["knob_names"], r["knob_values"])}})
  return out


def finetune_selection(p: Protocol, gains) -> tuple[str, dict]:
  """The row's `dataset.filter` and what it selects: the first training DIs (by id) that give
  at least --finetune_seconds_per_gain at every fine-tune gain, plus every validation DI."""
  data_dir = Paths(p.workdir).real_data
  train = annotation_table(data_dir, "train")
  knob = p.gain_knob
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
  return spec, {"train_dis": chosen, "seconds_per_gain": {f"{g:g}": round(s, 3)
                                                          for g, s in seconds.items()}}


# ---------------------------------------------------------------- runs
def train_once(p: Protocol, kind: str, workdir: str, gains=None, finetune_filter=None) -> dict:
  """Trains one run unless its done.json exists; returns done.json's content."""
  done = os.path.join(workdir, DONE_FILE)
  if os.path.exists(done):
    log(f"skip (done): {workdir}")
    with open(done) as f:
      return json.load(f)
  from ampspace.trainers import get_trainer

  config = load_run_config(p, kind, gains, finetune_filter)
  log(f"train: {train_command(p, kind, workdir, gains, finetune_filter)}")
  t0 = time.time()
  result = get_trainer(config.trainer)(config, workdir)
  losses = [h["loss"] for h in result["history"]]
  k = max(1, len(losses) // 10)
  info = {"kind": kind, "steps": result["steps"], "seconds": round(time.time() - t0, 1),
          "loss_first": float(np.mean(losses[:k])) if losses else None,
          "loss_last": float(np.mean(losses[-k:])) if losses else None,
          "command": train_command(p, kind, workdir, gains, finetune_filter)}
  write_json(done, info)
  return info


def evaluate_cell(p: Protocol, kind: str, workdir: str, gains) -> dict:
  """MSE/ESR of a trained run on the test split's held-out DIs, per test-gain group.

  One `ampspace.evaluate` pass over the test clips at every test gain (a filtered split); the
  clips come back in the filtered source's index order, so each is matched to its gain."""
  from ampspace import evaluate
  from ampspace.data import filters

  test_gains = sorted({g for t in p.test_groups for g in t})
  config = load_run_config(p, kind, gains)
  config.dataset.filter = f"{p.gain_knob}={gains_text(test_gains)}"
  result = evaluate.evaluate(workdir, split="test", config=config,
                             out_dir=os.path.join(workdir, "eval", "test_gains"))
  table = annotation_table(config.dataset.data_dir, "test")
  wanted = lambda a: any(abs(a["knobs"].get(p.gain_knob, np.nan) - g) <= filters.KNOB_TOLERANCE
                         for g in test_gains)
  clip_gains = [a["knobs"][p.gain_knob] for a in table if wanted(a)]
  if len(clip_gains) != len(result["clips"]):
    raise AmpSpaceError(f"{workdir}: evaluated {len(result['clips'])} clips, expected "
                        f"{len(clip_gains)} test clips at {p.gain_knob}={test_gains}")
  groups = {}
  for group in p.test_groups:
    clips = [c for c, g in zip(result["clips"], clip_gains) if any(abs(g - x) <= 1e-4 for x in group)]
    if not clips:
      raise AmpSpaceError(f"{config.dataset.data_dir}: no test clip at {p.gain_knob}={group}")
    groups[group_label(group)] = {"clips": len(clips),
                                  **{m: float(np.mean([c[m] for c in clips]))
                                     for m in ("mse", "esr", "mr_stft")}}
  return {"step": result["step"], "groups": groups}


def run_cell(p: Protocol, gains, kind: str, finetune_filter: str, selection: dict) -> dict:
  workdir = Paths(p.workdir).run(gains, kind)
  cell_path = os.path.join(workdir, CELL_FILE)
  if os.path.exists(cell_path):
    log(f"skip (cell done): {workdir}")
    with open(cell_path) as f:
      return {**json.load(f), "skipped": True}
  train = train_once(p, kind, workdir, gains, finetune_filter)
  cell = {"finetune_gains": list(gains), "model": kind, "train": train, **selection,
          **evaluate_cell(p, kind, workdir, gains)}
  write_json(cell_path, cell)
  return cell


# ---------------------------------------------------------------- table and plot
def table_rows(p: Protocol, cells: list[dict]) -> list[dict]:
  """Long format: one row per (fine-tune gains, model, test group)."""
  rows = []
  for cell in cells:
    for group in p.test_groups:
      g = cell["groups"][group_label(group)]
      rows.append({"finetune_gains": group_label(cell["finetune_gains"]), "model": cell["model"],
                   "test_gains": group_label(group), "clips": g["clips"],
                   "mse_x1e3": round(1e3 * g["mse"], 5), "esr": round(g["esr"], 5),
                   "mr_stft": round(g["mr_stft"], 4),
                   "finetune_seconds_per_gain": min(cell["seconds_per_gain"].values()),
                   "steps": cell["train"]["steps"]})
  return rows


def csv_text(rows: list[dict]) -> str:
  buf = io.StringIO()
  writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
  writer.writeheader()
  writer.writerows(rows)
  return buf.getvalue()


def markdown_table(p: Protocol, cells: list[dict], command: str) -> str:
  labels = [group_label(t) for t in p.test_groups]
  head = ("| fine-tune gains | model | " + " | ".join(labels) + " | "
          + " | ".join(f"ESR {l}" for l in labels) + " |")
  lines = [f"MSE ×1e-3 (and ESR, pre-emphasised) on held-out DIs at each test gain. "
           f"Generated by `{command}`; do not edit by hand.", "", head,
           "|---|---|" + "---:|" * (2 * len(labels))]
  for cell in cells:
    g = [cell["groups"][l] for l in labels]
    lines.append(f"| {group_label(cell['finetune_gains'])} | {cell['model']} | "
                 + " | ".join(f"{1e3 * x['mse']:.3f}" for x in g) + " | "
                 + " | ".join(f"{x['esr']:.3f}" for x in g) + " |")
  if cells:
    c = cells[0]
    secs = [v for cell in cells for v in cell["seconds_per_gain"].values()]
    dis = sorted({len(cell.get("train_dis", [])) for cell in cells})
    clips = ", ".join(f"{l}: {c['groups'][l]['clips']}" for l in labels)
    span = f"{min(secs):.1f}" + (f"–{max(secs):.1f}" if max(secs) - min(secs) >= 0.05 else "")
    lines += ["", f"Fine-tune audio per gain: {span} s "
              f"({'/'.join(map(str, dis))} training DIs); test clips per group: {clips}; "
              f"training steps: pretrain {c.get('pretrain_steps', '?')}, fine-tune and "
              f"baseline {c['train']['steps']} each."]
  if tuple(p.test_groups) == PAPER_TEST_GROUPS:
    lines += ["", "Paper (Naradowsky 2021, Table 3, MSE ×1e-3, fine-tuned on gain 5; quoted, not "
              "measured here): baseline " + " / ".join(f"{v:g}" for v in PAPER_REFERENCE["baseline"])
              + "; pretrained " + " / ".join(f"{v:g}" for v in PAPER_REFERENCE["pretrained"]) + "."]
  return "\n".join(lines) + "\n"


def plot_png(p: Protocol, cells: list[dict]) -> bytes:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(6, 4))
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  for cell in cells:
    row = [tuple(r) for r in p.rows].index(tuple(cell["finetune_gains"]))
    x = [abs(t[0] - p.center_gain) for t in p.test_groups]
    y = [1e3 * cell["groups"][group_label(t)]["mse"] for t in p.test_groups]
    ax.plot(x, y, marker="o", color=colors[row % len(colors)],
            linestyle="-" if cell["model"] == "pretrained" else "--",
            label=("pretrained, fine-tuned" if cell["model"] == "pretrained"
                   else "baseline, trained") + f" on {group_label(cell['finetune_gains'])}")
  ax.set_yscale("log")
  ax.set_xticks(sorted({abs(t[0] - p.center_gain) for t in p.test_groups}))
  ax.set_xlabel(f"|{p.gain_knob} − {p.center_gain:g}| of the test clips")
  ax.set_ylabel("MSE ×1e-3")
  ax.set_title("Sim-to-real gain interpolation (held-out DIs)")
  ax.grid(True, which="both", alpha=0.3)
  ax.legend(fontsize=7)
  fig.tight_layout()
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=110)
  plt.close(fig)
  return buf.getvalue()


def replace_between_markers(path: str, block: str) -> None:
  """Replaces what lies between the marker lines (each alone on its line; a marker quoted in
  running text is left alone)."""
  with open(path) as f:
    lines = f.read().split("\n")
  try:
    begin = lines.index(TABLE_BEGIN)
    end = lines.index(TABLE_END, begin)
  except ValueError:
    raise AmpSpaceError(f"{path}: no {TABLE_BEGIN} ... {TABLE_END} marker lines to fill") from None
  lines[begin + 1:end] = block.rstrip("\n").split("\n")
  atomic_write(path, "\n".join(lines))


def write_results(p: Protocol, cells: list[dict], command: str) -> dict:
  outputs = {"sim_to_real_table.md": markdown_table(p, cells, command),
             "sim_to_real_table.csv": csv_text(table_rows(p, cells)),
             "sim_to_real_mse_vs_gain.png": plot_png(p, cells)}
  written = []
  for folder in filter(None, (Paths(p.workdir).results, p.results_dir)):
    for name, content in outputs.items():
      atomic_write(os.path.join(folder, name), content)
      written.append(os.path.join(folder, name))
  for doc in p.update_docs:
    replace_between_markers(doc, outputs["sim_to_real_table.md"])
    written.append(doc)
  return {"files": written, "markdown": outputs["sim_to_real_table.md"]}


# ---------------------------------------------------------------- protocol
def check_configs(p: Protocol) -> None:
  """Loads every run's config with its overrides, so a typo fails before any work starts."""
  for kind in CONFIGS:
    for gains in (p.rows if kind != "pretrain" else [None]):
      load_run_config(p, kind, gains)


def dry_run_commands(p: Protocol) -> list[str]:
  check_configs(p)
  paths = Paths(p.workdir)
  cmds = data_commands(p) + [train_command(p, "pretrain", paths.pretrain_run)]
  for gains in p.rows:
    spec = (f"{p.gain_knob}={gains_text(gains)};di_id=<training DIs giving "
            f"{p.finetune_seconds_per_gain:g} s per gain + validation DIs, chosen after the build>")
    for kind in ("pretrained", "baseline"):
      cmds.append(train_command(p, kind, paths.run(gains, kind), gains, spec))
  return cmds


def run_protocol(p: Protocol, command: str = "python -m launch.sim_to_real") -> dict:
  t0 = time.time()
  check_configs(p)
  paths = Paths(p.workdir)
  log("=== data: DIs, pretraining renders, real recordings, builds")
  prepare_data(p)
  log("=== pretrain")
  pre = train_once(p, "pretrain", paths.pretrain_run)
  cells = []
  for gains in p.rows:
    spec, selection = finetune_selection(p, gains)
    for kind in MODELS:
      log(f"=== row {group_label(gains)}: {kind}")
      cell = run_cell(p, gains, kind, spec, selection)
      cell["pretrain_steps"] = pre["steps"]
      cells.append(cell)
  out = write_results(p, cells, command)
  # Every invocation is appended, so the first (full) run's wall time survives reruns.
  manifest_path = os.path.join(paths.results, "protocol.json")
  invocations = []
  if os.path.exists(manifest_path):
    with open(manifest_path) as f:
      invocations = json.load(f).get("invocations", [])
  seconds = round(time.time() - t0, 1)
  invocations.append({"command": command, "seconds": seconds,
                      "trained": sum(not c.get("skipped") for c in cells),
                      "finished": time.strftime("%Y-%m-%d %H:%M:%S")})
  manifest = {"protocol": dataclasses.asdict(p), "pretrain": pre, "invocations": invocations,
              "results": out["files"]}
  for folder in filter(None, (paths.results, p.results_dir)):
    write_json(os.path.join(folder, "protocol.json"), manifest)
  return {"cells": cells, **out, "seconds": seconds}


# ---------------------------------------------------------------- command line
def define_flags() -> None:
  from absl import flags

  d = Protocol(workdir="")
  flags.DEFINE_string("workdir", None, "Everything goes here (default runs/sim_to_real[_local]).")
  flags.DEFINE_enum("scale", "runlocal", list(SCALES), "runlocal: CPU; paper: accelerators.")
  flags.DEFINE_bool("dry_run", False, "Print the commands of every step; run nothing.")
  flags.DEFINE_string("gain_knob", d.gain_knob, "The swept knob.")
  flags.DEFINE_list("pretrain_devices", list(d.pretrain_devices), "Pretraining devices.")
  flags.DEFINE_string("heldout_device", d.heldout_device, "Device rendered as the 'real' one.")
  flags.DEFINE_string("real_dir", "", "Recordings of a real device (release/csv/NAM layout).")
  flags.DEFINE_string("pretrain_di_dir", "", "DI folder for pretraining (default: generated).")
  flags.DEFINE_string("real_di_dir", "", "DI folder for the held-out device (default: generated).")
  flags.DEFINE_float("finetune_seconds_per_gain", None, "Fine-tune audio per gain setting.")
  flags.DEFINE_integer("pretrain_steps", None, "Override the pretrain config's steps.")
  flags.DEFINE_integer("finetune_steps", None, "Override fine-tune/baseline steps.")
  flags.DEFINE_multi_string("set", [], "KEY=VALUE config override for every run.")
  flags.DEFINE_string("results_dir", "", "Also write the table and plot here (docs/results).")
  flags.DEFINE_multi_string("update_doc", [], "Fill this file's table markers.")


def protocol_from_flags() -> Protocol:
  from absl import flags

  F = flags.FLAGS
  preset = dict(SCALES[F.scale])
  workdir = F.workdir or ("runs/sim_to_real_local" if F.scale == "runlocal" else "runs/sim_to_real")
  p = Protocol(workdir=os.path.abspath(workdir), **preset)
  p.gain_knob, p.heldout_device = F.gain_knob, F.heldout_device
  p.pretrain_devices = tuple(F.pretrain_devices)
  p.real_dir, p.pretrain_di_dir, p.real_di_dir = F.real_dir, F.pretrain_di_dir, F.real_di_dir
  if F.finetune_seconds_per_gain is not None:
    p.finetune_seconds_per_gain = F.finetune_seconds_per_gain
  p.pretrain_steps, p.finetune_steps = F.pretrain_steps, F.finetune_steps
  p.overrides, p.results_dir, p.update_docs = tuple(F.set), F.results_dir, tuple(F.update_doc)
  return p


def main(argv):
  from absl import logging

  from ampspace.errors import report_errors

  @report_errors
  def _main():
    if len(argv) > 1:
      raise AmpSpaceError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    p = protocol_from_flags()
    if flags_dry_run():
      print("\n".join(dry_run_commands(p)))
      return
    command = "python -m launch.sim_to_real " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result = run_protocol(p, command)
    print(result["markdown"])
    print(f"finished in {result['seconds']} s; wrote:\n  " + "\n  ".join(result["files"]))

  _main()


def flags_dry_run() -> bool:
  from absl import flags
  return flags.FLAGS.dry_run


if __name__ == "__main__":
  from absl import app

  define_flags()
  app.run(main)
