"""The export format, defined once: the arrays an export holds (names, order, shapes) and the
constants every runtime shares.

`python -m ampspace.runtime.export` writes `model.json` (FORMAT, VERSION, the arch), `model.npz` (the
arrays of `weight_shapes`, as `ampspace.runtime.stream.wave2wavenet_arrays` packs a Wave2WaveNet) and
`model.w2w` (W2W_MAGIC, the dims, then the same arrays in FILE_ARRAYS order). Who reads what:

  ampspace.runtime.stream           packs the arrays and streams with DEFAULT_SMOOTHING (from here);
  ampspace.runtime.c_runtime        writes model.w2w with W2W_MAGIC and FILE_ARRAYS (from here);
  ampspace.runtime.export_runtime   runs with NumPy alone, copied next to an export, so it keeps its own
                            copy of FORMAT, VERSION, DEFAULT_SMOOTHING, WEIGHT_KEYS and the shapes;
  c_runtime/w2w.c, lv2_plugin.c   mirror the magic, the arrays' order and sizes and the smoothing.

tests/test_export_format.py checks the NumPy runtime's copy and the C sources (parsed) against
this module, and the arrays `ampspace.runtime.stream` packs against `weight_shapes`.
"""

from __future__ import annotations

FORMAT = "ampspace-export"  # model.json's "format"
VERSION = 1  # model.json's "version"
DEFAULT_SMOOTHING = 1024  # samples (~23 ms at 44.1 kHz): how long a knob change is ramped

# The arrays of every export, in the order model.w2w stores them; a model with more than one
# output class (a mu-law head) also has CLASS_CENTERS, last.
WEIGHT_KEYS: tuple[str, ...] = (
  "input_w",
  "input_b",
  "conv_w",
  "conv_b",
  "cond_w",
  "res_w",
  "res_b",
  "skip_w",
  "skip_b",
  "head1_w",
  "head1_b",
  "head2_w",
  "head2_b",
)
CLASS_CENTERS = "class_centers"
FILE_ARRAYS: tuple[str, ...] = WEIGHT_KEYS + (CLASS_CENTERS,)
W2W_MAGIC = b"AMPW2W01"  # the first 8 bytes of model.w2w


def weight_shapes(arch: dict) -> dict[str, tuple[int, ...]]:
  """Every array's shape for `arch` (model.json's "arch"), in FILE_ARRAYS order.

  L layers, kernel k, C channels, S skip channels, H head channels, K classes, D conditioning
  values; the convolution kernel [k, C, 2C] is stored as [k*C, 2C] (the taps stacked), filter
  then gate along the last axis.
  """
  L, k, C, S = (
    len(arch["dilations"]),
    int(arch["kernel_size"]),
    int(arch["channels"]),
    int(arch["skip_channels"]),
  )
  H, K, D = int(arch["head_channels"]), int(arch["num_classes"]), int(arch["cond_dim"])
  shapes = {
    "input_w": (C,),
    "input_b": (C,),
    "conv_w": (L, k * C, 2 * C),
    "conv_b": (L, 2 * C),
    "cond_w": (L, D, 2 * C),
    "res_w": (L, C, C),
    "res_b": (L, C),
    "skip_w": (L, C, S),
    "skip_b": (L, S),
    "head1_w": (S, H),
    "head1_b": (H,),
    "head2_w": (H, K),
    "head2_b": (K,),
  }
  if K > 1:
    shapes[CLASS_CENTERS] = (K,)
  return shapes
