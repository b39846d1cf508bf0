""".nam export and import: round trip, weight count, one-line errors, fine-tuning from a .nam,
and (with .venv-nam, `bash benchmarks/setup_nam_venv.sh`) neural-amp-modeler's own loader."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from ampspace import conditioning as cond
from ampspace import nam_format
from ampspace.errors import AmpSpaceError
from ampspace.models import get_model_cls
from ampspace.models.layer_array_wavenet import NAM_STANDARD
from ampspace.trainers import common
from ampspace.trainers import wave2wavenet as trainer
from nam_venv import nam_python_or_skip
from trainer_util import REPO, tiny_config

SMALL_ARRAYS = (
  {"channels": 4, "head_size": 3, "dilations": (1, 2, 4)},
  {"channels": 3, "head_size": 1, "dilations": (1, 2)},
)
COND = cond.conditioning_dim()


def _abstract(name="layer_array_wavenet", **kw):
  """The model's structure, no values: building it for real compiles every initialiser."""
  return nnx.eval_shape(lambda: get_model_cls(name)(COND, **kw, rngs=nnx.Rngs(0)))


def _model(layer_arrays=SMALL_ARRAYS, seed=0, **kw):
  """A LayerArrayWaveNet with every parameter (biases too) random, so no slot hides in zeros."""
  graphdef, state = nnx.split(_abstract(layer_arrays=layer_arrays, **kw))
  rng = np.random.default_rng(seed)

  def draw(leaf):  # scaled by fan-in ([..., in, out] kernels), so tanh does not saturate
    scale = 0.5 / np.sqrt(max(1, int(np.prod(leaf.shape[:-1]))))
    return (scale * rng.standard_normal(leaf.shape)).astype(np.float32)

  return nnx.merge(graphdef, jax.tree.map(draw, state))


def _setting(seed=1) -> np.ndarray:
  return np.random.default_rng(seed).uniform(0, 1, COND).astype(np.float32)


def _signal(model, n=700, seed=2) -> np.ndarray:
  """Guitar-like test input: a decaying chord plus a little noise, receptive field included."""
  t = np.arange(n + model.receptive_field - 1) / 44100
  rng = np.random.default_rng(seed)
  x = sum(np.sin(2 * np.pi * f * t) for f in (82.4, 110.0, 146.8)) * np.exp(-3 * t) / 3
  return (x + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def _predict(model, x, c) -> np.ndarray:
  graphdef, state = nnx.split(model)  # jitted: one compilation, not one per eager op
  apply = jax.jit(lambda s, x, c: nnx.merge(graphdef, s)(x, c))
  return np.asarray(apply(state, jnp.asarray(x)[None, :, None], jnp.asarray(c)[None]))[0, :, 0]


def _write(tmp_path, model, c, name="m.nam") -> str:
  path = str(tmp_path / name)
  nam_format.write_nam(path, nam_format.to_nam(model, c))
  return path


# ---------------------------------------------------------------- NAM-free
@pytest.mark.parametrize(
  "kw", [{}, {"gated": True}, {"input_mixin": True, "head_scale": 0.1}, {"dc_free": True}]
)
def test_export_import_round_trip(tmp_path, kw):
  """A model written as .nam and read back predicts what it did at the exported setting, and
  writes the same weights again (a dc_free model's offset at that setting is in the head bias)."""
  model, c = _model(**kw), _setting()
  path = _write(tmp_path, model, c)
  loaded = nam_format.model_from_nam(path, COND)
  x = _signal(model)
  np.testing.assert_allclose(
    _predict(loaded, x, np.zeros(COND, np.float32)), _predict(model, x, c), atol=1e-6
  )
  with open(path) as f:
    written = json.load(f)
  assert nam_format.to_nam(loaded, np.zeros(COND, np.float32))["weights"] == written["weights"]
  assert written["version"] == ("0.7.0" if kw.get("gated") else "0.5.4")
  assert written["architecture"] == "WaveNet" and written["sample_rate"] == 44100


@pytest.mark.parametrize("gated", [False, True])
def test_weight_count_is_what_the_config_implies(tmp_path, gated):
  """Counted from the config alone, as NAM's importer walks it: per array a rechannel (no
  bias); per layer the dilated conv (+bias), the input mixin, the 1x1 (+bias); the head
  rechannel (+bias where head_bias); head_scale last."""
  model = _model(NAM_STANDARD, gated=gated)
  nam = nam_format.to_nam(model, _setting())
  count = 1
  for la in nam["config"]["layers"]:
    k = la["kernel_sizes"][0] if "kernel_sizes" in la else la["kernel_size"]
    ch, width = la["channels"], la["channels"] * (1 + gated)
    count += la["input_size"] * ch
    count += len(la["dilations"]) * (width * ch * k + width + width + ch * ch + ch)
    count += ch * la["head"]["out_channels"] + (
      la["head"]["out_channels"] if la["head"]["bias"] else 0
    )
  assert len(nam["weights"]) == count == nam_format.weight_count(nam_format.shape_of_model(model))
  if not gated:
    assert count == 13802  # NAM's "standard" WaveNet: 13801 weights + head_scale


def _broken(path, data):
  with open(path, "w") as f:
    f.write(data if isinstance(data, str) else json.dumps(data))
  return str(path)


def test_corrupt_or_unsupported_files_fail_with_one_line(tmp_path):
  good = json.load(open(_write(tmp_path, _model(), _setting())))
  relu = json.loads(json.dumps(good))
  relu["config"]["layers"][0]["activation"] = "ReLU"
  short = dict(good, weights=good["weights"][:-1])
  headed = json.loads(json.dumps(good))
  headed["config"]["head"] = {"channels": 4, "num_layers": 1, "out_channels": 1}
  cases = {
    "truncated": (json.dumps(good)[:200], "not a readable .nam file"),
    "not_json": ("RIFF....WAVEfmt ", "not a readable .nam file"),
    "no_weights": ({k: v for k, v in good.items() if k != "weights"}, "no 'weights'"),
    "lstm": (dict(good, architecture="LSTM"), "architecture 'LSTM' is not supported"),
    "short": (
      short,
      f"{len(good['weights']) - 1} weights, but its config implies {len(good['weights'])}",
    ),
    "relu": (relu, r"layers\[0\]: activation \['ReLU'\] is not supported"),
    "head": (headed, "a WaveNet 'head' after the layer arrays is not supported"),
  }
  for name, (data, match) in cases.items():
    path = _broken(tmp_path / f"{name}.nam", data)
    with pytest.raises(AmpSpaceError, match=match) as e:
      nam_format.read_nam(path)
    assert str(e.value).startswith(path) and "\n" not in str(e.value), name
  with pytest.raises(AmpSpaceError, match="no such .nam file"):
    nam_format.read_nam(str(tmp_path / "missing.nam"))


@pytest.mark.parametrize(
  "name, kw, match",
  [
    ("wave2wavenet", dict(depth=3, channels=4, max_dilation=4), "layer_array_wavenet' only"),
    ("layer_array_wavenet", dict(layer_arrays=SMALL_ARRAYS, num_classes=256), "num_classes=1"),
    ("layer_array_wavenet", dict(layer_arrays=SMALL_ARRAYS, causal=False), "causal"),
  ],
)
def test_models_nam_cannot_represent_are_refused_in_one_line(name, kw, match):
  model = _abstract(name, **kw)
  with pytest.raises(AmpSpaceError, match=match) as e:
    nam_format.to_nam(model, _setting(), where="run/config.json")
  assert str(e.value).startswith("run/config.json: ") and "\n" not in str(e.value)


# ---------------------------------------------------------------- export from a workdir, fine-tune
def _nam_config(data_dir, **overrides):
  c = tiny_config(data_dir, **overrides)
  c.model = ml_collections.ConfigDict(
    {"name": "layer_array_wavenet", "num_classes": 1, "layer_arrays": SMALL_ARRAYS}
  )
  c.loss.name = "mse"
  return c


@pytest.fixture(scope="module")
def trained(tiny_data_dir, tmp_path_factory):
  """A 3-step layer_array_wavenet run, exported by the command line at tube_amp gain 7."""
  workdir = str(tmp_path_factory.mktemp("nam_run"))
  trainer.train_and_evaluate(_nam_config(tiny_data_dir, **{"train.steps": 3}), workdir)
  path = os.path.join(workdir, "capture.nam")
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "ampspace.runtime.export",
      f"--workdir={workdir}",
      f"--nam={path}",
      "--device=tube_amp",
      "--knobs=gain=7",
    ],
    capture_output=True,
    text=True,
    cwd=REPO,
    timeout=300,
  )
  assert result.returncode == 0, result.stderr[-2000:]
  config = common.load_config(workdir)
  graphdef, params, _ = common.restore_params(workdir, config)
  c = cond.conditioning_for("tube_amp", {"gain": 7.0})
  return workdir, path, nnx.merge(graphdef, params), c


def test_exported_workdir_predicts_like_the_model_at_its_setting(trained):
  _, path, model, c = trained
  nam = json.load(open(path))
  assert nam["metadata"]["ampspace"]["setting"]["knobs"]["gain"] == 7.0
  x = _signal(model)
  np.testing.assert_allclose(
    _predict(nam_format.model_from_nam(path, COND), x, c), _predict(model, x, c), atol=1e-6
  )


def test_fine_tuning_from_a_nam_starts_at_the_capture(trained, tiny_data_dir, tmp_path):
  """init_from=capture.nam: before any step the model predicts what the exported one did (for
  every setting: the knob projection starts at zero); a model of another layout is refused."""
  _, path, model, c = trained
  config = _nam_config(tiny_data_dir, init_from=path, **{"train.steps": 0})
  result = trainer.train_and_evaluate(config, str(tmp_path / "ft"))
  graphdef, _ = nnx.split(common.build_model(config))
  tuned = nnx.merge(graphdef, result["params"])
  x = _signal(model)
  for other in (c, _setting(5)):
    np.testing.assert_allclose(_predict(tuned, x, other), _predict(model, x, c), atol=1e-6)
  wider = _nam_config(tiny_data_dir, init_from=path, **{"train.steps": 0})
  wider.model.layer_arrays = ({**SMALL_ARRAYS[0], "channels": 5}, SMALL_ARRAYS[1])
  with pytest.raises(AmpSpaceError, match="the file's WaveNet is .* the config's model is") as e:
    trainer.train_and_evaluate(wider, str(tmp_path / "wider"))
  assert str(e.value).startswith(path) and "\n" not in str(e.value)


def test_capture_with_input_mixin_needs_it_in_the_config(tmp_path, tiny_data_dir):
  path = _write(tmp_path, _model(input_mixin=True), _setting())
  config = _nam_config(tiny_data_dir, init_from=path, **{"train.steps": 0})
  with pytest.raises(AmpSpaceError, match="set model.input_mixin=True"):
    trainer.train_and_evaluate(config, str(tmp_path / "w"))
  config.model.input_mixin = True
  trainer.train_and_evaluate(config, str(tmp_path / "w2"))


# ---------------------------------------------------------------- neural-amp-modeler itself
NAM_RUNNER = """
import json, os, sys
import numpy as np, torch
from nam.models import init_from_nam
from nam.models.wavenet import WaveNet

# A capture as NAM's trainer writes it: its "standard" WaveNet, exported by NAM itself.
capture, capture_x, capture_y, *runs = sys.argv[1:]
torch.manual_seed(0)
standard = [dict(input_size=i, condition_size=1, channels=c, kernel_size=3, activation="Tanh",
                 dilations=[2 ** d for d in range(10)], head=dict(out_channels=h, kernel_size=1,
                 bias=b)) for i, c, h, b in ((1, 16, 8, False), (16, 8, 1, True))]
net = WaveNet.init_from_config({"layers_configs": standard, "head": None, "head_scale": 0.02})
net.eval()
net.export(os.path.dirname(capture), basename=os.path.basename(capture)[:-len(".nam")])
runs = [(capture, capture_x, capture_y)] + list(zip(*[iter(runs)] * 3))
for nam_path, x_path, y_path in runs:
  with open(nam_path) as f:
    data = json.load(f)
  model = init_from_nam(data)
  model.eval()
  assert len(model._export_weights()) == len(data["weights"]), nam_path
  with torch.no_grad():
    y = model(torch.from_numpy(np.load(x_path))[None], pad_start=False)[0]
  np.save(y_path, y.numpy())
"""


@pytest.fixture(scope="module")  # the scope of `trained`, so it skips before training
def nam_python() -> str:
  """.venv-nam's interpreter; skips (fails with AMPSPACE_REQUIRE_NAM=1) when it is absent."""
  return nam_python_or_skip()


def test_neural_amp_modeler_agrees_both_ways(nam_python, trained, tmp_path):
  """With NAM's own package (`nam.models.init_from_nam`, in .venv-nam): every file we write
  loads there and gives our JAX model's output to 1e-5 (the trained workdir's export, and the
  "standard" layout plain and gated); and a capture NAM exports loads here (into a model with
  the input mixin) and gives NAM's output to 1e-5."""
  _, trained_path, trained_model, trained_c = trained
  cases = [(trained_path, trained_model, trained_c)]
  for i, kw in enumerate([{}, {"gated": True, "input_mixin": True}, {"dc_free": True}]):
    model, c = _model(NAM_STANDARD, seed=i, **kw), _setting(i)
    cases.append((_write(tmp_path, model, c, f"standard{i}.nam"), model, c))
  capture = str(tmp_path / "capture.nam")
  x_capture = _signal(_abstract(layer_arrays=NAM_STANDARD), n=2000, seed=9)
  np.save(tmp_path / "x_capture.npy", x_capture)
  args, expected = [capture, str(tmp_path / "x_capture.npy"), str(tmp_path / "y_capture.npy")], []
  for i, (path, model, c) in enumerate(cases):
    x = _signal(model, n=2000, seed=i)
    np.save(tmp_path / f"x{i}.npy", x)
    args += [path, str(tmp_path / f"x{i}.npy"), str(tmp_path / f"y{i}.npy")]
    expected.append(_predict(model, x, c))
  result = subprocess.run(
    [nam_python, "-c", NAM_RUNNER, *args], capture_output=True, text=True, timeout=300
  )
  assert result.returncode == 0, result.stderr[-3000:]
  for i, want in enumerate(expected):
    got = np.load(tmp_path / f"y{i}.npy")
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5, err_msg=cases[i][0])
  assert json.load(open(capture))["version"] == "0.7.0"  # NAM's current layout, read here too
  ours = nam_format.model_from_nam(capture, COND)
  assert ours.arrays[0].layers[0].input_mixer is not None
  np.testing.assert_allclose(
    _predict(ours, x_capture, np.zeros(COND, np.float32)),
    np.load(tmp_path / "y_capture.npy"),
    atol=1e-5,
  )
