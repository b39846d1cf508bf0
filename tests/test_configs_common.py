"""configs/common.py (the one `parse_arg`, the shared blocks), configs derived from each other,
and config files found from any working directory (the checkout's or the installed package's)."""

from __future__ import annotations

import os

import pytest
from absl import flags

from ampspace import config_files
from ampspace.errors import AmpSpaceError
from ampspace.config_files import config_module, load_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
common = config_module("common")
HERE = os.path.join(REPO, "configs", "example.py")  # the file parse_arg's errors name

# Every config and the arguments the repository passes it (READMEs, docs, launchers, tests).
IN_USE = {
  "wave2wavenet": (None, "", "runlocal"),
  "vae": (None, "runlocal"),
  "rnn": (None, "runlocal"),
  "lstm": (None, "runlocal"),
  "dilated_lstm": (None, "runlocal"),
  "sample_rnn": (None, "runlocal"),
  "sim_to_real_pretrain": (None, "runlocal", "runlocal,nam_layout", "nam_layout"),
  "sim_to_real_finetune": (
    None,
    "gains=5",
    "runlocal,gains=5",
    "runlocal,gains=3+7",
    "runlocal,nam_layout,gains=5",
  ),
  "sim_to_real_baseline": (
    None,
    "gains=5",
    "runlocal,gains=5",
    "runlocal,gains=3+7",
    "runlocal,nam_layout,gains=5",
  ),
  "capture": (None, "nam_layout", "paper", "finetune", "lstm", "runlocal,paper"),
  "ablation_losses": (None,),
}


# ------------------------------------------------------------------------ parse_arg
def test_parse_arg_defaults():
  for arg in (None, "", " , "):
    a = common.parse_arg(arg, HERE, runlocal=False, gains=(5.0,), model=common.one_of("a", "b"))
    assert a.to_dict() == {"runlocal": False, "gains": (5.0,), "model": "a"}


def test_parse_arg_items_typed_by_their_defaults():
  spec = dict(
    runlocal=False,
    gains=(5.0,),
    steps=10,
    rate=0.5,
    name="x",
    sizes=(1,),
    model=common.one_of("nam_layout", "paper"),
  )
  a = common.parse_arg(
    " runlocal , gains=3+7,steps=20,rate=1e-3,name=y z,sizes=2+4,paper", HERE, **spec
  )
  assert a.runlocal is True and a.gains == (3.0, 7.0) and a.steps == 20 and a.rate == 1e-3
  assert a.name == "y z" and a.sizes == (2, 4) and a.model == "paper"
  assert common.parse_arg("runlocal=false,model=paper", HERE, **spec).runlocal is False
  assert common.parse_arg("runlocal=1", HERE, **spec).runlocal is True
  assert common.parse_arg("model=paper", HERE, **spec).model == "paper"


@pytest.mark.parametrize(
  "arg, message",
  [
    ("foo", "unknown config argument 'foo'; accepted"),
    ("runlocal,foo", "unknown config argument 'foo' in 'runlocal,foo'"),
    ("gainz=5", "unknown config argument 'gainz=5'"),
    ("gains=a+b", "config argument 'gains=a+b': gains must be numbers joined by +"),
    ("gains=", "gains must be numbers joined by +"),
    ("gains", "gains needs a value"),
    ("runlocal=maybe", "runlocal must be true or false"),
    ("steps=1.5", "steps must be int"),
    ("model=lstm", "model must be one of nam_layout, paper"),
    ("paper,nam_layout", "model given twice"),
    ("runlocal,runlocal", "runlocal given twice"),
  ],
)
def test_parse_arg_errors_name_the_file_the_item_and_the_usage(arg, message):
  spec = dict(runlocal=False, gains=(5.0,), steps=10, model=common.one_of("nam_layout", "paper"))
  with pytest.raises(ValueError) as e:
    common.parse_arg(arg, HERE, **spec)
  text = str(e.value)
  assert text.startswith("configs/example.py: ") and message in text
  assert "accepted (comma-separated): runlocal, gains=A+B+... (default 5), steps=INT" in text


def test_parse_arg_without_spec_accepts_nothing():
  assert common.parse_arg(None, HERE).to_dict() == {}
  with pytest.raises(ValueError, match="accepted .*: nothing"):
    common.parse_arg("runlocal", HERE)


# ------------------------------------------------------------------------ every config
@pytest.mark.parametrize("name", sorted(IN_USE))
def test_every_config_reads_its_arguments_with_parse_arg(name):
  for arg in IN_USE[name]:
    assert load_config(name, arg) is not None
  with pytest.raises(ValueError, match=rf"^configs/{name}\.py: unknown config argument 'bogus'"):
    load_config(name, "bogus")


def test_runlocal_scales_the_configs_and_capture_picks_its_model():
  assert load_config("wave2wavenet", "runlocal").dataset.name == "amp_space/tiny"
  assert load_config("wave2wavenet").dataset.name == "amp_space/synthetic"
  assert load_config("lstm", "runlocal").model.hidden == 32
  assert load_config("capture", "lstm").model.name == "lstm"
  assert load_config("capture").model.name == "layer_array_wavenet"
  assert load_config("capture", "finetune").init_polarity == "match"
  assert load_config("capture", "paper").init_polarity == "keep"
  assert (
    load_config("capture", "runlocal,paper").to_dict() == load_config("capture", "paper").to_dict()
  )
  ft = config_module("sim_to_real_finetune")
  assert ft.parse_arg("runlocal,gains=3+7") == ("runlocal,model=paper", (3.0, 7.0))
  assert ft.parse_arg(None) == ("model=paper", (5.0,))
  assert ft.parse_arg("nam_layout,runlocal") == ("runlocal,model=nam_layout", (5.0,))


@pytest.mark.parametrize("scale", ["", "runlocal"])
def test_sim_to_real_nam_layout_shares_one_architecture_across_the_three_configs(scale):
  arg = ",".join(filter(None, [scale, "nam_layout"]))
  pre = load_config("sim_to_real_pretrain", arg)
  ft = load_config("sim_to_real_finetune", f"{arg},gains=3+7")
  base = load_config("sim_to_real_baseline", f"{arg},gains=3+7")
  assert pre.model.name == "layer_array_wavenet" and pre.model.dc_free
  assert pre.loss.name == "mse" and pre.input.window == (4096 if scale else 8192)
  for c in (ft, base):
    assert c.model.to_dict() == pre.model.to_dict() and c.loss.to_dict() == pre.loss.to_dict()
    assert c.input.to_dict() == pre.input.to_dict()
  assert ft.init_from == pre.dataset.data_dir.rsplit("/tfds", 1)[0] + "/pretrain"
  assert base.init_from == "" and base.optimizer.to_dict() == pre.optimizer.to_dict()
  # the paper model stays the default, untouched by the choice
  assert load_config("sim_to_real_pretrain", scale or None).model.name == "wave2wavenet"
  with pytest.raises(AmpSpaceError, match=r"sim_to_real_finetune.py.*nam_layout"):
    load_config("sim_to_real_finetune", "lstm")


# ------------------------------------------------------------------------ derived configs
@pytest.mark.parametrize("arg", [None, "runlocal"])
def test_sim_to_real_pretrain_is_wave2wavenet_with_its_own_data_depth_and_budget(arg):
  runlocal = arg == "runlocal"
  w2w = load_config("wave2wavenet", arg).to_dict()
  pre = load_config("sim_to_real_pretrain", arg).to_dict()
  for block in ("trainer", "seed", "init_from", "input", "loss", "optimizer"):
    assert pre[block] == w2w[block], block
  own = ("depth", "cond_init", "input_gain")
  assert {k: v for k, v in pre["model"].items() if k not in own} == {
    k: v for k, v in w2w["model"].items() if k != "depth"
  }
  assert pre["model"]["depth"] == (10 if runlocal else 20) and pre["model"]["cond_init"] == "normal"
  assert pre["model"]["input_gain"] is True and "input_gain" not in w2w["model"]
  root = "runs/sim_to_real_local" if runlocal else "runs/sim_to_real"
  assert pre["dataset"] == {
    **w2w["dataset"],
    "name": "amp_space/synthetic",
    "data_dir": f"{root}/tfds/pretrain",
    "manual_dir": f"{root}/rendered/pretrain",
    "build_if_missing": False,
    "filter": "",
  }
  assert pre["train"] == {
    **w2w["train"],
    "steps": 500 if runlocal else 200_000,
    "log_every": 50 if runlocal else 100,
    "eval_every": 200 if runlocal else 5000,
    "checkpoint_every": 200 if runlocal else 5000,
    "keep_checkpoints": 2,
    "early_stopping_patience": 0,
    "early_stopping_metric": "esr",
  }
  assert pre["eval"] == {
    "at_end": False,
    "split": "test",
    "max_examples": 8 if runlocal else 256,
    "write_audio": 2,
  }


@pytest.mark.parametrize("arg", [None, "runlocal"])
def test_wave2wavenet_and_vae_share_the_data_and_loop_blocks(arg):
  w2w, vae = load_config("wave2wavenet", arg), load_config("vae", arg)
  runlocal = arg == "runlocal"
  assert (
    w2w.dataset.to_dict() == vae.dataset.to_dict() == common.amp_space_dataset(runlocal).to_dict()
  )
  assert {k: v for k, v in w2w.input.items() if k not in ("window", "batch_size")} == {
    k: v for k, v in vae.input.items() if k != "batch_size"
  }
  assert set(
    common.train_loop(
      steps=1, log_every=1, eval_every=1, eval_examples=1, checkpoint_every=1, keep_checkpoints=1
    )
  ) <= set(vae.train)
  assert vae.optimizer.grad_clip == 100.0 and w2w.optimizer.grad_clip == 1.0


# ------------------------------------------------------------------------ finding configs
def test_configs_resolve_from_another_working_directory(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  shipped = os.path.join(config_files.CONFIG_DIR, "wave2wavenet.py")
  assert config_files.config_path("configs/wave2wavenet.py") == shipped
  assert config_files.config_path("wave2wavenet") == shipped
  assert config_files.flag_path("configs/wave2wavenet.py:runlocal") == shipped + ":runlocal"
  assert (
    load_config("configs/wave2wavenet.py:runlocal").to_dict()
    == load_config(os.path.join(REPO, "configs", "wave2wavenet.py"), "runlocal").to_dict()
  )
  with pytest.raises(ValueError, match="no such file"):
    config_files.config_path("elsewhere/wave2wavenet.py")
  with pytest.raises(ValueError, match="no such file"):
    config_files.config_path("configs/does_not_exist.py")
  assert config_files.flag_path("configs/does_not_exist.py:x") == "configs/does_not_exist.py:x"


def test_a_config_in_the_working_directory_comes_first(tmp_path, monkeypatch):
  (tmp_path / "configs").mkdir()
  (tmp_path / "configs" / "wave2wavenet.py").write_text(
    "import ml_collections\n\n"
    "def get_config(arg=None):\n"
    "  return ml_collections.ConfigDict({'mine': arg})\n"
  )
  monkeypatch.chdir(tmp_path)
  assert load_config("configs/wave2wavenet.py:x").mine == "x"
  assert config_files.flag_path("configs/wave2wavenet.py:x") == "configs/wave2wavenet.py:x"
  assert load_config("wave2wavenet", "runlocal").trainer == "wave2wavenet"  # a name: shipped


def test_the_trainers_config_flag_resolves_from_another_directory(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  argv = ["train", "--config=configs/capture.py:paper", "--config.train.steps=7"]
  fv = flags.FlagValues()
  config_files.define_config_flag("config", "", flag_values=fv, lock_config=True, sys_argv=argv)
  fv(argv)
  assert fv.config.model.depth == 20 and fv.config.train.steps == 7
  assert fv["config"].flag_type() == "config object"


def test_setup_ships_configs_as_a_package(monkeypatch):
  from distutils.core import run_setup

  monkeypatch.chdir(REPO)
  dist = run_setup("setup.py", stop_after="config")
  assert "ampspace.configs" in dist.packages
  assert dist.package_dir["ampspace.configs"] == "configs"
  assert os.path.isfile(os.path.join(REPO, "configs", "__init__.py"))


def test_one_override_engine_types_values_by_the_key():
  from ampspace.config_files import apply_override, load_config, set_key
  from ampspace.errors import AmpSpaceError

  c = load_config("wave2wavenet", "runlocal")
  apply_override(c, "optimizer.learning_rate=3e-3")  # YAML would read "3e-3" as text
  apply_override(c, "config.model.channels=8")
  apply_override(c, "train.tensorboard=false")
  apply_override(c, "dataset.data_dir=/data/gain=5")  # text keeps its own "="
  assert c.optimizer.learning_rate == 3e-3 and isinstance(c.optimizer.learning_rate, float)
  assert c.model.channels == 8 and c.train.tensorboard is False
  assert c.dataset.data_dir == "/data/gain=5"
  with pytest.raises(AmpSpaceError, match="no such config key 'chanels'"):
    apply_override(c, "model.chanels=8")
  with pytest.raises(AmpSpaceError, match="expected a int"):
    apply_override(c, "train.steps=many")
  with pytest.raises(AmpSpaceError, match="--set 'lr': expected KEY=VALUE"):
    apply_override(c, "lr")
  set_key(c, "train.steps", 7)
  assert c.train.steps == 7
