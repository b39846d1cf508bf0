"""The C runtime for exported Wave2WaveNets (w2w.c), through ctypes: real-time streaming and
multi-threaded offline inference, the same results as `ampspace.runtime.export_runtime` (float
rounding aside) several times faster.

    from ampspace.runtime import c_runtime
    model = c_runtime.load("model.json")                  # an export (json + npz)
    s = model.stream(knobs={"gain": 7})                   # any block size; knob changes ramped
    out = s.process(block); s.set_knobs(gain=3)
    y = model.process(di, threads=2)                      # offline, the signal split over threads
    s = c_runtime.stream_from_file("model.w2w", c)        # the bare file, as a host loads it

w2w.c is one dependency-free C file; `python -m ampspace.runtime.export` also writes `model.w2w`, the
weights in the flat layout the C file's `w2w_load` reads, so a plugin or host can embed the
runtime without Python (the file's header says how). Here the library is compiled on first use
with `-O3 -march=native` and cached by `ampspace.native_build`; the set-up script prebuilds it
with `python -m ampspace.runtime.c_runtime --build`.
"""

from __future__ import annotations

import ctypes
import os
import struct
import threading

import numpy as np

from ampspace.runtime import export_format
from ampspace.runtime import export_runtime as rt
from ampspace import native_build

SOURCE = os.path.join(os.path.dirname(__file__), "w2w.c")
FLAGS = ["-O3", "-march=native", "-std=gnu11", "-lm"]
MAGIC = export_format.W2W_MAGIC
FILE_ARRAYS = export_format.FILE_ARRAYS  # w2w.c mirrors the order (tests/test_export_format.py)
_LIB = None
_LOCK = threading.Lock()
_f32p = ctypes.POINTER(ctypes.c_float)


def build(force: bool = False) -> str:
  """Compiles w2w.c if needed; returns the shared library's path."""
  return native_build.build(SOURCE, "ampspace_w2w", FLAGS, force=force, what="C runtime")


def library() -> ctypes.CDLL:
  """The runtime library, built if needed, with its C signatures declared."""
  global _LIB
  with _LOCK:
    if _LIB is None:
      lib = ctypes.CDLL(build())
      vp = ctypes.c_void_p
      lib.w2w_create.restype = vp
      lib.w2w_create.argtypes = [
        ctypes.POINTER(ctypes.c_int32),
        ctypes.POINTER(ctypes.c_int32),
        ctypes.POINTER(_f32p),
        ctypes.c_char_p,
        ctypes.c_int,
      ]
      lib.w2w_load.restype = vp
      lib.w2w_load.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
      lib.w2w_free.argtypes = [vp]
      lib.w2w_reset.argtypes = [vp]
      lib.w2w_cond_dim.restype = ctypes.c_int
      lib.w2w_cond_dim.argtypes = [vp]
      lib.w2w_set_smoothing.argtypes = [vp, ctypes.c_int]
      lib.w2w_set_decode.argtypes = [vp, ctypes.c_int]
      lib.w2w_set_conditioning.argtypes = [vp, _f32p, ctypes.c_int]
      lib.w2w_process.restype = ctypes.c_int
      lib.w2w_process.argtypes = [vp, _f32p, _f32p, ctypes.c_int]
      _LIB = lib
  return _LIB


def _ptr(a: np.ndarray):
  return a.ctypes.data_as(_f32p)


def dims_of(arch: dict) -> list[int]:
  return [
    len(arch["dilations"]),
    int(arch["kernel_size"]),
    int(arch["channels"]),
    int(arch["skip_channels"]),
    int(arch["head_channels"]),
    int(arch["num_classes"]),
    int(arch["cond_dim"]),
  ]


def _file_arrays(arch: dict, weights: dict) -> list[np.ndarray]:
  return [np.ascontiguousarray(weights[k], np.float32) for k in export_format.weight_shapes(arch)]


def write_model_file(arch: dict, weights: dict, f) -> None:
  """Writes an export's arch and arrays to the binary file `f` in the flat layout that w2w.c's
  w2w_load reads."""
  f.write(MAGIC)
  f.write(struct.pack("<7i", *dims_of(arch)))
  f.write(np.asarray(arch["dilations"], "<i4").tobytes())
  for a in _file_arrays(arch, weights):
    f.write(a.astype("<f4").tobytes())


def _engine(model: rt.Model):
  lib = library()
  arrays = _file_arrays(model.arch, model.weights)
  n = len(FILE_ARRAYS)
  ptrs = (_f32p * n)(*([_ptr(a) for a in arrays] + [None] * (n - len(arrays))))
  dims = (ctypes.c_int32 * 7)(*dims_of(model.arch))
  dil = (ctypes.c_int32 * len(model.arch["dilations"]))(*model.arch["dilations"])
  err = ctypes.create_string_buffer(512)
  handle = lib.w2w_create(dims, dil, ptrs, err, 512)
  if not handle:
    raise rt.ExportError(f"{model.where}: the C runtime rejects the model: {err.value.decode()}")
  return handle


class Model:
  """An export run by the C runtime; conditioning by name as in export_runtime.Model."""

  def __init__(self, model: rt.Model):
    self.model = model
    self.sample_rate, self.latency, self.arch = model.sample_rate, model.latency, model.arch
    self.receptive_field = int(self.arch["receptive_field"])

  def conditioning(self, knobs=None, device=None, attributes=None) -> np.ndarray:
    return self.model.conditioning(knobs, device, attributes)

  def stream(
    self,
    c=None,
    *,
    knobs: dict | None = None,
    device: str | None = None,
    attributes: dict | None = None,
    smoothing: int = export_format.DEFAULT_SMOOTHING,
    decode: str = "expected_value",
  ) -> "Stream":
    if c is None:
      c = self.model.conditioning(knobs, device, attributes)
    return Stream(self, self.model.check_cond(c), smoothing=smoothing, decode=decode)

  def process(
    self, audio, c=None, *, threads: int | None = None, block_size: int = 1024, **kwargs
  ) -> np.ndarray:
    """Offline: the whole signal, aligned with the input (lookahead compensated).

    The signal is cut into `threads` contiguous parts (default: the CPUs this process may
    use), each streamed by its own engine on its own thread from `receptive_field - 1` samples
    before its start, so every output sample sees exactly the input it would in one pass.
    """
    x = np.asarray(audio, np.float32).reshape(-1)
    n = len(x)
    if c is None:
      c = self.model.conditioning(
        kwargs.pop("knobs", None), kwargs.pop("device", None), kwargs.pop("attributes", None)
      )
    c = self.model.check_cond(c)
    lat = self.latency
    x = np.concatenate([x, np.zeros(lat, np.float32)])
    total = len(x)
    if threads is None:
      threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    warm = self.receptive_field - 1
    # a part shorter than its warm-up would mostly repeat work: fewer, longer parts then
    parts = max(1, min(int(threads), total // max(4 * warm, block_size)))
    bounds = np.linspace(0, total, parts + 1).astype(int)
    y = np.empty(total, np.float32)
    errors: list[BaseException] = []

    def run(i: int):
      try:
        s0, s1 = int(bounds[i]), int(bounds[i + 1])
        start = max(0, s0 - warm)
        st = self.stream(c, **kwargs)
        scratch = np.empty(block_size, np.float32)
        for b in range(start, s1, block_size):
          e = min(b + block_size, s1)
          out = y[b:e] if b >= s0 else scratch[: e - b]
          st.process_into(x[b:e], out)
          if b < s0 <= e - 1:
            y[s0:e] = out[s0 - b :]
      except BaseException as e:  # re-raised on the calling thread
        errors.append(e)

    if parts == 1:
      run(0)
    else:
      pool = [threading.Thread(target=run, args=(i,)) for i in range(parts)]
      for t in pool:
        t.start()
      for t in pool:
        t.join()
    if errors:
      raise errors[0]
    return y[lat : lat + n]


class Stream:
  """Block-by-block inference with state (any block length), as export_runtime.Stream."""

  def __init__(
    self,
    model: Model | None,
    c: np.ndarray,
    *,
    smoothing: int = export_format.DEFAULT_SMOOTHING,
    decode: str = "expected_value",
    handle=None,
  ):
    if decode not in ("expected_value", "argmax"):
      raise rt.ExportError(f"unknown decode {decode!r}; known: expected_value, argmax")
    if int(smoothing) < 0:
      raise rt.ExportError(f"smoothing must be >= 0 samples, got {smoothing}")
    self.model, self.smoothing, self.decode = model, int(smoothing), decode
    self._lib = library()
    self._h = handle or _engine(model.model)
    self._lib.w2w_set_smoothing(self._h, self.smoothing)
    self._lib.w2w_set_decode(self._h, int(decode == "argmax"))
    self._c = np.ascontiguousarray(c, np.float32)
    self._lib.w2w_set_conditioning(self._h, _ptr(self._c), 0)
    self._lib.w2w_reset(self._h)

  def __del__(self):
    h, self._h = getattr(self, "_h", None), None
    if h:
      self._lib.w2w_free(h)

  def reset(self) -> None:
    """The state after an endless run of silence at the current conditioning."""
    self._lib.w2w_reset(self._h)

  def set_conditioning(self, c) -> None:
    """New target conditioning, reached by a linear ramp over `smoothing` samples."""
    c = np.ascontiguousarray(np.asarray(c, np.float32).reshape(-1))
    if c.shape != self._c.shape:
      raise rt.ExportError(
        f"conditioning vector has {c.shape[0]} values; the model takes {self._c.shape[0]}"
      )
    self._c = c
    self._lib.w2w_set_conditioning(self._h, _ptr(self._c), 1)

  def set_knobs(self, device: str | None = None, attributes: dict | None = None, **knobs) -> None:
    if self.model is None:
      raise rt.ExportError(
        "a stream from a bare .w2w file has no knob names; use "
        "set_conditioning, or load the export's .json"
      )
    self.set_conditioning(self.model.conditioning(knobs, device, attributes))

  def process_into(self, block: np.ndarray, out: np.ndarray) -> np.ndarray:
    """As process, writing into `out` (float32, contiguous, the block's length)."""
    if out.dtype != np.float32 or not out.flags.c_contiguous or out.shape != block.shape:
      raise ValueError("out must be a contiguous float32 array shaped like the block")
    if self._lib.w2w_process(self._h, _ptr(block), _ptr(out), len(block)) != 0:
      raise MemoryError(f"the C runtime could not allocate buffers for a {len(block)}-sample block")
    return out

  def process(self, block) -> np.ndarray:
    """Output samples for the input block (same length), continuing from earlier blocks."""
    x = np.ascontiguousarray(np.asarray(block, np.float32).reshape(-1))
    return self.process_into(x, np.empty_like(x))


def load(path: str) -> Model:
  """An export (`model.json`/`model.npz`, checked as export_runtime.load checks it)."""
  return Model(rt.load(path))


def stream_from_file(
  path: str,
  c=None,
  *,
  smoothing: int = export_format.DEFAULT_SMOOTHING,
  decode: str = "expected_value",
) -> Stream:
  """A stream from a `.w2w` file read by the C loader (the path a plugin or host takes).

  The file has no knob names: `c` is the conditioning vector (zeros by default; a `fixed`
  export needs none)."""
  lib = library()
  err = ctypes.create_string_buffer(512)
  h = lib.w2w_load(os.fsencode(path), err, 512)
  if not h:
    raise rt.ExportError(err.value.decode(errors="replace"))
  dim = lib.w2w_cond_dim(h)
  c = np.zeros(dim, np.float32) if c is None else np.asarray(c, np.float32).reshape(-1)
  if c.shape != (dim,):
    lib.w2w_free(h)
    raise rt.ExportError(
      f"{path}: conditioning vector has {c.shape[0]} values; the model takes {dim}"
    )
  return Stream(None, c, smoothing=smoothing, decode=decode, handle=h)
