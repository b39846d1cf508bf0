"""The export format is defined once (ampspace/runtime/export_format.py): the standalone NumPy runtime's
copy, the C sources and the arrays ampspace.runtime.stream packs must agree with it."""

from __future__ import annotations

import math
import os
import re

import numpy as np
import pytest
from flax import nnx

from ampspace.runtime import c_runtime, export_format as fmt, export_runtime as rt, stream
from ampspace.models.wave2wavenet import Wave2WaveNet

C_DIR = os.path.dirname(c_runtime.__file__)
# a regression head (one class, no class centres) and a mu-law head, with and without knobs
ARCHS = [
  dict(
    dilations=[1, 2, 4],
    kernel_size=3,
    channels=5,
    skip_channels=7,
    head_channels=6,
    num_classes=k,
    cond_dim=d,
  )
  for k in (1, 256)
  for d in (0, 9)
]


def c_source(name: str) -> str:
  with open(os.path.join(C_DIR, name)) as f:
    return f.read()


def c_symbols(arch: dict) -> dict:
  """The names w2w.c gives the dimensions."""
  return {
    "L": len(arch["dilations"]),
    "k": arch["kernel_size"],
    "C": arch["channels"],
    "S": arch["skip_channels"],
    "H": arch["head_channels"],
    "K": arch["num_classes"],
    "D": arch["cond_dim"],
  }


def c_eval(expr: str, symbols: dict) -> int:
  """A C size expression of w2w.c (`(size_t)L * k * C`, `2C`, `K > 1 ? (size_t)K : 0`)."""
  expr = expr.replace("(size_t)", "")
  expr = re.sub(r"(\d)([A-Za-z])", r"\1*\2", expr)  # 2C -> 2*C
  cond = re.fullmatch(r"(.+?)\?(.+):(.+)", expr)
  if cond:
    expr = f"({cond[2]}) if ({cond[1]}) else ({cond[3]})"
  return int(eval(expr, {"__builtins__": {}}, dict(symbols)))  # noqa: S307 - our own source


def test_the_numpy_runtimes_copy_equals_the_definition():
  assert (rt.FORMAT, rt.VERSION, rt.DEFAULT_SMOOTHING) == (
    fmt.FORMAT,
    fmt.VERSION,
    fmt.DEFAULT_SMOOTHING,
  )
  assert rt.WEIGHT_KEYS == fmt.WEIGHT_KEYS
  for arch in ARCHS:
    assert list(rt.weight_shapes(arch).items()) == list(fmt.weight_shapes(arch).items())


def test_the_definition_is_consistent():
  assert fmt.FILE_ARRAYS == fmt.WEIGHT_KEYS + (fmt.CLASS_CENTERS,)
  for arch in ARCHS:
    names = tuple(fmt.weight_shapes(arch))
    assert names == (fmt.FILE_ARRAYS if arch["num_classes"] > 1 else fmt.WEIGHT_KEYS)


def test_the_python_side_uses_the_definition():
  assert stream.DEFAULT_SMOOTHING == fmt.DEFAULT_SMOOTHING
  assert c_runtime.FILE_ARRAYS == fmt.FILE_ARRAYS and c_runtime.MAGIC == fmt.W2W_MAGIC


@pytest.mark.parametrize("num_classes", [1, 256])
@pytest.mark.parametrize("cond_dim", [0, 4])
def test_stream_packs_the_arrays_of_the_definition(num_classes, cond_dim):
  model = Wave2WaveNet(
    cond_dim, depth=3, channels=4, max_dilation=4, num_classes=num_classes, rngs=nnx.Rngs(0)
  )
  arch, weights = stream.wave2wavenet_arrays(model)
  assert list(weights) == list(fmt.weight_shapes(arch))
  assert {k: v.shape for k, v in weights.items()} == fmt.weight_shapes(arch)
  rt.check_weights(arch, weights, "packed")


def test_w2w_c_header_lists_the_arrays_in_order_and_shape():
  text = c_source("w2w.c")
  block = re.search(r"float32\s+the export's arrays.*?class_centers\[K\]", text, re.S)[0]
  listed = re.findall(r"(\w+)((?:\[[^\]]+\])+)", block)
  for arch in ARCHS:
    symbols = {**c_symbols(arch), "K": 2}  # the comment lists class_centers too
    shapes = fmt.weight_shapes({**arch, "num_classes": 2})
    assert [name for name, _ in listed] == list(shapes)
    for name, dims in listed:
      got = tuple(c_eval(d, symbols) for d in re.findall(r"\[([^\]]+)\]", dims))
      assert got == shapes[name], name


def test_w2w_c_reads_the_arrays_sizes_magic_and_smoothing_of_the_definition():
  text = c_source("w2w.c")
  sizes = re.search(r"size_t sizes\[(\d+)\] = \{(.*?)\};", text, re.S)
  assert int(sizes[1]) == len(fmt.FILE_ARRAYS)
  exprs = [e.strip() for e in sizes[2].split(",")]
  assert len(exprs) == len(fmt.FILE_ARRAYS)
  for arch in ARCHS:
    shapes = fmt.weight_shapes(arch)
    want = [math.prod(shapes[n]) if n in shapes else 0 for n in fmt.FILE_ARRAYS]
    assert [c_eval(e, c_symbols(arch)) for e in exprs] == want
  assert re.findall(r"memcmp\(magic, \"(\w+)\", 8\)", text) == [fmt.W2W_MAGIC.decode()]
  assert re.findall(r"m->smoothing = (\d+);", text) == [str(fmt.DEFAULT_SMOOTHING)]
  lv2 = c_source("lv2_plugin.c")
  assert re.findall(r"#define SMOOTHING (\d+)", lv2) == [str(fmt.DEFAULT_SMOOTHING)]


def test_the_w2w_file_holds_the_arrays_in_the_definitions_order(tmp_path):
  arch = {**ARCHS[-1], "model": "wave2wavenet"}
  rng = np.random.default_rng(0)
  weights = {
    k: rng.standard_normal(s).astype(np.float32) for k, s in fmt.weight_shapes(arch).items()
  }
  path = tmp_path / "model.w2w"
  with open(path, "wb") as f:
    c_runtime.write_model_file(arch, weights, f)
  data = path.read_bytes()
  assert data[:8] == fmt.W2W_MAGIC
  head = 8 + 4 * (7 + len(arch["dilations"]))
  floats = np.frombuffer(data[head:], "<f4")
  want = np.concatenate([weights[k].ravel() for k in fmt.FILE_ARRAYS])
  np.testing.assert_array_equal(floats, want)
