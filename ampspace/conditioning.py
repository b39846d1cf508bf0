"""The fixed-size conditioning representation shared by the dataset, the pipeline and the models.

Every device's knobs map into one global knob vocabulary (value in [0, 1] plus a presence mask),
its attributes into per-attribute vocabularies (index 0 = unknown/none), and its name into a
device vocabulary (index 0 = other). The vectors are fixed-size, so one model conditions on any
mix of devices.

Vocabularies only ever grow by appending: an index, once given, never changes meaning, so a
dataset written earlier stays readable. Bump `VOCAB_VERSION` when appending.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ampspace.errors import AmpSpaceError

VOCAB_VERSION = 3  # 2: the device zoo appended; 3: the gain role (GAIN_ROLE_KNOBS)

KNOB_VOCAB: tuple[str, ...] = (
  "gain",
  "bass",
  "mid",
  "treble",
  "presence",
  "master",
  "volume",
  "drive",
  "tone",
  "level",
  "bias",
  "fuzz",
  "sustain",
  "threshold",
  "ratio",
  "attack",
  "release",
  "makeup",
  "low",
  "low_mid",
  "high_mid",
  "high",
  "blend",
  "depth",
  "resonance",
  "sag",
  "mix",
  "input",
  "output",
  "contour",
  "filter",
  "boost",
  # appended: device zoo (native devices and Guitarix LV2 ports)
  "saturation",
  "cabinet",
)

# Knob names as plugins spell them -> our vocabulary.
KNOB_ALIASES: dict[str, str] = {
  "pregain": "gain",
  "drive_level": "drive",
  "distortion": "drive",
  "overdrive": "drive",
  "middle": "mid",
  "mids": "mid",
  "highs": "high",
  "lows": "low",
  "vol": "volume",
  "mastergain": "master",
  "makeup_gain": "makeup",
  "makeupgain": "makeup",
  "knee": "contour",
  "wet_dry": "mix",
  "wetdry": "mix",
  "outputlevel": "output",
  "inputlevel": "input",
}

ATTRIBUTE_VOCAB: dict[str, tuple[str, ...]] = {
  "preamp_tube": ("unknown", "none", "12AX7", "12AT7", "12AU7", "ECC83", "6SL7", "EF86"),
  "power_tube": ("unknown", "none", "EL34", "6L6", "EL84", "6V6", "KT88", "6550"),
  "tone_stack": (
    "unknown",
    "none",
    "shelving",
    "fender",
    "marshall",
    "vox",
    "baxandall",
    "tilt",
    "big_muff",
    "james",
    "mesa",
  ),
  "clipping": ("unknown", "none", "silicon", "germanium", "led", "mosfet", "tube", "asymmetric"),
  "transistor": ("unknown", "none", "silicon", "germanium", "jfet", "op_amp"),
  "topology": (
    "unknown",
    "none",
    "feedback",
    "feedforward",
    "hard_clip",
    "soft_clip",
    "gated",
    "rectifier",
  ),
}

DEVICE_VOCAB: tuple[str, ...] = (
  "other",
  "tube_amp",
  # appended: the device zoo (ampspace/devices)
  "tube_amp_fender",
  "tube_amp_mesa",
  "tube_amp_el84",
  "tube_amp_12at7",
  "tube_amp_4x12",
  "ts_overdrive",
  "od_asymmetric",
  "od_mosfet",
  "rat_distortion",
  "rat_led",
  "rat_germanium",
  "fuzz_face",
  "fuzz_face_si",
  "gated_fuzz",
  "big_muff",
  "compressor",
  "compressor_feedback",
  "eq_parametric",
  "eq_baxandall",
  "cab_4x12",
  "cab_2x12",
  "cab_1x12",
  "gx_ts9",
  "gx_bossds1",
  "gx_fuzzface",
  "gx_muff",
  "gx_jcm800pre",
  "gx_compressor",
  "gx_amp",
  "gx_amp_jcm800",
  "gx_amp_ac30",
  "gx_amp_6v6",
)


# Knobs that play the gain's role: how hard the device's nonlinearity is driven. A device with
# no `gain` knob also shows its first such knob in the `gain` slot (keeping its own slot), so a
# gain learnt on amps means something to a drive, fuzz or sustain pedal, and back.
GAIN_ROLE_KNOBS: tuple[str, ...] = ("drive", "fuzz", "sustain")


def gain_role_knob(knob_names) -> str | None:
  """The knob that plays the gain's role among `knob_names` (canonical), or None."""
  names = [canonical_knob(n) for n in knob_names]
  for role in ("gain",) + GAIN_ROLE_KNOBS:
    if role in names:
      return role
  return None


def canonical_knob(name: str) -> str:
  key = name.strip().lower().replace(" ", "_").replace("-", "_")
  return KNOB_ALIASES.get(key.replace("_", ""), KNOB_ALIASES.get(key, key))


def knob_vector(
  normalised: Mapping[str, float], *, where: str = ""
) -> tuple[np.ndarray, np.ndarray]:
  """{knob: value in [0,1]} -> (values[K], mask[K]). Unknown knob names are an error."""
  values = np.zeros(len(KNOB_VOCAB), np.float32)
  mask = np.zeros(len(KNOB_VOCAB), np.float32)
  for name, v in normalised.items():
    key = canonical_knob(name)
    if key not in KNOB_VOCAB:
      raise AmpSpaceError(
        f"{where}: knob {name!r} is not in the conditioning vocabulary "
        f"(ampspace/conditioning.py KNOB_VOCAB/KNOB_ALIASES)"
      )
    i = KNOB_VOCAB.index(key)
    values[i] = np.clip(v, 0.0, 1.0)
    mask[i] = 1.0
  role = gain_role_knob(normalised)
  if role and role != "gain":
    values[KNOB_VOCAB.index("gain")] = values[KNOB_VOCAB.index(role)]
    mask[KNOB_VOCAB.index("gain")] = 1.0
  return values, mask


def attribute_indices(attributes: Mapping[str, str]) -> np.ndarray:
  """{attribute: value} -> int32[len(ATTRIBUTE_VOCAB)], 0 for missing or unknown values."""
  out = np.zeros(len(ATTRIBUTE_VOCAB), np.int32)
  for i, (key, vocab) in enumerate(ATTRIBUTE_VOCAB.items()):
    value = str(attributes.get(key, "unknown"))
    out[i] = vocab.index(value) if value in vocab else 0
  return out


def device_index(name: str) -> int:
  return DEVICE_VOCAB.index(name) if name in DEVICE_VOCAB else 0


def conditioning_dim() -> int:
  return 2 * len(KNOB_VOCAB) + len(DEVICE_VOCAB) + sum(len(v) for v in ATTRIBUTE_VOCAB.values())


def conditioning_vector(
  knobs: np.ndarray, knob_mask: np.ndarray, device_id, attributes: np.ndarray, xp=np
):
  """Concatenates [knobs * mask, mask, device one-hot, attribute one-hots] along the last axis.

  Works on single examples or batches (leading axes), in NumPy or jax.numpy (`xp`).
  """
  parts = [
    knobs * knob_mask,
    knob_mask,
    xp.asarray(xp.asarray(device_id)[..., None] == xp.arange(len(DEVICE_VOCAB)), xp.float32),
  ]
  for i, vocab in enumerate(ATTRIBUTE_VOCAB.values()):
    parts.append(xp.asarray(attributes[..., i : i + 1] == xp.arange(len(vocab)), xp.float32))
  return xp.concatenate(parts, axis=-1)


def conditioning_for(
  device: str,
  settings: Mapping[str, float] | None = None,
  *,
  attributes: Mapping[str, str] | None = None,
  zoo: bool = True,
  strict: bool = True,
  where: str = "",
) -> np.ndarray:
  """The conditioning vector, as the dataset stores it, of `device` with its knobs at `settings`.

  settings: knob name -> dial value as the user states it (e.g. {"gain": 7} on a 0..10 dial);
    a name may be spelt as `canonical_knob` folds it ("Gain", "Middle").
  zoo=True: `device` is a device of the zoo (`ampspace.devices.get_device`); its knob ranges,
    defaults (for the knobs not given) and attributes apply, and a knob it lacks or a dial
    outside the knob's range is an error; with strict=False (as an export takes knobs) a knob
    it lacks may be any of KNOB_VOCAB, as a 0..10 dial, and dials are clipped to their range.
  zoo=False: `device` is not the zoo's (a capture, or a device of DEVICE_VOCAB that the zoo
    cannot build here, such as a plugin not installed): any name (one outside DEVICE_VOCAB is
    "other"), any knob of KNOB_VOCAB as a 0..10 dial (clipped), no defaults, no attributes of
    its own; as the dataset builder annotates a recording whose knobs have no ranges.
  attributes: attribute -> value over the device's own; a name outside ATTRIBUTE_VOCAB is an
    error, a value outside its vocabulary counts as unknown.
  where: what the knobs' errors start with (e.g. a flag's name), instead of the device's name.

  Raises AmpSpaceError naming an unknown device, knob or attribute, or a bad dial value.
  """
  pre = f"{where}: " if where else ""
  for name in attributes or {}:
    if name not in ATTRIBUTE_VOCAB:
      raise AmpSpaceError(
        f"attribute {name!r} is not in the conditioning vocabulary; "
        f"known attributes: {sorted(ATTRIBUTE_VOCAB)}"
      )
  ranges, own_attributes = {}, {}
  if zoo:
    # Here, not at the top: every stage imports this module, and importing the zoo loads
    # scipy and looks for LV2 plugins.
    from ampspace.devices import get_device

    dev = get_device(device)  # an unknown name is an AmpSpaceError naming it
    specs = {k.name: k for k in dev.knobs}
    by_canonical = {canonical_knob(n): n for n in specs}
    given, others = {}, {}
    for name, value in (settings or {}).items():
      own = name if name in specs else by_canonical.get(canonical_knob(name))
      if own is None and strict:
        raise AmpSpaceError(
          f"{pre}device {dev.name!r} has no knob {name!r}; its knobs are {sorted(specs)}"
        )
      if own is None:
        others[name] = value
      else:
        given[own] = value
    # the defaults, and (strict) each dial checked against its knob's range
    settings = dev.resolve(given) if strict else {**dev.defaults, **given, **others}
    ranges = {n: (k.minimum, k.maximum) for n, k in specs.items()}
    own_attributes = {str(k): str(v) for k, v in dev.attributes.items()}
    device = dev.name
  normalised = {}
  for name, value in (settings or {}).items():
    try:
      value = float(value)
    except (TypeError, ValueError):
      raise AmpSpaceError(f"{pre}knob {name!r}: value {value!r} is not a number") from None
    if not np.isfinite(value):
      raise AmpSpaceError(f"{pre}knob {name!r}: value {value} is not finite")
    lo, hi = ranges.get(name, (0.0, 10.0))
    normalised[name] = 0.0 if hi == lo else (value - lo) / (hi - lo)
  values, mask = knob_vector(normalised, where=where or f"device {device!r}")
  return conditioning_vector(
    values,
    mask,
    np.int32(device_index(device)),
    attribute_indices({**own_attributes, **(attributes or {})}),
  ).astype(np.float32)
