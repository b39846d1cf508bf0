"""`python -m ampspace.runtime.export --workdir=DIR --out=model.npz [--knobs=gain=5,...] [--fixed]`.

Writes a trained Wave2WaveNet as `model.npz` (weights, packed per layer as
`ampspace.runtime.stream.wave2wavenet_arrays` lays them out), `model.json` (architecture, the
conditioning vocabularies and knob ranges, default settings, the files' SHA-256 and where
they came from) and `model.w2w` (the same weights in the flat binary layout of the C runtime,
`ampspace/runtime/c_runtime/w2w.c`). `ampspace/runtime/export_runtime.py` runs the json/npz pair with NumPy
alone and `ampspace.runtime.c_runtime` runs it several times faster, block by block or offline; a
plugin or host can compile w2w.c and load model.w2w with no Python at all.

`--lv2=OUT_DIR` (with or without `--out`) also writes an installable LV2 plugin bundle with the
export inside (`ampspace.runtime.c_runtime.lv2_bundle`), e.g. `--lv2=$HOME/.lv2/amp.lv2`.

`--nam=OUT.nam` (with or without `--out`) writes a `layer_array_wavenet` as a
neural-amp-modeler file (`ampspace.nam_format`), its knobs fixed at the `--device/--knobs`
setting, since NAM models have none.

Two modes:
  live   (default) the conditioning weights and vocabularies are kept; knobs are set by name
         at run time (dial values in the device's knob ranges; `--knobs` become the defaults);
  fixed  (`--fixed`) the conditioning vector of `--device/--knobs/--attributes` is folded into
         every layer's bias (and a model.input_gain model's input gain into the input layer);
         the export takes no knobs and is smaller. A model with model.input_gain (the
         sim-to-real configs) exports in this mode only.
"""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np

from ampspace import SAMPLE_RATE, devices, nam_format, paths
from ampspace.runtime import c_runtime
from ampspace.runtime.c_runtime import lv2_bundle
from ampspace import conditioning as cond
from ampspace.runtime import export_format
from ampspace.runtime import export_runtime as rt
from ampspace.runtime import stream
from ampspace.errors import AmpSpaceError, report_errors
from ampspace.files import atomic_open, atomic_write

# checkpoints and ampspace.models import flax, which this module imports where used too:
# the vocabulary, knob and export-format helpers stay free of it.


def parse_assignments(text: str, flag: str, numeric: bool) -> dict:
  """'gain=5,bass=3' -> {'gain': 5.0, 'bass': 3.0}; a clear error for malformed items."""
  out = {}
  for item in filter(None, (s.strip() for s in (text or "").split(","))):
    name, sep, value = item.partition("=")
    if not sep or not name.strip() or not value.strip():
      raise AmpSpaceError(f"--{flag}: expected name=value items separated by commas, got {item!r}")
    if numeric:
      try:
        out[name.strip()] = float(value)
      except ValueError:
        raise AmpSpaceError(f"--{flag}: {name.strip()!r} must be a number, got {value!r}") from None
    else:
      out[name.strip()] = value.strip()
  return out


def _zoo_device(name: str):
  """The zoo's device `name`, or None where the zoo cannot build it here ("other", a plugin not
  installed)."""
  try:
    return devices.get_device(name)
  except AmpSpaceError:
    return None


def device_info(name: str | None) -> tuple[dict, dict, dict]:
  """(knob ranges, default dial values, attributes) of a device in the zoo; empty without one."""
  if not name:
    return {}, {}, {}
  if name not in cond.DEVICE_VOCAB:
    raise AmpSpaceError(
      f"--device {name!r} is not in the conditioning vocabulary "
      f"(ampspace/conditioning.py DEVICE_VOCAB)"
    )
  dev = _zoo_device(name)
  if dev is None:
    return {}, {}, {}  # in the vocabulary but not renderable here (e.g. a plugin not installed)
  ranges = {cond.canonical_knob(k.name): [float(k.minimum), float(k.maximum)] for k in dev.knobs}
  # attributes outside the vocabulary are ignored, as the dataset's annotation ignores them
  attrs = {str(k): str(v) for k, v in dev.attributes.items() if k in cond.ATTRIBUTE_VOCAB}
  return ranges, dict(dev.defaults), attrs


def vocabulary() -> dict:
  return {
    "version": cond.VOCAB_VERSION,
    "knob_vocab": list(cond.KNOB_VOCAB),
    "knob_aliases": dict(cond.KNOB_ALIASES),
    "device_vocab": list(cond.DEVICE_VOCAB),
    "gain_role_knobs": list(cond.GAIN_ROLE_KNOBS),
    "attribute_vocab": {k: list(v) for k, v in cond.ATTRIBUTE_VOCAB.items()},
  }


def setting_conditioning(setting: dict) -> np.ndarray:
  """The training code's conditioning vector for an export's setting ({"device", "knobs",
  "attributes"}), as the runtimes take knobs: the dials in the zoo device's knob ranges (others
  of the vocabulary as 0..10 dials), or all 0..10 where `device_info` finds no zoo device
  ("other", a plugin not installed here)."""
  device = setting["device"]
  return cond.conditioning_for(
    device,
    setting["knobs"],
    attributes=setting["attributes"],
    zoo=_zoo_device(device) is not None,
    strict=False,
    where="--knobs",
  )


def export_model(
  model,
  out: str,
  *,
  knobs: dict | None = None,
  device: str | None = None,
  attributes: dict | None = None,
  fixed: bool = False,
  source: dict | None = None,
) -> tuple[str, str]:
  """Writes the export pair for `model`; returns (json path, npz path)."""
  arch, weights = stream.arrays_of(model)
  ranges, dev_knobs, dev_attrs = device_info(device)
  defaults = {
    "device": device or "other",
    "knobs": {**dev_knobs, **(knobs or {})},
    "attributes": {**dev_attrs, **(attributes or {})},
  }
  c = setting_conditioning(defaults)
  if c.shape[0] != arch["cond_dim"] and arch["cond_dim"]:
    raise AmpSpaceError(
      f"the model conditions on {arch['cond_dim']} values but this code's "
      f"vocabulary gives {c.shape[0]} (vocabulary version {cond.VOCAB_VERSION})"
    )
  meta = {
    "format": export_format.FORMAT,
    "version": export_format.VERSION,
    "sample_rate": SAMPLE_RATE,
    "mode": "fixed" if fixed else "live",
    "arch": dict(arch),
    "source": source or {},
  }
  gain_w = weights.pop(stream.INPUT_GAIN, None)
  meta["arch"].pop("input_gain", None)
  if gain_w is not None:
    if not fixed:
      raise AmpSpaceError(
        "the model scales its input by the knobs (model.input_gain), which the live runtimes "
        "(NumPy, C, LV2) do not apply; export it at one setting with --fixed"
      )
    weights["input_w"] = weights["input_w"] * np.exp(np.float32(c) @ gain_w)
  if fixed:
    if arch["cond_dim"]:
      weights["conv_b"] = weights["conv_b"] + np.einsum("d,ldo->lo", c, weights["cond_w"])
    weights["cond_w"] = np.zeros((len(arch["dilations"]), 0, 2 * arch["channels"]), np.float32)
    meta["arch"]["cond_dim"] = 0
    meta["fixed"] = defaults
  else:
    meta["conditioning"] = {**vocabulary(), "knob_ranges": ranges}
    meta["defaults"] = defaults
  json_path, npz_path = rt.paths_of(out)
  with atomic_open(npz_path, "wb") as f:
    np.savez(f, **{k: np.asarray(v, np.float32) for k, v in weights.items()})
  meta["weights_file"] = os.path.basename(npz_path)
  meta["weights_sha256"] = rt.sha256_of(npz_path)
  c_path = os.path.splitext(npz_path)[0] + ".w2w"
  with atomic_open(c_path, "wb") as f:
    c_runtime.write_model_file(meta["arch"], weights, f)
  meta["c_runtime_file"] = os.path.basename(c_path)
  meta["c_runtime_sha256"] = rt.sha256_of(c_path)
  atomic_write(json_path, json.dumps(meta, indent=2))
  return json_path, npz_path


def export_workdir(workdir: str, out: str, *, step: int | None = None, **kwargs) -> tuple[str, str]:
  """Restores a training workdir's checkpoint and exports it."""
  from flax import nnx

  from ampspace import checkpoints
  from ampspace.models import get_model_cls

  config = checkpoints.load_config(workdir)
  if get_model_cls(config.model.get("name", "")).__name__ not in stream.ARRAYS_OF:
    raise AmpSpaceError(
      f"{paths.join(workdir, checkpoints.CONFIG_FILE)}: model "
      f"{config.model.get('name')!r} cannot be exported; export supports "
      f"{sorted(stream.ARRAYS_OF)}"
    )
  if config.model.get("input_gain", False) and not kwargs.get("fixed", False):
    raise AmpSpaceError(
      f"{paths.join(workdir, checkpoints.CONFIG_FILE)}: model.input_gain scales the input by "
      "the knobs, which the live runtimes do not apply; export it at one setting with --fixed"
    )
  graphdef, params, step = checkpoints.restore_params(workdir, config, step=step)
  model = nnx.merge(graphdef, params)
  source = {
    "workdir": paths.absolute(workdir),
    "step": int(step),
    "model": config.model.to_dict(),
    "dataset": config.dataset.get("name", ""),
  }
  return export_model(model, out, source=source, **kwargs)


def export_to_lv2(workdir: str, bundle: str, *, out: str | None = None, **kwargs) -> str:
  """Exports a workdir into an LV2 bundle folder (and to `out` too, when given); returns the
  plugin's URI. The destination is checked before the checkpoint is restored."""
  lv2_bundle.check_destination(bundle)
  with tempfile.TemporaryDirectory() as tmp:
    json_path, _ = export_workdir(workdir, out or os.path.join(tmp, "model"), **kwargs)
    return lv2_bundle.write_bundle(json_path, bundle)


def export_to_nam(
  workdir: str,
  path: str,
  *,
  step: int | None = None,
  device: str | None = None,
  knobs: dict | None = None,
  attributes: dict | None = None,
) -> str:
  """Writes a workdir's model as a `.nam` file at one setting (the device's defaults overridden
  by `knobs`); returns the path."""
  from flax import nnx

  from ampspace import checkpoints

  config = checkpoints.load_config(workdir)
  graphdef, params, step = checkpoints.restore_params(workdir, config, step=step)
  _, dev_knobs, dev_attrs = device_info(device)
  setting = {
    "device": device or "other",
    "knobs": {**dev_knobs, **(knobs or {})},
    "attributes": {**dev_attrs, **(attributes or {})},
  }
  c = setting_conditioning(setting)
  metadata = {
    "name": os.path.splitext(os.path.basename(path))[0],
    **({"gear_model": device} if device else {}),
    "ampspace": {
      "workdir": paths.absolute(workdir),
      "step": int(step),
      "model": config.model.to_dict(),
      "setting": setting,
    },
  }
  nam = nam_format.to_nam(
    nnx.merge(graphdef, params),
    c,
    metadata=metadata,
    where=paths.join(workdir, checkpoints.CONFIG_FILE),
  )
  nam_format.write_nam(path, nam)
  return path


# ---------------------------------------------------------------- CLI
def define_flags() -> None:
  from absl import flags

  flags.DEFINE_string("workdir", None, "A training workdir (holds config.json, checkpoints/).")
  flags.DEFINE_string("out", None, "Output path; writes OUT.npz, OUT.json and OUT.w2w.")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: latest).")
  flags.DEFINE_string("device", "", "Device name: its knob ranges, defaults and attributes.")
  flags.DEFINE_string("knobs", "", "Knob dial values, e.g. gain=5,bass=3.")
  flags.DEFINE_string("attributes", "", "Attributes, e.g. preamp_tube=12AX7.")
  flags.DEFINE_bool("fixed", False, "Fold the settings into the weights (no knobs at run time).")
  flags.DEFINE_string(
    "lv2",
    None,
    "Also write an LV2 plugin bundle to this folder (e.g. ~/.lv2/amp.lv2); --out is then optional.",
  )
  flags.DEFINE_string(
    "nam",
    None,
    "Also write a neural-amp-modeler .nam file of a "
    "layer_array_wavenet at the --device/--knobs setting; --out is then "
    "optional.",
  )


@report_errors
def main(argv):
  from absl import flags

  del argv
  f = flags.FLAGS
  if not f.workdir or not (f.out or f.lv2 or f.nam):
    raise AmpSpaceError("--workdir and --out (or --lv2, --nam) are required")
  if not paths.isdir(f.workdir):  # a local folder or a bucket URL (gs://bucket/run)
    raise AmpSpaceError(f"--workdir {f.workdir}: not a folder")
  settings = dict(
    step=f.step,
    device=f.device or None,
    knobs=parse_assignments(f.knobs, "knobs", True),
    attributes=parse_assignments(f.attributes, "attributes", False),
    fixed=f.fixed,
  )
  if f.lv2:
    uri = export_to_lv2(f.workdir, f.lv2, out=f.out, **settings)
    json_path, npz_path = rt.paths_of(f.out) if f.out else (None, None)
  elif f.out:
    json_path, npz_path = export_workdir(f.workdir, f.out, **settings)
  if f.nam:
    nam_settings = {k: v for k, v in settings.items() if k != "fixed"}  # a .nam is always fixed
    print(f"wrote {export_to_nam(f.workdir, f.nam, **nam_settings)}")
  if f.out:
    print(f"wrote {npz_path}, {os.path.splitext(npz_path)[0] + '.w2w'} and {json_path}")
  if f.lv2:
    print(f"wrote the LV2 bundle {f.lv2} (plugin <{uri}>)")


if __name__ == "__main__":
  from absl import app

  define_flags()
  app.run(main)
