"""NAM's standard WaveNet trained by NAM's own recipe (PyTorch Lightning) on wall-clock budgets.

  .venv-nam/bin/python benchmarks/nam_recipe.py \\
    --train_x TRAIN_IN.wav --train_y TRAIN_OUT.wav --val_x VAL_IN.wav --val_y VAL_OUT.wav \\
    --budgets 120,300,600 --out OUT_DIR [--seed 0] [--threads 2] [--delay 0]

The NAM contender of `benchmarks/bench_accuracy.py`. Runs ONLY under the `.venv-nam` interpreter
(torch, pytorch_lightning, nam; see `benchmarks/setup_nam_venv.sh`) and imports nothing from the
project's `ampspace` package.

What is NAM's and what is ours:

- model: `nam.train.lightning_module.LightningModule.init_from_config` on the classic "standard"
  WaveNet (two layer arrays, 16 then 8 channels, kernel 3, dilations 1..512, tanh, not gated,
  head_scale 0.02; receptive field 4093), with the loss / optimizer / lr_scheduler of the
  installed NAM's simplified trainer (`nam/train/_resources/config_model_packed.json`: training
  loss MSE + 5e-4 * multi-resolution STFT, validation loss ESR, Adam lr 0.004 with weight decay
  3.17e-7, ExponentialLR gamma 0.994 stepped once per epoch) -- only the net is swapped from the
  packed WaveNet that file names to the standard one;
- data: `nam.data.init_dataset` on a data config shaped like `nam.train.core._get_data_config`'s
  ("common" delay and nx = the model's receptive field, as `core._get_dataloaders` sets it;
  train ny 8192, validation ny None = the whole validation pair as one datum), but with separate
  x_path / y_path per split (our train and validation pairs are separate files) and WITHOUT the
  `normalize_joint_dataset_output` joint hook, so the model predicts the recording's own level;
  dataset <-> model handshakes as in `core._get_dataloaders`;
- loop: `pytorch_lightning.Trainer.fit` as `core.train` runs it (batch 16, shuffle, drop_last,
  num_workers 0, validation once per epoch, Lightning's default sanity-check validation first),
  on the CPU, with no logger, progress bar or checkpoint files;
- ours: a callback that enforces the wall-clock budgets, keeps the best-by-validation-ESR
  weights in memory (what NAM's `ModelCheckpoint(monitor="val_loss")` + reload-best does through
  files), and exports `.nam` files with NAM's own `Exportable.export` at each budget.

Budgets: the clock starts right before `trainer.fit` (imports, WAV loading and model building are
excluded; their seconds are reported as `setup_seconds`). Everything inside fit counts --
Lightning's start-up, the sanity-check validation, training steps and the per-epoch validations
(part of NAM's recipe) -- except the `.nam` exports, around which the clock is paused. At each
budget b (increasing), as soon as a training batch ends (or a validation ends) with elapsed >= b,
the best-so-far weights by validation ESR -- or, if no validation has run yet, the current ones --
are exported as `OUT_DIR/nam_{b}s.nam`. A validation that finishes after b is not used for b.
Training stops at the largest budget. `OUT_DIR/nam_recipe.json` records what was exported when.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import sys
import time
import warnings
import wave

import numpy as np

# NAM's classic "standard" WaveNet: the literal bench_training.py times (this script's folder
# is on sys.path when it runs, and that module imports nothing but the standard library).
from bench_training import NAM_STANDARD_CONFIG  # noqa: E402

# NAM's simplified-trainer defaults (nam.train.core.train: batch_size=16, ny=_NY_DEFAULT=8192).
BATCH_SIZE = 16
NY = 8192
# Used only if the installed NAM has no packed model config to read them from (NAM 0.13's values).
FALLBACK_TRAINING_RECIPE = {
  "loss": {"val_loss": "esr", "mrstft_weight": 0.0005},
  "optimizer": {"lr": 0.004, "weight_decay": 3.17e-07},
  "lr_scheduler": {"class": "ExponentialLR", "kwargs": {"gamma": 0.994}},
}


class InputError(ValueError):
  """A one-line problem with an input file (missing, unreadable, mismatched)."""


# ------------------------------------------------------------------------------ inputs
def _wav_info(path: str) -> tuple[int, int, int, int]:
  """(frames, channels, rate, sample width) of a PCM WAV, read from its header."""
  if not os.path.isfile(path):
    raise InputError(f"{path}: no such file")
  try:
    with wave.open(path, "rb") as w:
      return w.getnframes(), w.getnchannels(), w.getframerate(), w.getsampwidth()
  except (wave.Error, EOFError) as e:
    raise InputError(f"{path}: not a readable PCM WAV ({e})") from None


def _peak(path: str) -> float:
  """Largest |sample| of a 16-bit PCM WAV on NAM's scale (int / 2**15)."""
  with wave.open(path, "rb") as w:
    raw = w.readframes(w.getnframes())
  a = np.frombuffer(raw, dtype="<i2")
  return float(np.abs(a.astype(np.int32)).max(initial=0)) / 2.0**15


def check_pair(x_path: str, y_path: str) -> int:
  """Validate an input/output pair before NAM reads it; returns its length in samples.

  NAM's own errors for these cases are multi-line (unequal lengths) or don't name the file
  (its "Output clipped." check), so we check first and raise one-line errors naming the file.
  """
  (nx, cx, rx, wx), (ny, cy, ry, wy) = _wav_info(x_path), _wav_info(y_path)
  for path, c, w in ((x_path, cx, wx), (y_path, cy, wy)):
    if c != 1:
      raise InputError(f"{path}: {c} channels, expected mono")
    if w != 2:
      raise InputError(f"{path}: {8 * w}-bit samples, expected 16-bit PCM")
  if rx != ry:
    raise InputError(f"{y_path}: sample rate {ry} differs from {x_path}'s {rx}")
  if nx != ny:
    raise InputError(f"{y_path}: {ny} samples, but its input {x_path} has {nx}")
  if nx == 0:
    raise InputError(f"{x_path}: empty")
  # nam.data.Dataset rejects any output sample with |y| >= 1.0 (i.e. int16 -32768).
  if _peak(y_path) >= 1.0:
    raise InputError(
      f"{y_path}: output reaches full scale (-32768), which NAM's dataset rejects as clipped"
    )
  return nx


def _budget_key(b: float) -> str:
  """'120' for 120.0, '2.5' for 2.5: the JSON key and the file-name stem of a budget."""
  return str(int(b)) if float(b).is_integer() else repr(float(b))


def parse_budgets(text: str) -> list[float]:
  try:
    budgets = sorted({float(t) for t in text.split(",") if t.strip()})
  except ValueError:
    raise argparse.ArgumentTypeError(f"not a comma-separated list of seconds: {text!r}") from None
  if not budgets or budgets[0] <= 0:
    raise argparse.ArgumentTypeError("need at least one positive number of seconds")
  return budgets


def training_recipe() -> tuple[dict, str]:
  """The loss / optimizer / lr_scheduler dicts of the installed NAM's simplified trainer.

  Read the way `nam.train.core._get_packed_model_config` reads them; its "net" (a packed
  WaveNet) is dropped -- we train the standard WaveNet instead.
  """
  import importlib.resources

  try:
    resource = importlib.resources.files("nam.train._resources").joinpath(
      "config_model_packed.json"
    )
    with resource.open() as fp:
      packed = json.load(fp)
    return (
      {k: copy.deepcopy(packed[k]) for k in ("loss", "optimizer", "lr_scheduler")},
      "nam/train/_resources/config_model_packed.json",
    )
  except (ModuleNotFoundError, FileNotFoundError, KeyError):
    return copy.deepcopy(FALLBACK_TRAINING_RECIPE), "fallback (NAM 0.13 values)"


def _write_json_atomic(path: str, obj: dict):
  tmp = f"{path}.tmp{os.getpid()}"
  with open(tmp, "w") as fp:
    json.dump(obj, fp, indent=2)
    fp.write("\n")
  os.replace(tmp, path)


# ------------------------------------------------------------------------------ budget callback
def make_budget_callback(pl, budgets: list[float], out_dir: str, export_net, report: dict):
  """A Lightning callback that tracks the best validation ESR and exports at each budget.

  `export_net` is a spare copy of the NAM net (after the dataset handshakes, so it carries the
  same sample rate and export hooks) into which the weights to export are loaded, so exporting
  never touches the module being trained.
  """

  class BudgetCallback(pl.Callback):
    def __init__(self):
      super().__init__()
      self.t0 = None  # perf_counter() when the clock started (set by the caller before fit)
      self.paused = 0.0  # seconds spent exporting: not charged to the budget
      self.next_budget = 0  # index into budgets of the next one to export
      self.best_esr = None
      self.best_state = None  # in-memory copy of the best net's state_dict (by val ESR)
      self.best_step = None
      self.best_epoch = None
      self.validations = 0  # per-epoch validations run (the sanity check not counted)

    def elapsed(self) -> float:
      return time.perf_counter() - self.t0 - self.paused

    def _export(self, trainer, pl_module, b: float, elapsed: float):
      t = time.perf_counter()
      key = _budget_key(b)
      basename = f"nam_{key}s"
      if self.best_state is not None:
        export_net.load_state_dict(self.best_state)
        which = "best"
      else:  # no validation yet: the weights as they are now
        export_net.load_state_dict(pl_module.net.state_dict())
        which = "current"
      # NAM's export writes os.path.join(outdir, basename + ".nam") (it adds the extension) and
      # also runs the net on NAM's loudness clip for the metadata's loudness / gain fields.
      export_net.export(out_dir, basename=basename)
      # "step": optimizer steps so far; "epoch": the 0-based epoch in progress.
      report["budgets"][key] = {
        "file": basename + ".nam",
        "step": int(trainer.global_step),
        "epoch": int(trainer.current_epoch),
        "elapsed_seconds": round(elapsed, 3),
        "best_val_esr": self.best_esr,
        "best_step": self.best_step,
        "best_epoch": self.best_epoch,
        "exported_weights": which,
        "export_seconds": round(time.perf_counter() - t, 3),
      }
      _write_json_atomic(os.path.join(out_dir, "nam_recipe.json"), report)  # progress so far
      print(
        f"[nam_recipe] budget {key}s reached at {elapsed:.1f}s (step {trainer.global_step}, "
        f"epoch {trainer.current_epoch}): exported {which} weights (val ESR "
        f"{self.best_esr}) to {basename}.nam",
        flush=True,
      )
      self.paused += time.perf_counter() - t

    def export_due(self, trainer, pl_module):
      """Export every budget the clock has passed; stop training after the largest."""
      elapsed = self.elapsed()
      while self.next_budget < len(budgets) and elapsed >= budgets[self.next_budget]:
        self._export(trainer, pl_module, budgets[self.next_budget], elapsed)
        self.next_budget += 1
      if self.next_budget == len(budgets) and not trainer.should_stop:
        trainer.should_stop = True
        # A stop request makes Lightning run one more validation before leaving the epoch; its
        # result could no longer be used by any budget, so skip it.
        trainer.limit_val_batches = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
      self.export_due(trainer, pl_module)

    def on_validation_end(self, trainer, pl_module):
      # A budget that ran out during this validation gets the best weights known before it.
      self.export_due(trainer, pl_module)
      metrics = trainer.callback_metrics
      esr = float(metrics["ESR"]) if "ESR" in metrics else float("nan")
      elapsed = self.elapsed()
      if trainer.sanity_checking:  # Lightning's pre-training check on the initial weights
        print(
          f"[nam_recipe] sanity-check validation: elapsed {elapsed:.1f}s, val ESR {esr:.5g}",
          flush=True,
        )
        return
      self.validations += 1
      # NAM's recipe keeps the checkpoint with the best "val_loss" (= ESR for loss.val_loss
      # "esr"); keep its weights in memory instead of writing checkpoint files.
      improved = np.isfinite(esr) and (self.best_esr is None or esr < self.best_esr)
      if improved:
        self.best_esr = esr
        self.best_step = int(trainer.global_step)
        self.best_epoch = int(trainer.current_epoch)
        self.best_state = {k: v.detach().clone() for k, v in pl_module.net.state_dict().items()}
      print(
        f"[nam_recipe] epoch {trainer.current_epoch} step {trainer.global_step} elapsed "
        f"{elapsed:.1f}s val ESR {esr:.5g}{' (best)' if improved else ''}",
        flush=True,
      )

  return BudgetCallback()


# ------------------------------------------------------------------------------ main
def run(args) -> dict:
  t_setup = time.perf_counter()
  # Check the WAVs before the (slow) imports so a bad path fails fast with a one-line message.
  n_train = check_pair(args.train_x, args.train_y)
  n_val = check_pair(args.val_x, args.val_y)
  os.makedirs(args.out, exist_ok=True)

  import torch

  torch.set_num_threads(args.threads)
  import pytorch_lightning as pl
  from pytorch_lightning.utilities.warnings import PossibleUserWarning
  from torch.utils.data import DataLoader

  import nam
  from nam.data import Split, apply_joint_dataset_hooks, get_joint_dataset_hooks, init_dataset
  from nam.train.lightning_module import LightningModule
  from nam.util import filter_warnings

  for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
    logging.getLogger(name).setLevel(logging.WARNING)  # no "GPU available: False" banners
  # Lightning 2.6 + torch 2.13 warn about a deprecated pytree call inside Lightning: noise.
  warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")

  # Same order as nam.train.core.train: seed, then build the model.
  torch.manual_seed(args.seed)
  recipe, recipe_source = training_recipe()
  model_config = {
    "net": {"name": "WaveNet", "config": copy.deepcopy(NAM_STANDARD_CONFIG)},
    **copy.deepcopy(recipe),
  }
  model = LightningModule.init_from_config(copy.deepcopy(model_config))
  rf = model.net.receptive_field
  # NAM's Dataset asserts (without naming the file) when a pair is too short for its windows.
  need = abs(args.delay) + rf - 1 + NY * BATCH_SIZE
  if n_train < need:
    raise InputError(
      f"{args.train_x}: {n_train} samples, need >= {need} for one batch of "
      f"{BATCH_SIZE} x {NY} output samples with a {rf}-sample receptive field"
    )
  if n_val < abs(args.delay) + rf:
    raise InputError(f"{args.val_x}: {n_val} samples, shorter than the {rf}-sample receptive field")

  # Data, as nam.train.core._get_data_config + _get_dataloaders build it, but with a train and a
  # validation pair of files (x_path / y_path per split) and no output-normalising joint hook.
  data_config = {
    "train": {"ny": NY, "x_path": args.train_x, "y_path": args.train_y},
    "validation": {"ny": None, "x_path": args.val_x, "y_path": args.val_y},
    "common": {"delay": args.delay, "nx": rf},
  }
  dataset_train = init_dataset(data_config, Split.TRAIN)
  dataset_validation = init_dataset(data_config, Split.VALIDATION)
  # Only NAM's default hook (train / validation sample rates must match).
  apply_joint_dataset_hooks(
    dataset_train=dataset_train,
    dataset_validation=dataset_validation,
    hooks=get_joint_dataset_hooks([]),
  )
  model.net.sample_rate = dataset_train.sample_rate
  for ds in (dataset_train, dataset_validation):
    ds.handshake(model.net)
  for ds in (dataset_train, dataset_validation):
    model.net.handshake(ds)
  # nam.train.core._get_configs' learning config; pin_memory (True there) only matters for GPUs.
  train_loader_kwargs = {
    "batch_size": BATCH_SIZE,
    "shuffle": True,
    "pin_memory": False,
    "drop_last": True,
    "num_workers": 0,
  }
  train_loader = DataLoader(dataset_train, **train_loader_kwargs)
  val_loader = DataLoader(dataset_validation)

  budgets = args.budgets
  report = {
    "budgets": {},
    "setup_seconds": None,
    "steps_total": None,
    "epochs_total": None,
    "receptive_field": rf,
    "sample_rate": dataset_train.sample_rate,
    "train_windows": len(dataset_train),
    "steps_per_epoch": len(train_loader),
    "recipe": {
      "net": model_config["net"],
      "loss": recipe["loss"],
      "optimizer": recipe["optimizer"],
      "lr_scheduler": recipe["lr_scheduler"],
      "batch_size": BATCH_SIZE,
      "ny": NY,
      "train_dataloader": train_loader_kwargs,
      "source": recipe_source,
      "data": {
        "delay": args.delay,
        "nx": rf,
        "joint_hooks": [],
        "validation": "whole validation pair, one datum, every epoch",
      },
      "seed": args.seed,
    },
    "nam_version": nam.__version__,
    "torch_version": torch.__version__,
    "lightning_version": pl.__version__,
    "threads": args.threads,
  }
  export_net = copy.deepcopy(model.net)  # after the handshakes: same sample rate / export hooks
  budget_cb = make_budget_callback(pl, budgets, args.out, export_net, report)
  trainer = pl.Trainer(
    accelerator="cpu",
    devices=1,
    max_epochs=10**9,
    callbacks=[budget_cb],
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
    default_root_dir=args.out,
  )
  report["setup_seconds"] = round(time.perf_counter() - t_setup, 3)
  print(
    f"[nam_recipe] setup {report['setup_seconds']:.1f}s; receptive field {rf}; "
    f"{len(dataset_train)} train windows, {len(train_loader)} steps/epoch; budgets "
    f"{[_budget_key(b) for b in budgets]} s; torch threads {torch.get_num_threads()}",
    flush=True,
  )

  # The clock starts here: everything before (imports, WAV loading, model building) is setup.
  budget_cb.t0 = time.perf_counter()
  try:
    # Suppress the PossibleUserWarning about num_workers, as nam.train.core.train does.
    with filter_warnings("ignore", category=PossibleUserWarning):
      trainer.fit(model, train_loader, val_loader)
  except KeyboardInterrupt:
    print("[nam_recipe] interrupted", flush=True)
  elapsed = budget_cb.elapsed()
  # Budgets never reached (training ended early or was interrupted): export what there is,
  # flagged as such.
  for b in budgets[budget_cb.next_budget :]:
    budget_cb._export(trainer, model, b, elapsed)
    report["budgets"][_budget_key(b)]["budget_reached"] = False
  for entry in report["budgets"].values():
    entry.setdefault("budget_reached", True)
  report["steps_total"] = int(trainer.global_step)
  # Epochs trained, fractional when stopped mid-epoch (Lightning's current_epoch would count the
  # interrupted epoch as a whole one).
  report["epochs_total"] = round(trainer.global_step / len(train_loader), 3)
  report["validations"] = budget_cb.validations
  report["train_seconds"] = round(elapsed, 3)
  report["export_seconds_total"] = round(budget_cb.paused, 3)
  report["steps_per_second"] = round(trainer.global_step / elapsed, 4) if elapsed > 0 else None
  report["best_val_esr"] = budget_cb.best_esr
  _write_json_atomic(os.path.join(args.out, "nam_recipe.json"), report)
  for ds in (dataset_train, dataset_validation):
    ds.teardown()
  return report


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--train_x", required=True, help="training input WAV (mono 16-bit PCM)")
  p.add_argument("--train_y", required=True, help="training output WAV, same length")
  p.add_argument("--val_x", required=True, help="validation input WAV")
  p.add_argument("--val_y", required=True, help="validation output WAV, same length")
  p.add_argument(
    "--budgets",
    required=True,
    type=parse_budgets,
    help="comma-separated wall-clock training budgets in seconds, e.g. 120,300,600",
  )
  p.add_argument("--out", required=True, help="output folder (created if missing)")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
  p.add_argument(
    "--delay",
    type=int,
    default=0,
    help="samples the output lags the input (NAM's data 'delay'); 0: none",
  )
  args = p.parse_args()
  try:
    report = run(args)
  except InputError as e:
    sys.exit(f"nam_recipe.py: error: {e}")
  print(
    f"[nam_recipe] done: {report['steps_total']} steps, {report['epochs_total']} epochs, "
    f"{report['steps_per_second']} steps/s; wrote "
    f"{os.path.join(args.out, 'nam_recipe.json')}",
    flush=True,
  )


if __name__ == "__main__":
  main()
