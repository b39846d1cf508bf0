"""ampspace/checkpoints.py: a workdir's config and parameters, restored without the trainers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ampspace import checkpoints
from ampspace.config_files import load_config as load_config_file
from ampspace.errors import AmpSpaceError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_data_dir):
  """A workdir with a tiny untrained Wave2WaveNet checkpoint at step 3, saved as the trainers
  save it."""
  import orbax.checkpoint as ocp
  from flax import nnx

  from ampspace.trainers import common

  wd = str(tmp_path_factory.mktemp("ckpt"))
  config = load_config_file("wave2wavenet", "runlocal")
  config.dataset.data_dir = tiny_data_dir
  config.model.depth, config.model.channels = 4, 8
  config.train.async_checkpoints = False
  checkpoints.save_config(config, wd)
  _, params = nnx.split(checkpoints.build_model(config, seed=7))
  mngr = common.checkpoint_manager(wd, config)
  mngr.save(3, args=ocp.args.Composite(params=ocp.args.StandardSave(params.to_pure_dict())))
  mngr.wait_until_finished()
  mngr.close()
  return wd


def test_config_round_trip_and_missing_config(workdir, tmp_path):
  config = checkpoints.load_config(workdir)
  assert config.model.depth == 4 and config.model.channels == 8
  with pytest.raises(AmpSpaceError, match=r"config\.json: not found"):
    checkpoints.load_config(str(tmp_path))


def test_restore_model_builds_once_and_restores_the_saved_parameters(workdir):
  from flax import nnx

  r = checkpoints.restore_model(workdir)
  config = checkpoints.load_config(workdir)
  fresh = checkpoints.build_model(config, seed=0)  # another init: restoring must overwrite it
  saved = nnx.split(checkpoints.build_model(config, seed=7))[1].to_pure_dict()
  assert r.step == 3 and r.context == tuple(fresh.context) and r.context[0] > 0
  got = r.params.to_pure_dict()
  leaves = lambda d: [np.asarray(x) for x in __import__("jax").tree_util.tree_leaves(d)]
  assert all(np.array_equal(a, b) for a, b in zip(leaves(got), leaves(saved)))
  assert not all(
    np.array_equal(a, b) for a, b in zip(leaves(got), leaves(nnx.split(fresh)[1].to_pure_dict()))
  )
  graphdef, params, step = checkpoints.restore_params(workdir, config, 3)
  assert step == 3 and nnx.merge(graphdef, params).context == r.context
  with pytest.raises(AmpSpaceError, match="no such checkpoint folder"):
    checkpoints.restore_model(os.path.join(workdir, "nowhere"), config)


def test_inference_loads_and_exports_without_importing_the_trainers(workdir, tmp_path):
  script = f"""
import sys
from ampspace import notebook_utils
from ampspace.runtime import export
model = notebook_utils.load_model({workdir!r})
assert model.step == 3, model.step
import numpy as np
y = model(np.zeros(4096, np.float32), notebook_utils.conditioning_for("tube_amp"))
assert y.shape == (4096,) and np.all(np.isfinite(y))
import os
json_path, npz_path = export.export_workdir({workdir!r}, {str(tmp_path / "model")!r})
assert os.path.exists(json_path) and os.path.exists(npz_path)
print([m for m in sys.modules if m.startswith("ampspace.trainers")])
"""
  out = subprocess.run(
    [sys.executable, "-c", script],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
    env={**os.environ, "JAX_PLATFORMS": "cpu"},
  )
  assert out.returncode == 0, out.stderr[-3000:]
  assert json.loads(out.stdout.strip().splitlines()[-1].replace("'", '"')) == []
