"""neural-amp-modeler's `.nam` file format for the NAM-layout WaveNet (`layer_array_wavenet`).

A `.nam` file is JSON: `version`, `architecture` ("WaveNet"), `config` (`layers`: one entry per
layer array, `head`, `head_scale`), `weights` (every tensor flattened into one list, in the
order NAM's WaveNet imports them), `sample_rate` and `metadata`. Per layer array the weights
are: the input rechannel (no bias); per layer the dilated conv (weight, bias), the input
mixin (weight; a 1x1 conv of the raw audio input), the layer 1x1 (our `residual`: weight,
bias); then the head rechannel (weight, bias if `head_bias`). The last value is `head_scale`.
Conv weights are PyTorch's [out, in, kernel], flattened row-major; Flax stores
[kernel, in, out], so each kernel is transposed on the way.

What maps: NAM has no knobs, so a model's conditioning vector `c` is folded into every
layer's conv bias at one setting on export (`to_nam(model, c)`); on import the knob
projection starts at zero, so fine-tuning begins exactly at the capture. NAM's input mixin
maps to `input_mixin=True`; a model without it exports zeros there. Files are written in the
oldest layout that can carry the model, so that older readers load them too: ungated models as
version 0.5.4 (`head_size`/`head_bias`/`kernel_size`/`activation: "Tanh"`, which the C++ core
still reads, plus the nested `head` object that neural-amp-modeler 0.13 requires); gated models
need the per-layer `gating_mode` lists of version 0.7.0. Both layouts, and NAM's own exports,
are read back.
"""

from __future__ import annotations

import dataclasses
import datetime
import json

import numpy as np

from ampspace import SAMPLE_RATE
from ampspace.errors import AmpSpaceError
from ampspace.files import write_json_atomic

LEGACY_VERSION = "0.5.4"  # the layout older readers know: head_size/head_bias/gated
GATED_VERSION = "0.7.0"  # per-layer gating_mode lists, needed for gated layers
NAM_FILE_SUFFIX = ".nam"
# NAM keys whose default values mean "the plain layout"; anything else is a feature our model
# lacks, so the file is refused rather than loaded wrong.
_FILM_KEYS = (
  "conv_pre_film",
  "conv_post_film",
  "input_mixin_pre_film",
  "input_mixin_post_film",
  "activation_pre_film",
  "activation_post_film",
  "layer1x1_post_film",
  "head1x1_post_film",
)


@dataclasses.dataclass(frozen=True)
class WaveNetShape:
  """What fixes the weight layout: the same for a NAM config and a LayerArrayWaveNet."""

  layer_arrays: tuple[tuple[int, int, tuple[int, ...]], ...]  # (channels, head_size, dilations)
  kernel_size: int
  gated: bool
  head_bias: tuple[bool, ...]  # per layer array

  def describe(self) -> str:
    arrays = ", ".join(
      f"{c} channels/head {h}/dilations {list(d)}" for c, h, d in self.layer_arrays
    )
    return (
      f"[{arrays}], kernel {self.kernel_size}, {'gated' if self.gated else 'tanh'}, "
      f"head bias {list(self.head_bias)}"
    )


def is_nam_file(path: str) -> bool:
  return str(path).lower().endswith(NAM_FILE_SUFFIX)


# ---------------------------------------------------------------- shapes
def shape_of_model(model, where: str = "model") -> WaveNetShape:
  """The NAM layout of a LayerArrayWaveNet, or an AmpSpaceError saying why NAM can't hold it."""
  from ampspace.models.layer_array_wavenet import LayerArrayWaveNet

  if not isinstance(model, LayerArrayWaveNet):
    raise AmpSpaceError(
      f"{where}: NAM's WaveNet has the layout of model.name="
      f"'layer_array_wavenet' only, not of a {type(model).__name__}"
    )
  if model.head is not None:
    raise AmpSpaceError(
      f"{where}: NAM's WaveNet is a regression model (num_classes=1), not "
      f"num_classes={model.num_classes}"
    )
  if not model.causal:
    raise AmpSpaceError(f"{where}: NAM's WaveNet is causal, this model is not (causal=False)")
  arrays = tuple(
    (
      int(a.rechannel.out_features),
      int(a.head_rechannel.out_features),
      tuple(int(np.ravel(l.conv.kernel_dilation)[0]) for l in a.layers),
    )
    for a in model.arrays
  )
  return WaveNetShape(
    arrays,
    int(model.kernel_size),
    bool(model.arrays[0].layers[0].gated),
    tuple(bool(a.head_rechannel.use_bias) for a in model.arrays),
  )


def _activation_name(value) -> str | None:
  if isinstance(value, dict):
    return value.get("type", value.get("name"))
  return value


def _layer_array_shape(la: dict, i: int, where: str) -> tuple[int, int, tuple, int, bool, bool]:
  """(channels, head_size, dilations, kernel_size, gated, head_bias) of one layer-array entry,
  in either the legacy (head_size, head_bias, gated) or the current (head, gating_mode) keys."""
  at = f"{where}: layers[{i}]"
  try:
    channels, dilations = int(la["channels"]), tuple(int(d) for d in la["dilations"])
    if la.get("head") is not None:
      head_size, head_bias = int(la["head"]["out_channels"]), bool(la["head"]["bias"])
      if int(la["head"].get("kernel_size", 1)) != 1:
        raise AmpSpaceError(
          f"{at}: a head rechannel with kernel_size "
          f"{la['head']['kernel_size']} is not supported (1 only)"
        )
    else:
      head_size, head_bias = int(la["head_size"]), bool(la["head_bias"])
    kernels = la["kernel_sizes"] if "kernel_sizes" in la else la["kernel_size"]
    condition_size = int(la["condition_size"])
  except (KeyError, TypeError, ValueError) as e:
    raise AmpSpaceError(f"{at}: missing or malformed field ({type(e).__name__}: {e})") from None
  kernels = [int(k) for k in kernels] if isinstance(kernels, list) else [int(kernels)]
  if len(set(kernels)) != 1:
    raise AmpSpaceError(f"{at}: kernel sizes {kernels} differ between layers (one size only)")
  if condition_size != 1:
    raise AmpSpaceError(f"{at}: condition_size {condition_size} is not supported (1: the audio)")
  if int(la.get("bottleneck", channels)) != channels:
    raise AmpSpaceError(
      f"{at}: bottleneck {la['bottleneck']} != channels {channels} is not supported"
    )
  if la.get("groups_input", 1) != 1 or la.get("groups_input_mixin", 1) != 1:
    raise AmpSpaceError(f"{at}: grouped convolutions are not supported")
  if (la.get("head1x1") or {}).get("active", False):
    raise AmpSpaceError(f"{at}: an active head1x1 is not supported")
  if (
    not (la.get("layer1x1") or {}).get("active", True)
    or (la.get("layer1x1") or {}).get("groups", 1) != 1
  ):
    raise AmpSpaceError(f"{at}: only an active, ungrouped layer1x1 is supported")
  if any((la.get(k) or {}).get("active", False) for k in _FILM_KEYS) or la.get("slimmable"):
    raise AmpSpaceError(f"{at}: FiLM and slimmable layers are not supported")
  activations = la.get("activation", "Tanh")
  activations = activations if isinstance(activations, list) else [activations]
  gating = la.get("gating_mode")
  if gating is None:
    gating = ["gated" if la.get("gated", False) else "none"]
  gating = gating if isinstance(gating, list) else [gating]
  secondary = la.get("secondary_activation")
  secondary = secondary if isinstance(secondary, list) else [secondary]
  if {_activation_name(a) for a in activations} != {"Tanh"}:
    raise AmpSpaceError(
      f"{at}: activation {[_activation_name(a) for a in activations]} is not supported (Tanh only)"
    )
  if len(set(gating)) != 1 or gating[0] not in ("none", "gated"):
    raise AmpSpaceError(f"{at}: gating_mode {gating} is not supported (all 'none' or all 'gated')")
  gated = gating[0] == "gated"
  if gated and "gating_mode" in la and {_activation_name(s) for s in secondary} != {"Sigmoid"}:
    raise AmpSpaceError(
      f"{at}: gated layers need secondary_activation Sigmoid, got "
      f"{[_activation_name(s) for s in secondary]}"
    )
  return channels, head_size, dilations, kernels[0], gated, head_bias


def shape_of_config(config: dict, where: str) -> WaveNetShape:
  """The layout a NAM WaveNet `config` describes, or an AmpSpaceError naming what we can't run."""
  if (
    not isinstance(config, dict)
    or not isinstance(config.get("layers"), list)
    or not config["layers"]
  ):
    raise AmpSpaceError(f"{where}: config has no 'layers' list")
  if config.get("head") is not None:
    raise AmpSpaceError(f"{where}: a WaveNet 'head' after the layer arrays is not supported")
  if config.get("condition_dsp") is not None:
    raise AmpSpaceError(f"{where}: a 'condition_dsp' is not supported")
  parsed = [_layer_array_shape(la, i, where) for i, la in enumerate(config["layers"])]
  if len({p[3] for p in parsed}) != 1 or len({p[4] for p in parsed}) != 1:
    raise AmpSpaceError(f"{where}: layer arrays differ in kernel size or gating (one for all)")
  for i, la in enumerate(config["layers"]):
    expected_in = 1 if i == 0 else parsed[i - 1][0]
    if int(la.get("input_size", expected_in)) != expected_in:
      raise AmpSpaceError(f"{where}: layers[{i}].input_size {la['input_size']} != {expected_in}")
    if i and parsed[i - 1][1] != parsed[i][0]:
      raise AmpSpaceError(
        f"{where}: layers[{i - 1}] head size {parsed[i - 1][1]} != "
        f"layers[{i}] channels {parsed[i][0]}"
      )
  return WaveNetShape(
    tuple((c, h, d) for c, h, d, *_ in parsed),
    parsed[0][3],
    parsed[0][4],
    tuple(p[5] for p in parsed),
  )


# ---------------------------------------------------------------- the flat weight order
def weight_slots(shape: WaveNetShape):
  """[(path in the model's parameter dict, NAM tensor shape)] in NAM's flat order; the path of
  the input mixin is ('input_mixer', ...) whether or not the model has one."""
  slots = []
  for i, (channels, head_size, dilations) in enumerate(shape.layer_arrays):
    width = 2 * channels if shape.gated else channels
    in_channels = 1 if i == 0 else shape.layer_arrays[i - 1][0]
    array = ("arrays", i)
    slots.append((array + ("rechannel", "kernel"), (channels, in_channels, 1)))
    for j in range(len(dilations)):
      layer = array + ("layers", j)
      slots += [
        (layer + ("conv", "kernel"), (width, channels, shape.kernel_size)),
        (layer + ("conv", "bias"), (width,)),
        (layer + ("input_mixer", "kernel"), (width, 1, 1)),
        (layer + ("residual", "kernel"), (channels, channels, 1)),
        (layer + ("residual", "bias"), (channels,)),
      ]
    slots.append((array + ("head_rechannel", "kernel"), (head_size, channels, 1)))
    if shape.head_bias[i]:
      slots.append((array + ("head_rechannel", "bias"), (head_size,)))
  return slots


def weight_count(shape: WaveNetShape) -> int:
  """Values in the `weights` list: every slot, then head_scale."""
  return sum(int(np.prod(s)) for _, s in weight_slots(shape)) + 1


def _get(tree, path):
  for key in path:
    tree = tree[key]
  return tree


def _set(tree, path, value):
  for key in path[:-1]:
    tree = tree.setdefault(key, {})
  tree[path[-1]] = value


def _to_nam(value: np.ndarray) -> np.ndarray:
  return np.transpose(value, (2, 1, 0)) if value.ndim == 3 else value  # [k,in,out] -> [out,in,k]


def _from_nam(value: np.ndarray) -> np.ndarray:
  return np.transpose(value, (2, 1, 0)) if value.ndim == 3 else value


# ---------------------------------------------------------------- export
def to_nam(
  model, c: np.ndarray | None = None, *, metadata: dict | None = None, where: str = "model"
) -> dict:
  """The `.nam` dictionary of a LayerArrayWaveNet, its conditioning fixed at `c`."""
  from flax import nnx

  shape = shape_of_model(model, where)
  params = nnx.state(model, nnx.Param).to_pure_dict()
  last_bias = ("arrays", len(shape.layer_arrays) - 1, "head_rechannel", "bias")
  flat = []
  for path, nam_shape in weight_slots(shape):
    if path[-2] == "input_mixer" and _get(params, path[:-2]).get("input_mixer") is None:
      value = np.zeros(nam_shape, np.float32)  # the model does not mix its input in
    else:
      value = _to_nam(np.asarray(_get(params, path), np.float32))
      if path[-2:] == ("conv", "bias") and _get(params, path[:-2]).get("mixer") is not None:
        if c is None:
          raise AmpSpaceError(
            f"{where}: the model is conditioned; give the setting to fold into the .nam file"
          )
        kernel = np.asarray(_get(params, path[:-2] + ("mixer", "kernel")), np.float32)
        if kernel.shape[0] != len(c):
          raise AmpSpaceError(
            f"{where}: the model conditions on {kernel.shape[0]} values, the setting has {len(c)}"
          )
        value = value + np.asarray(c, np.float32) @ kernel  # NAM has no knobs: fold them in
      if path == last_bias and getattr(model, "dc_free", False):
        # dc_free subtracts the response to silence at this setting: NAM's head bias does it
        setting = np.zeros((1, 0), np.float32) if c is None else np.float32(c)[None]
        value = value - np.asarray(model.silence_response(setting))[0] / model.head_scale
    flat.append(np.asarray(value, np.float32).reshape(-1))
  flat.append(np.float32([model.head_scale]))
  weights = np.concatenate(flat)
  now = datetime.datetime.now()
  return {
    "version": GATED_VERSION if shape.gated else LEGACY_VERSION,
    "metadata": {
      "date": {
        "year": now.year,
        "month": now.month,
        "day": now.day,
        "hour": now.hour,
        "minute": now.minute,
        "second": now.second,
      },
      **(metadata or {}),
    },
    "architecture": "WaveNet",
    "config": {
      "layers": [_layer_array_config(shape, i) for i in range(len(shape.layer_arrays))],
      "head": None,
      "head_scale": float(model.head_scale),
    },
    "weights": weights.astype(np.float64).tolist(),
    "sample_rate": SAMPLE_RATE,
  }


def _layer_array_config(shape: WaveNetShape, i: int) -> dict:
  channels, head_size, dilations = shape.layer_arrays[i]
  entry = {
    "input_size": 1 if i == 0 else shape.layer_arrays[i - 1][0],
    "condition_size": 1,
    "channels": channels,
    "dilations": list(dilations),
    # Newer readers take the nested head; older ones head_size/head_bias.
    "head": {"out_channels": head_size, "kernel_size": 1, "bias": shape.head_bias[i]},
    "head_size": head_size,
    "head_bias": shape.head_bias[i],
  }
  if shape.gated:
    n = len(dilations)
    entry.update(
      kernel_sizes=[shape.kernel_size] * n,
      activation=[{"type": "Tanh"}] * n,
      gating_mode=["gated"] * n,
      secondary_activation=[{"type": "Sigmoid"}] * n,
    )
  else:
    entry.update(kernel_size=shape.kernel_size, activation="Tanh", gated=False)
  return entry


def write_nam(path: str, nam: dict) -> None:
  """JSON, atomically: a reader never sees half a file."""
  write_json_atomic(path, nam)


# ---------------------------------------------------------------- import
@dataclasses.dataclass(frozen=True)
class NamWaveNet:
  """A read, checked `.nam` WaveNet: its layout, its weights by our parameter paths (NAM's
  input mixin included), head_scale and the file's metadata."""

  path: str
  shape: WaveNetShape
  tensors: dict
  head_scale: float
  sample_rate: float | None
  metadata: dict

  @property
  def mixes_input(self) -> bool:
    """Whether any input-mixin weight is non-zero (a capture trained by NAM: always)."""
    return any(np.any(v) for p, v in self.tensors.items() if p[-2] == "input_mixer")

  def model_kwargs(self) -> dict:
    """LayerArrayWaveNet keyword arguments that give this file's layout."""
    return {
      "layer_arrays": tuple(
        {"channels": c, "head_size": h, "dilations": d} for c, h, d in self.shape.layer_arrays
      ),
      "kernel_size": self.shape.kernel_size,
      "gated": self.shape.gated,
      "head_scale": self.head_scale,
      "num_classes": 1,
      "causal": True,
      "input_mixin": self.mixes_input,
    }


def read_nam(path: str) -> NamWaveNet:
  """Reads and checks a `.nam` file; an AmpSpaceError naming the file and the problem if it is
  corrupt, not a WaveNet, or uses a feature the NAM-layout WaveNet here does not have."""
  try:
    with open(path) as f:
      data = json.load(f)
  except FileNotFoundError:
    raise AmpSpaceError(f"{path}: no such .nam file") from None
  except (OSError, UnicodeDecodeError, ValueError) as e:
    raise AmpSpaceError(
      f"{path}: not a readable .nam file ({type(e).__name__}: "
      f"{str(e).splitlines()[0] if str(e) else ''})"
    ) from None
  if not isinstance(data, dict):
    raise AmpSpaceError(f"{path}: not a .nam file (expected a JSON object)")
  for key in ("version", "architecture", "config", "weights"):
    if key not in data:
      raise AmpSpaceError(f"{path}: not a .nam file (no {key!r})")
  if data["architecture"] != "WaveNet":
    raise AmpSpaceError(
      f"{path}: architecture {data['architecture']!r} is not supported (WaveNet only)"
    )
  shape = shape_of_config(data["config"], path)
  try:
    weights = np.asarray(data["weights"], np.float32).reshape(-1)
  except (TypeError, ValueError):
    raise AmpSpaceError(f"{path}: 'weights' is not a list of numbers") from None
  expected = weight_count(shape)
  if len(weights) != expected:
    raise AmpSpaceError(f"{path}: {len(weights)} weights, but its config implies {expected}")
  if not np.all(np.isfinite(weights)):
    raise AmpSpaceError(f"{path}: weights contain NaN or Inf")
  tensors, i = {}, 0
  for slot_path, nam_shape in weight_slots(shape):
    n = int(np.prod(nam_shape))
    tensors[slot_path] = _from_nam(weights[i : i + n].reshape(nam_shape))
    i += n
  return NamWaveNet(
    path,
    shape,
    tensors,
    float(weights[i]),
    data.get("sample_rate"),
    dict(data.get("metadata") or {}),
  )


def params_from_nam(nam: NamWaveNet, model):
  """`model`'s parameters (an nnx.State) holding the file's weights; the model must have the
  file's layout. The knob projection starts at zero, so the model ignores `c` until trained."""
  from flax import nnx

  shape = shape_of_model(model, f"{nam.path}: the config's model")
  if not model.head_scale:
    raise AmpSpaceError(f"{nam.path}: the config's model has head_scale 0")
  if shape != nam.shape:
    raise AmpSpaceError(
      f"{nam.path}: the file's WaveNet is {nam.shape.describe()}; the config's "
      f"model is {shape.describe()}"
    )
  has_input_mixer = model.arrays[0].layers[0].input_mixer is not None
  if nam.mixes_input and not has_input_mixer:
    raise AmpSpaceError(
      f"{nam.path}: the capture mixes its input into every layer (NAM's input "
      f"mixin); set model.input_mixin=True"
    )
  graphdef, state = nnx.split(model)
  params = state.to_pure_dict()
  for path, value in nam.tensors.items():
    if path[-2] == "input_mixer" and not has_input_mixer:
      continue  # all zeros (checked above)
    target = _get(params, path)  # an array, or a ShapeDtypeStruct for an abstract model
    if path[-2:] == ("head_rechannel", "kernel") or path[-2:] == ("head_rechannel", "bias"):
      if path[1] == len(shape.layer_arrays) - 1:
        # The scale is a constant of the model, not a weight: fold the file's into the head.
        value = value * (nam.head_scale / model.head_scale)
    _set(params, path, np.asarray(value, target.dtype).reshape(target.shape))
  for array in params["arrays"].values():
    for layer in array["layers"].values():
      if layer.get("mixer") is not None:
        kernel = layer["mixer"]["kernel"]
        layer["mixer"]["kernel"] = np.zeros(kernel.shape, kernel.dtype)
  nnx.replace_by_pure_dict(state, params)
  return state


def model_from_nam(path: str, cond_dim: int, **overrides):
  """A LayerArrayWaveNet of the file's layout holding its weights (knob projection zero)."""
  from flax import nnx

  from ampspace.models.layer_array_wavenet import LayerArrayWaveNet

  nam = read_nam(path)
  # Abstract: every value comes from the file, so nothing needs initialising (or compiling).
  model = nnx.eval_shape(
    lambda: LayerArrayWaveNet(cond_dim, **{**nam.model_kwargs(), **overrides}, rngs=nnx.Rngs(0))
  )
  graphdef, _ = nnx.split(model)
  return nnx.merge(graphdef, params_from_nam(nam, model))
