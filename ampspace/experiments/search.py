"""`python -m launch.search --workdir=runs/search --n_trials=20`: Optuna architecture search.

The paper searched Wave2WaveNet and its recurrent baselines with Optuna; this is that search.
Each trial samples a model family and its architecture, an optimiser, a learning rate and the
class-weight exponent σ, trains the config for `--steps` steps in WORKDIR/trials/trial_NNNN, and
reports the validation MSE (lower is better; a diverged run is pruned).

Search space (`--space=small` for a CPU, `paper` for accelerators):
  family          wave2wavenet, layer_array_wavenet, rnn, lstm, dilated_lstm, sample_rnn
                  (those registered in ampspace.models; --families narrows it)
  receptive field samples of context: conv nets' dilations (max dilation ≈ rf / 4), the
                  recurrent nets' warm-up
  depth           conv layers / recurrent layers / SampleRNN tiers
  channels        conv channels / recurrent hidden size
  nonlinearity    where the family has a choice: layer_array_wavenet gated tanh·σ or tanh;
                  any model whose constructor takes `activation`/`nonlinearity` (by signature);
                  rnn (tanh) against lstm (gated) is the family choice itself
  optimizer       adam, sgd;   learning_rate  log-uniform;   sigma  uniform in [0, 1]

Results: the study lives in SQLite (WORKDIR/search.db) or in `--storage` (an Optuna RDB URL,
e.g. postgresql://USER@HOST/DB, that every node of a cluster reaches), so a rerun resumes
(`--n_trials` is the total wanted), several processes can share it (`--workers=N` starts them;
`--n_jobs` adds threads inside each), and WORKDIR/trials.csv lists every trial.

On a cluster the stages run as jobs (`python -m launch.launcher slurm_sweep
--experiment=search --workers=N -- SEARCH FLAGS` writes and chains them): `--stage=create`
makes the study, `--stage=worker` is one array task (its sampler seed offset by
SLURM_ARRAY_TASK_ID, so the workers explore differently), `--stage=export` writes the
results once every worker is done. The best trial is exported as
WORKDIR/best_config.py, a standalone config for `python -m ampspace.train`.
"""

from __future__ import annotations

import csv
import dataclasses
import inspect
import io
import json
import math
import os
import pprint
import shlex
import subprocess
import sys

from ampspace.config_files import apply_override, config_path, load_config
from ampspace.errors import AmpSpaceError, report_errors
from ampspace.files import atomic_write

# Optuna and the models and trainers (jax, flax, optax, Orbax) are imported where used, so
# that importing this command loads none of them.

# The checkout: relative --base_config paths and the workers' working folder.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAMILIES = ("wave2wavenet", "layer_array_wavenet", "rnn", "lstm", "dilated_lstm", "sample_rnn")
CONV = ("wave2wavenet", "layer_array_wavenet")
NONLINEARITY_KWARGS = {
  "activation": ("gated", "tanh", "relu"),
  "nonlinearity": ("gated", "tanh", "relu"),
}
SPACES = {
  "small": dict(
    receptive_field=(64, 128, 256, 512, 1024),
    conv_depth=(2, 8),
    conv_channels=(4, 8, 16),
    rnn_layers=(1, 2),
    dilated_layers=(2, 4),
    hidden=(8, 16, 32),
    tiers=(2,),
    learning_rate=(3e-4, 1e-2),
  ),
  "paper": dict(
    receptive_field=(1024, 2048, 4096, 8192),
    conv_depth=(8, 30),
    conv_channels=(16, 32, 64, 128),
    rnn_layers=(1, 3),
    dilated_layers=(4, 10),
    hidden=(32, 64, 128, 256),
    tiers=(2, 3),
    learning_rate=(1e-5, 3e-3),
  ),
}
SAMPLE_RNN_FRAMES = {2: (16, 4), 3: (64, 16, 4)}
DB_FILE, BEST_FILE, TRIALS_FILE = "search.db", "best_config.py", "trials.csv"


@dataclasses.dataclass
class Search:
  workdir: str
  base_config: str = "configs/wave2wavenet.py:runlocal"
  space: str = "small"
  families: tuple[str, ...] = ()  # () = every registered family
  n_trials: int = 10  # total wanted in the study
  n_jobs: int = 1  # threads in this process
  steps: int = 200  # training steps per trial
  overrides: tuple[str, ...] = ()  # KEY=VALUE on every trial's config (not the sampled keys)
  study_name: str = "ampspace_search"
  seed: int = 0
  storage_url: str = ""  # an Optuna RDB URL; "" = SQLite in the workdir

  @property
  def storage(self) -> str:
    return self.storage_url or "sqlite:///" + os.path.abspath(os.path.join(self.workdir, DB_FILE))


def available_families(wanted=()) -> list[str]:
  from ampspace.models import ALL_MODELS

  families = [f for f in FAMILIES if f in ALL_MODELS]
  if wanted:
    unknown = sorted(set(wanted) - set(families))
    if unknown:
      raise AmpSpaceError(f"--families: {unknown} not searchable; available: {families}")
    families = [f for f in families if f in wanted]
  return families


def pow2_at_most(n: int) -> int:
  return 1 << max(0, int(math.floor(math.log2(max(1, n)))))


def nonlinearity_kwarg(family: str) -> str | None:
  """The constructor keyword that selects a nonlinearity, if the family's model has one."""
  from ampspace.models import ALL_MODELS

  params = inspect.signature(ALL_MODELS[family]).parameters
  return next((k for k in NONLINEARITY_KWARGS if k in params), None)


def sample_model(trial, family: str, space: dict) -> dict:
  """The `model` config block of one trial (define-by-run: per-family parameter names)."""
  rf = trial.suggest_categorical("receptive_field", space["receptive_field"])
  if family in CONV:
    depth = trial.suggest_int("conv.depth", *space["conv_depth"])
    channels = trial.suggest_categorical("conv.channels", space["conv_channels"])
    max_dilation = pow2_at_most(rf // 4)
    if family == "wave2wavenet":
      model = {
        "name": family,
        "depth": depth,
        "channels": channels,
        "kernel_size": 3,
        "max_dilation": max_dilation,
        "num_classes": 256,
        "causal": True,
      }
    else:
      from ampspace.models.wave2wavenet import dilation_schedule

      gated = trial.suggest_categorical("layer_array.nonlinearity", ("gated_tanh", "tanh"))
      model = {
        "name": family,
        "kernel_size": 3,
        "gated": gated == "gated_tanh",
        "num_classes": 256,
        "causal": True,
        "layer_arrays": (
          {
            "channels": channels,
            "head_size": channels,
            "dilations": tuple(dilation_schedule(depth, max_dilation)),
          },
        ),
      }
  elif family == "sample_rnn":
    tiers = trial.suggest_categorical("sample_rnn.tiers", space["tiers"])
    hidden = trial.suggest_categorical("rnn.hidden", space["hidden"])
    model = {
      "name": family,
      "frame_sizes": SAMPLE_RNN_FRAMES[tiers],
      "hidden": hidden,
      "mlp_channels": hidden,
      "warmup": rf,
      "num_classes": 256,
    }
  else:
    layers = (
      trial.suggest_int("dilated_lstm.layers", *space["dilated_layers"])
      if family == "dilated_lstm"
      else trial.suggest_int("rnn.layers", *space["rnn_layers"])
    )
    hidden = trial.suggest_categorical("rnn.hidden", space["hidden"])
    model = {
      "name": family,
      "hidden": hidden,
      "num_layers": layers,
      "warmup": rf,
      "num_classes": 256,
      "head_channels": 0,
    }
    if family == "dilated_lstm":
      model["dilations"] = tuple(2**i for i in range(layers))
  kwarg = nonlinearity_kwarg(family)
  if kwarg:
    model[kwarg] = trial.suggest_categorical(f"{family}.{kwarg}", NONLINEARITY_KWARGS[kwarg])
  return model


def load_base_config(spec: str):
  path, _, arg = spec.partition(":")
  try:
    full = config_path(path)  # a file, or a shipped config (configs/NAME.py, NAME)
  except AmpSpaceError as e:
    raise AmpSpaceError(f"--base_config {spec}: {e}") from None
  return load_config(full, arg or None)


def trial_config(s: Search, trial, budget: bool = True):
  """The base config with the trial's sampled model, optimiser, rate and σ; `budget` shortens
  it to the search's step count (the exported best config keeps the base config's)."""
  import ml_collections

  space = SPACES[s.space]
  config = load_base_config(s.base_config)
  for item in s.overrides:
    apply_override(config, item)
  family = trial.suggest_categorical("family", available_families(s.families))
  config.model = ml_collections.ConfigDict(sample_model(trial, family, space))
  config.optimizer.name = trial.suggest_categorical("optimizer", ("adam", "sgd"))
  config.optimizer.learning_rate = trial.suggest_float(
    "learning_rate", *space["learning_rate"], log=True
  )
  config.loss.sigma = trial.suggest_float("sigma", 0.0, 1.0)
  if not budget:
    return config
  config.train.steps = s.steps
  config.train.eval_every = max(s.steps, 1) + 1  # one validation, at the end
  config.train.checkpoint_every = s.steps
  config.train.keep_checkpoints = 1
  config.optimizer.warmup_steps = min(config.optimizer.warmup_steps, max(1, s.steps // 10))
  if config.get("eval"):
    config.eval.at_end = False
  return config


def objective(s: Search):
  import optuna

  def run(trial) -> float:
    from ampspace.trainers import common, get_trainer

    config = trial_config(s, trial)
    workdir = os.path.join(s.workdir, "trials", f"trial_{trial.number:04d}")
    model = common.build_model(config)
    trial.set_user_attr("receptive_field_samples", int(model.receptive_field))
    trial.set_user_attr("workdir", workdir)
    try:
      result = get_trainer(config.trainer)(config, workdir)
    except AmpSpaceError as e:
      if "diverged" in str(e):
        trial.set_user_attr("error", str(e))
        raise optuna.TrialPruned(str(e)) from None
      raise
    if "validation" not in result:
      raise AmpSpaceError(f"{config.dataset.name}: no validation split to score trials on")
    v = result["validation"]
    trial.set_user_attr("validation_esr", float(v["esr"]))
    full = trial_config(s, optuna.trial.FixedTrial(trial.params), budget=False)
    trial.set_user_attr("config", full.to_dict())
    if not math.isfinite(v["mse"]):
      raise optuna.TrialPruned("validation MSE is not finite")
    return float(v["mse"])

  return run


def open_study(s: Search):
  import optuna

  os.makedirs(s.workdir, exist_ok=True)
  storage = optuna.storages.RDBStorage(s.storage, engine_kwargs={"connect_args": {"timeout": 120}})
  return optuna.create_study(
    study_name=s.study_name,
    storage=storage,
    direction="minimize",
    sampler=optuna.samplers.TPESampler(seed=s.seed),
    load_if_exists=True,
  )


def finished(study) -> int:
  import optuna

  done = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.PRUNED,
    optuna.trial.TrialState.FAIL,
    optuna.trial.TrialState.RUNNING,
  )
  return sum(t.state in done for t in study.get_trials(deepcopy=False))


def trials_csv(study) -> str:
  names = sorted({k for t in study.trials for k in t.params})
  buf = io.StringIO()
  w = csv.writer(buf, lineterminator="\n")
  w.writerow(
    [
      "number",
      "state",
      "validation_mse",
      "validation_esr",
      "receptive_field_samples",
      "seconds",
      *names,
    ]
  )
  for t in study.trials:
    seconds = (
      (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else ""
    )
    w.writerow(
      [
        t.number,
        t.state.name,
        t.value if t.value is not None else "",
        t.user_attrs.get("validation_esr", ""),
        t.user_attrs.get("receptive_field_samples", ""),
        seconds,
        *[t.params.get(n, "") for n in names],
      ]
    )
  return buf.getvalue()


def best_config_source(study, s: Search) -> str:
  best = study.best_trial
  config = best.user_attrs["config"]
  params = json.dumps(best.params, sort_keys=True)
  return f'''"""Best trial of the architecture search in {s.workdir} (study {s.study_name!r}).

Exported by `python -m launch.search` from trial {best.number}: validation MSE
{best.value:.6g} after {s.steps} steps (ESR {best.user_attrs.get("validation_esr", float("nan")):.4g}).
Sampled: {params}

COMMAND (train it for the config's full step count):
  python -m ampspace.train --config={os.path.join(s.workdir, BEST_FILE)} --workdir=runs/best

EXPECTED: a validation MSE at or below {best.value:.6g} (the search's, after {s.steps} steps)
once trained for the config's train.steps.
"""

from __future__ import annotations

import ml_collections

CONFIG = {pprint.pformat(config, indent=1, width=96, sort_dicts=True)}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  if arg:
    raise ValueError(f"unknown config argument {{arg!r}}; this config takes none")
  return ml_collections.ConfigDict(CONFIG)
'''


def export(study, s: Search) -> dict:
  import optuna

  atomic_write(os.path.join(s.workdir, TRIALS_FILE), trials_csv(study))
  complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
  if not complete:
    return {"best": None}
  atomic_write(os.path.join(s.workdir, BEST_FILE), best_config_source(study, s))
  best = study.best_trial
  return {
    "best": {"number": best.number, "value": best.value, "params": best.params},
    "config_file": os.path.join(s.workdir, BEST_FILE),
  }


def run_search(s: Search) -> dict:
  import optuna

  optuna.logging.set_verbosity(optuna.logging.WARNING)
  study = open_study(s)
  remaining = max(0, s.n_trials - finished(study))
  if remaining:
    # MaxTrialsCallback counts every process's trials, so workers sharing the DB stop together.
    study.optimize(
      objective(s),
      n_trials=remaining,
      n_jobs=s.n_jobs,
      catch=(AmpSpaceError,),
      callbacks=[optuna.study.MaxTrialsCallback(s.n_trials, states=None)],
    )
  return {"trials": len(study.trials), **export(study, s)}


def worker_commands(s: Search, workers: int, python: str = "python") -> list[str]:
  """One command per worker process, all on the same study and database."""
  args = [
    python,
    "-m",
    "launch.search",
    f"--workdir={s.workdir}",
    f"--base_config={s.base_config}",
    f"--space={s.space}",
    f"--n_trials={s.n_trials}",
    f"--n_jobs={s.n_jobs}",
    f"--steps={s.steps}",
    f"--study_name={s.study_name}",
  ]
  if s.families:
    args.append(f"--families={','.join(s.families)}")
  if s.storage_url:
    args.append(f"--storage={s.storage_url}")
  args += [f"--set={o}" for o in s.overrides]
  return [" ".join(shlex.quote(a) for a in args + [f"--seed={s.seed + i}"]) for i in range(workers)]


# ---------------------------------------------------------------- stages, for job arrays
STAGES = ("all", "create", "worker", "export")


def run_stage(s: Search, stage: str) -> dict:
  """One job of a cluster sweep: `create` the study, one `worker` (sampler seed + the array
  task's SLURM_ARRAY_TASK_ID), or `export` the results."""
  if stage == "create":
    os.makedirs(s.workdir, exist_ok=True)
    study = open_study(s)
    return {"study": s.study_name, "storage": s.storage, "trials": len(study.trials)}
  if stage == "worker":
    task = os.environ.get("SLURM_ARRAY_TASK_ID")
    worker = dataclasses.replace(s, seed=s.seed + int(task)) if task else s
    return run_search(worker)
  if stage == "export":
    return export(open_study(s), s)
  raise AmpSpaceError(f"--stage={stage}: use one of {', '.join(STAGES)}")


# ---------------------------------------------------------------- command line
def define_flags() -> None:
  from absl import flags

  d = Search(workdir="")
  flags.DEFINE_string("workdir", "runs/search", "Study database, trials and the best config.")
  flags.DEFINE_string("base_config", d.base_config, "Config FILE[:arg] every trial starts from.")
  flags.DEFINE_enum("space", d.space, list(SPACES), "Search ranges: small (CPU) or paper.")
  flags.DEFINE_list("families", [], "Model families to search (default: all registered).")
  flags.DEFINE_integer("n_trials", d.n_trials, "Total trials wanted in the study.")
  flags.DEFINE_integer("n_jobs", d.n_jobs, "Parallel trials (threads) in this process.")
  flags.DEFINE_integer("workers", 1, "Processes sharing the study database.")
  flags.DEFINE_integer("steps", d.steps, "Training steps per trial.")
  flags.DEFINE_multi_string("set", [], "KEY=VALUE override of the base config.")
  flags.DEFINE_string("study_name", d.study_name, "Optuna study name.")
  flags.DEFINE_integer("seed", d.seed, "Sampler seed (worker i uses seed + i).")
  flags.DEFINE_bool("dry_run", False, "Print the worker commands; run nothing.")
  flags.DEFINE_string("storage", "", "Optuna RDB URL of the study (default SQLite in --workdir).")
  flags.DEFINE_enum(
    "stage", "all", list(STAGES), "all: search here; or one job of a cluster sweep."
  )


def search_from_flags() -> Search:
  from absl import flags

  F = flags.FLAGS
  return Search(
    workdir=os.path.abspath(F.workdir),
    base_config=F.base_config,
    space=F.space,
    families=tuple(F.families),
    n_trials=F.n_trials,
    n_jobs=F.n_jobs,
    steps=F.steps,
    overrides=tuple(F.set),
    study_name=F.study_name,
    seed=F.seed,
    storage_url=F.storage,
  )


def main(argv):
  from absl import flags, logging

  @report_errors
  def _main():
    if len(argv) > 1:
      raise AmpSpaceError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    s = search_from_flags()
    available_families(s.families)
    stage = flags.FLAGS.stage
    if stage != "all":
      print(json.dumps(run_stage(s, stage), indent=2, default=str))
      return
    workers = flags.FLAGS.workers
    if flags.FLAGS.dry_run:
      print("\n".join(worker_commands(s, workers) if workers > 1 else worker_commands(s, 1)))
      return
    if workers > 1:
      os.makedirs(s.workdir, exist_ok=True)
      open_study(s)  # create the study once, before the workers race to
      procs = [
        subprocess.Popen(shlex.split(c), cwd=REPO)
        for c in worker_commands(s, workers, python=sys.executable)
      ]
      codes = [p.wait() for p in procs]
      if any(codes):
        raise AmpSpaceError(f"search workers exited with {codes}")
      result = {"trials": None, **export(open_study(s), s)}
    else:
      result = run_search(s)
    print(json.dumps(result, indent=2, default=str))

  _main()
