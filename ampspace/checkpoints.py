"""Trained models on disk: a workdir's config, the model built from it, and its parameters
restored from the Orbax checkpoints.

This is what inference needs (evaluation, export, the notebooks, the soundspace, the
experiments' evaluations) without the trainers; the trainers write through the same functions.
A workdir holds `config.json` (the run's config) and `checkpoints/<step>/` (at least the
`params` item; the trainers add the optimiser and data-iterator state beside it, and the
weights' moving average as `ema`, which is then the model inference restores).
"""

from __future__ import annotations

import dataclasses
import json

import ml_collections
from flax import nnx

from ampspace import conditioning as cond
from ampspace import paths
from ampspace.errors import AmpSpaceError
from ampspace.files import atomic_write
from ampspace.models import get_model_cls
from ampspace.models import vae as vae_lib

CONFIG_FILE = "config.json"
EMA_ITEM = "ema"  # the weights' moving average, saved beside `params` by runs that keep one


def build_model(config: ml_collections.ConfigDict, seed: int | None = None):
  """The waveform model `config.model` describes (any family of ampspace.models)."""
  m = config.model
  kwargs = {k: v for k, v in m.to_dict().items() if k != "name"}
  return get_model_cls(m.name)(
    cond.conditioning_dim(), **kwargs, rngs=nnx.Rngs(config.seed if seed is None else seed)
  )


def build_vae(config: ml_collections.ConfigDict, seed: int | None = None):
  """The mel VAE `config.model` describes."""
  kwargs = {k: v for k, v in config.model.to_dict().items() if k != "name"}
  if "channels" in kwargs:
    kwargs["channels"] = tuple(kwargs["channels"])
  return vae_lib.MelVAE(**kwargs, rngs=nnx.Rngs(config.seed if seed is None else seed))


def save_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Writes `config.json` (on process 0 only)."""
  import jax

  if jax.process_index() == 0:
    atomic_write(paths.join(workdir, CONFIG_FILE), config.to_json_best_effort(indent=2))


def load_config(workdir: str) -> ml_collections.ConfigDict:
  path = paths.join(workdir, CONFIG_FILE)
  if not paths.exists(path):
    raise AmpSpaceError(f"{path}: not found; is {workdir} a training workdir?")
  return ml_collections.ConfigDict(json.loads(paths.read_text(path)))


def has_ema(mngr, step: int) -> bool:
  """Whether checkpoint `step` of an Orbax CheckpointManager holds the weights' moving average."""
  return (mngr.directory / str(step) / EMA_ITEM).exists()


def load_params_into(params, workdir_or_ckpt: str, step: int | None = None):
  """Fills `params` (an nnx.State) from a workdir, its checkpoints/ folder or one step folder
  (local or a URL such as gs://bucket/run); returns (params, step)."""
  import orbax.checkpoint as ocp

  path = paths.absolute(workdir_or_ckpt)
  if not paths.isdir(path):
    raise AmpSpaceError(f"{workdir_or_ckpt}: no such checkpoint folder or workdir")
  if paths.basename(path).isdigit() and step is None:  # a step folder: .../checkpoints/300
    path, step = paths.dirname(path), int(paths.basename(path))
  nested = paths.join(path, "checkpoints")
  ckpt_root = nested if paths.isdir(nested) else path
  mngr = ocp.CheckpointManager(
    paths.epath(ckpt_root), options=ocp.CheckpointManagerOptions(read_only=True, create=False)
  )
  step = mngr.latest_step() if step is None else step
  if step is None:
    raise AmpSpaceError(f"{ckpt_root}: no checkpoint found")
  # A run with optimizer.ema_decay also saved its weights' moving average: that is its model.
  item = EMA_ITEM if has_ema(mngr, step) else "params"
  restored = mngr.restore(
    step, args=ocp.args.Composite(**{item: ocp.args.StandardRestore(params.to_pure_dict())})
  )
  nnx.replace_by_pure_dict(params, restored[item])
  mngr.close()
  return params, step


def restore_params(
  workdir_or_ckpt: str, config: ml_collections.ConfigDict, step: int | None = None
):
  """(graphdef, params, step) of a model restored from a workdir's latest (or given) checkpoint."""
  r = restore_model(workdir_or_ckpt, config, step)
  return r.graphdef, r.params, r.step


@dataclasses.dataclass(frozen=True)
class Restored:
  """A restored waveform model: `nnx.merge(graphdef, params)` is the model."""

  graphdef: object
  params: object
  step: int
  context: tuple[int, int]  # input samples the model needs before and after each output
  config: ml_collections.ConfigDict


def restore_model(
  workdir_or_ckpt: str, config: ml_collections.ConfigDict | None = None, step: int | None = None
) -> Restored:
  """The model of a workdir (its own config unless `config` is given, e.g. another run's data
  with this run's architecture), built once and filled from its latest (or `step`) checkpoint."""
  config = config if config is not None else load_config(workdir_or_ckpt)
  model = build_model(config)
  context = tuple(int(c) for c in model.context)
  graphdef, params = nnx.split(model)
  params, step = load_params_into(params, workdir_or_ckpt, step)
  return Restored(graphdef, params, int(step), context, config)


def restore_vae(workdir: str, step: int | None = None):
  """(model, config, step) from a VAE training workdir's latest (or given) checkpoint."""
  config = load_config(workdir)
  if config.get("trainer") != "vae":
    raise AmpSpaceError(f"{workdir}: trained by {config.get('trainer')!r}, not the VAE trainer")
  graphdef, params = nnx.split(build_vae(config))
  params, step = load_params_into(params, workdir, step)
  return nnx.merge(graphdef, params), config, step
