"""Export round trip: the standalone NumPy runtime reproduces the JAX model, and rejects bad input."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from flax import nnx

from ampspace import conditioning as cond
from ampspace.runtime import export
from ampspace.runtime import export_runtime as rt
from ampspace.runtime import inference
from ampspace.errors import AmpSpaceError
from ampspace.models.wave2wavenet import Wave2WaveNet

D = cond.conditioning_dim()


@pytest.fixture(scope="module")
def model():
  return Wave2WaveNet(D, depth=8, channels=6, max_dilation=64, rngs=nnx.Rngs(5))


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("export") / "model.npz")
  return export.export_model(model, out, device="tube_amp", knobs={"gain": 7, "bass": 3})


def jax_output(model, di, c):
  graphdef, params = nnx.split(model)
  return inference.run_clip(inference.make_apply(graphdef, params), di, c, model.context)


def audio(n: int) -> np.ndarray:
  return np.random.default_rng(0).uniform(-0.8, 0.8, n).astype(np.float32)


def test_runtime_matches_jax_model_offline_and_streaming(model, exported):
  m = rt.load(exported[0])
  c = m.conditioning(knobs={"gain": 2})
  di = audio(5000)
  ref = jax_output(model, di, c)
  np.testing.assert_allclose(m.process(di, c), ref, atol=1e-5)
  for block in (32, 64, 333, 2048):  # any block size, also one that divides nothing
    s = m.stream(c)
    y = np.concatenate([s.process(di[i : i + block]) for i in range(0, len(di), block)])
    np.testing.assert_allclose(y, ref, atol=1e-5)


def test_runtime_conditioning_matches_the_training_layout(exported):
  m = rt.load(exported[0])
  got = m.conditioning(knobs={"Gain": 4, "treble": 10}, attributes={"clipping": "germanium"})
  _, defaults, _ = export.device_info("tube_amp")
  assert m.meta["defaults"]["knobs"] == {**defaults, "gain": 7, "bass": 3}
  want = cond.conditioning_for(
    "tube_amp", {"bass": 3, "gain": 4, "treble": 10}, attributes={"clipping": "germanium"}
  )
  np.testing.assert_array_equal(got, want)
  assert got[cond.KNOB_VOCAB.index("gain")] == pytest.approx(0.4)  # dial 4 of 0..10


def test_fixed_export_equals_live_export_at_its_settings(model, exported, tmp_path):
  fixed_json, _ = export.export_model(
    model, str(tmp_path / "fixed.npz"), device="tube_amp", knobs={"gain": 7, "bass": 3}, fixed=True
  )
  fixed, live = rt.load(fixed_json), rt.load(exported[0])
  assert fixed.cond_dim == 0 and fixed.weights["cond_w"].size == 0
  di = audio(3000)
  np.testing.assert_allclose(fixed.process(di), live.process(di), atol=1e-5)
  with pytest.raises(AmpSpaceError, match="fixed export takes no knobs"):
    fixed.stream(knobs={"gain": 1})


def test_live_knob_change_in_runtime_is_ramped_like_the_jax_streamer(model, exported):
  from ampspace.runtime import stream

  m = rt.load(exported[0])
  a, b = m.conditioning(knobs={"gain": 1}), m.conditioning(knobs={"gain": 9})
  di = audio(64 * 40)
  ref = stream.Streamer(model, 64).run(di, a, changes={10: b})
  s = m.stream(a)
  out = []
  for i in range(40):
    if i == 10:
      s.set_knobs(gain=9)
    out.append(s.process(di[i * 64 : (i + 1) * 64]))
  np.testing.assert_allclose(np.concatenate(out), ref, atol=1e-5)


def test_unknown_knob_and_attribute_are_clear_errors(exported):
  m = rt.load(exported[0])
  with pytest.raises(AmpSpaceError, match="knob 'wah' is not in the model's conditioning"):
    m.stream(knobs={"wah": 3})
  with pytest.raises(AmpSpaceError, match="attribute 'colour'"):
    m.conditioning(attributes={"colour": "red"})
  with pytest.raises(AmpSpaceError, match="not a number"):
    m.conditioning(knobs={"gain": "loud"})
  with pytest.raises(AmpSpaceError, match="conditioning vector has 3 values"):
    m.stream(np.zeros(3))


def test_missing_and_corrupt_exports_are_clear_errors(exported, tmp_path):
  json_path, npz_path = exported
  with pytest.raises(AmpSpaceError, match="export file not found"):
    rt.load(str(tmp_path / "nothing.json"))
  # npz missing beside its JSON
  shutil.copy(json_path, tmp_path / "lonely.json")
  with pytest.raises(AmpSpaceError, match="lonely.npz: export file not found"):
    rt.load(str(tmp_path / "lonely.json"))
  # one byte of the weights changed: the checksum catches it
  shutil.copy(json_path, tmp_path / "bad.json")
  data = bytearray(open(npz_path, "rb").read())
  data[len(data) // 2] ^= 0xFF
  (tmp_path / "bad.npz").write_bytes(bytes(data))
  with pytest.raises(AmpSpaceError, match="checksum does not match"):
    rt.load(str(tmp_path / "bad.npz"))
  # truncated JSON
  shutil.copy(npz_path, tmp_path / "trunc.npz")
  (tmp_path / "trunc.json").write_text(open(json_path).read()[:100])
  with pytest.raises(AmpSpaceError, match="not valid JSON"):
    rt.load(str(tmp_path / "trunc.json"))
  # weights whose shapes disagree with the arch
  w = dict(np.load(npz_path))
  w["conv_w"] = w["conv_w"][:, :-1]
  meta = rt.load(json_path).meta
  with pytest.raises(AmpSpaceError, match="'conv_w' have shape"):
    rt.Model(meta, w, where="test")


RUNNER = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path, target=None):
    if name.split('.')[0] in ('ampspace', 'jax', 'flax'):
      raise ImportError('blocked ' + name)
sys.meta_path.insert(0, Block())
import numpy as np, export_runtime as rt
m = rt.load(sys.argv[1])
x = np.load(sys.argv[2])
s = m.stream(knobs={'gain': 2})
y = np.concatenate([s.process(x[i:i + 100]) for i in range(0, len(x), 100)])
np.save(sys.argv[3], y)
assert rt.ExportError.__mro__[1] is ValueError
"""


def test_runtime_works_as_a_single_copied_file_with_numpy_only(model, exported, tmp_path):
  shutil.copy(rt.__file__, tmp_path / "export_runtime.py")
  (tmp_path / "run.py").write_text(RUNNER)
  di = audio(1500)
  np.save(tmp_path / "x.npy", di)
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  subprocess.run(
    [sys.executable, "run.py", exported[0], "x.npy", "y.npy"],
    cwd=tmp_path,
    env=env,
    check=True,
    timeout=120,
  )
  c = rt.load(exported[0]).conditioning(knobs={"gain": 2})
  np.testing.assert_allclose(np.load(tmp_path / "y.npy"), jax_output(model, di, c), atol=1e-5)


def training_workdir(
  workdir: str, config_name: str = "wave2wavenet", *, checkpoint: bool = True, **model_fields
):
  """A training workdir of `configs/<config_name>.py:runlocal` (its model fields overridden)
  holding the freshly initialised model as the checkpoint of step 7; returns the model.
  checkpoint=False: the config alone (no model is built), returns None."""
  import orbax.checkpoint as ocp

  from ampspace.config_files import load_config
  from ampspace.trainers import common

  config = load_config(config_name, "runlocal")
  for key, value in model_fields.items():
    config.model[key] = value
  os.makedirs(workdir)
  common.save_config(config, workdir)
  if not checkpoint:
    return None
  model = common.build_model(config)
  _, params = nnx.split(model)
  mngr = common.checkpoint_manager(workdir, config)
  mngr.save(7, args=ocp.args.Composite(params=ocp.args.StandardSave(params.to_pure_dict())))
  mngr.wait_until_finished()
  mngr.close()
  return model


def test_export_from_a_training_workdir(tmp_path):
  workdir = str(tmp_path / "run")
  model = training_workdir(workdir, depth=4, channels=4, max_dilation=8)
  json_path, _ = export.export_workdir(
    workdir, str(tmp_path / "out" / "amp"), knobs={"gain": 5}, device="ts_overdrive"
  )
  m = rt.load(json_path)
  assert m.meta["source"]["step"] == 7 and m.meta["defaults"]["device"] == "ts_overdrive"
  di = audio(800)
  c = m.conditioning()
  np.testing.assert_allclose(m.process(di), jax_output(model, di, c), atol=1e-5)


def test_input_gain_model_exports_fixed_with_its_gain_folded_in_and_not_live(tmp_path):
  model = Wave2WaveNet(D, depth=4, channels=4, max_dilation=8, input_gain=True, rngs=nnx.Rngs(1))
  model.input_gain.kernel[...] = np.random.default_rng(0).normal(size=(D, 1)).astype(np.float32)
  setting = {"device": "tube_amp", "knobs": {"gain": 8}}
  json_path, npz_path = export.export_model(
    model, str(tmp_path / "fixed.npz"), **setting, fixed=True
  )
  m = rt.load(json_path)
  assert "input_gain" not in m.meta["arch"] and "input_gain_w" not in m.weights
  di = audio(1500)
  c = export.setting_conditioning(m.meta["fixed"])
  np.testing.assert_allclose(m.process(di), jax_output(model, di, c), atol=1e-5)
  with pytest.raises(AmpSpaceError, match="model.input_gain.*--fixed"):
    export.export_model(model, str(tmp_path / "live.npz"), **setting)
  assert sorted(os.listdir(tmp_path)) == ["fixed.json", "fixed.npz", "fixed.w2w"]  # no live.*


def test_cli_assignments_parse_and_reject():
  assert export.parse_assignments("gain=5, bass=3.5", "knobs", True) == {"gain": 5.0, "bass": 3.5}
  assert export.parse_assignments("", "knobs", True) == {}
  with pytest.raises(AmpSpaceError, match="--knobs: 'gain' must be a number"):
    export.parse_assignments("gain=loud", "knobs", True)
  with pytest.raises(AmpSpaceError, match="name=value"):
    export.parse_assignments("gain", "knobs", True)
  with pytest.raises(AmpSpaceError, match="not in the conditioning vocabulary"):
    export.device_info("no_such_amp")
