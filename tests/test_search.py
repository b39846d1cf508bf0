"""ampspace/experiments/search.py (`python -m launch.search`): every family's sampled config
builds a working model, nonlinearity options are found by signature, the best trial exports as a loadable config, worker commands, and (slow)
a real two-thread search that resumes without adding trials."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from ampspace.experiments import search

optuna = pytest.importorskip("optuna")

COMMON = {"receptive_field": 256, "optimizer": "adam", "learning_rate": 1e-3, "sigma": 0.5}
FAMILY_PARAMS = {
  "wave2wavenet": {"conv.depth": 5, "conv.channels": 4},
  "layer_array_wavenet": {"conv.depth": 4, "conv.channels": 4, "layer_array.nonlinearity": "tanh"},
  "rnn": {"rnn.layers": 2, "rnn.hidden": 8},
  "lstm": {"rnn.layers": 1, "rnn.hidden": 8},
  "dilated_lstm": {"dilated_lstm.layers": 3, "rnn.hidden": 8},
  "sample_rnn": {"sample_rnn.tiers": 2, "rnn.hidden": 8},
}


def load_module(path: str):
  spec = importlib.util.spec_from_file_location("exported", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.parametrize("family", search.available_families())
def test_sampled_config_builds_a_model_of_the_sampled_shape(family, tmp_path):
  from ampspace.trainers import common

  s = search.Search(workdir=str(tmp_path), steps=7)
  params = {"family": family, **COMMON, **FAMILY_PARAMS[family]}
  config = search.trial_config(s, optuna.trial.FixedTrial(params))
  assert config.model.name == family and config.train.steps == 7
  assert config.loss.sigma == 0.5 and config.optimizer.learning_rate == 1e-3
  model = common.build_model(config)
  if family == "wave2wavenet":
    # rf 256 -> dilations up to 64, cut short by depth 5: 1 + 2 * (1 + 2 + 4 + 8 + 16).
    assert model.receptive_field == 63
  elif family == "layer_array_wavenet":
    assert config.model.gated is False and model.receptive_field == 1 + 2 * (1 + 2 + 4 + 8)
  else:
    assert config.model.warmup == 256 and model.context == (256, 0)
  left, right = model.context
  x = np.zeros((2, 64 + left + right, 1), np.float32)
  c = np.zeros((2, config.model.get("cond_dim", 0) or _cond_dim()), np.float32)
  assert model(x, c).shape == (2, 64, 256)
  # The exported (full-budget) variant keeps the base config's step count.
  full = search.trial_config(s, optuna.trial.FixedTrial(params), budget=False)
  assert full.train.steps == search.load_base_config(s.base_config).train.steps
  assert full.model.to_dict() == config.model.to_dict()


def _cond_dim() -> int:
  from ampspace import conditioning

  return conditioning.conditioning_dim()


def test_nonlinearity_found_by_constructor_signature(monkeypatch):
  from ampspace import models
  from ampspace.models.wave2wavenet import Wave2WaveNet

  assert search.nonlinearity_kwarg("wave2wavenet") is None  # gated tanh·σ only, today

  def with_activation(cond_dim, *, activation: str = "gated", **kw):
    return Wave2WaveNet(cond_dim, **kw)

  monkeypatch.setitem(models.ALL_MODELS, "wave2wavenet", with_activation)
  params = {
    "family": "wave2wavenet",
    **COMMON,
    **FAMILY_PARAMS["wave2wavenet"],
    "wave2wavenet.activation": "relu",
  }
  model = search.sample_model(
    optuna.trial.FixedTrial(params), "wave2wavenet", search.SPACES["small"]
  )
  assert model["activation"] == "relu"


def test_unknown_family_is_an_error():
  with pytest.raises(search.AmpSpaceError, match="not searchable"):
    search.available_families(("transformer",))


def test_best_trial_exported_as_runnable_config(tmp_path):
  s = search.Search(workdir=str(tmp_path), steps=5, n_trials=2)
  study = search.open_study(s)
  configs = {}
  for number, (family, value) in enumerate((("lstm", 0.02), ("wave2wavenet", 0.01))):
    params = {"family": family, **COMMON, **FAMILY_PARAMS[family]}
    full = search.trial_config(s, optuna.trial.FixedTrial(params), budget=False)
    configs[number] = full.to_dict()
    dists = {
      k: optuna.distributions.CategoricalDistribution(
        search.available_families() if k == "family" else [v]
      )
      for k, v in params.items()
    }
    study.add_trial(
      optuna.trial.create_trial(
        params=params,
        distributions=dists,
        value=value,
        user_attrs={"config": full.to_dict(), "validation_esr": 0.5},
      )
    )
  out = search.export(search.open_study(s), s)  # reopened from SQLite
  assert out["best"]["number"] == 1
  exported = load_module(out["config_file"]).get_config()
  assert exported.model.name == "wave2wavenet"
  assert exported.model.depth == 5 and exported.loss.sigma == 0.5
  assert exported.to_dict()["model"] == configs[1]["model"]
  rows = open(os.path.join(tmp_path, search.TRIALS_FILE)).read().splitlines()
  assert rows[0].startswith("number,state,validation_mse") and len(rows) == 3


def test_worker_commands_share_one_study():
  s = search.Search(
    workdir="/w",
    families=("lstm",),
    n_trials=8,
    n_jobs=2,
    steps=50,
    overrides=("input.window=512",),
  )
  cmds = search.worker_commands(s, 2)
  assert cmds == [
    "python -m launch.search --workdir=/w --base_config=configs/wave2wavenet.py:runlocal "
    "--space=small --n_trials=8 --n_jobs=2 --steps=50 --study_name=ampspace_search "
    f"--families=lstm --set=input.window=512 --seed={i}"
    for i in range(2)
  ]


@pytest.mark.slow
def test_real_search_two_threads_resumes(tmp_path, tiny_data_dir):
  s = search.Search(
    workdir=str(tmp_path / "search"),
    families=("wave2wavenet", "lstm"),
    n_trials=2,
    n_jobs=2,
    steps=2,
    overrides=(
      f"dataset.data_dir={tiny_data_dir}",
      "input.window=128",
      "input.batch_size=2",
      "train.tensorboard=false",
    ),
  )
  result = search.run_search(s)
  assert result["trials"] == 2
  study = search.open_study(s)
  values = [t.value for t in study.trials if t.value is not None]
  assert values and all(np.isfinite(values)) and result["best"]["value"] == min(values)
  for t in study.trials:
    assert os.path.isdir(os.path.join(t.user_attrs["workdir"], "checkpoints", "2"))
  exported = load_module(result["config_file"]).get_config()
  assert exported.model.name == result["best"]["params"]["family"]
  # Rerunning with the same total does not add trials.
  assert search.run_search(s)["trials"] == 2
