"""Standalone NumPy runtime for an exported Amp-Space Wave2WaveNet (needs only numpy).

Copy this one file next to an export (`model.npz` + `model.json`, written by
`python -m ampspace.runtime.export`) and run it anywhere:

    import export_runtime as rt
    model = rt.load("model.json")                         # or "model.npz"
    y = model.process(di)                                 # offline, whole signal
    s = model.stream(knobs={"gain": 7})                   # real time, any block size
    out = s.process(block); s.set_knobs(gain=3); ...     # knob changes are ramped, no clicks

An export is either `live` (the conditioning weights and vocabularies are kept; knobs are
given by name, as dial values in the exported knob ranges, 0..10 by default) or `fixed` (the
conditioning was folded into the biases at export time; no knobs at run time).

Streaming keeps, per layer, the last `dilation * (kernel - 1)` layer inputs in a ring buffer
and evaluates each layer for the whole block with one matmul over a strided view of its taps.
Three algebraic rewrites save NumPy calls without changing results beyond rounding: the gate
uses sigmoid(g) = (1 + tanh(g/2)) / 2 with the halves folded into the weights, the biases ride
in the matmuls as a constant ones column, and residual and skip share one matmul.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile

import numpy as np

# The export format is defined in ampspace/runtime/export_format.py. This file runs without ampspace,
# so it keeps a copy of what it needs (these constants and `weight_shapes`);
# tests/test_export_format.py checks the copy against the definition.
FORMAT = "ampspace-export"
VERSION = 1
DEFAULT_SMOOTHING = 1024  # samples
WEIGHT_KEYS = (
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

try:  # inside the project, errors are the project's error type; standalone, a ValueError
  from ampspace.errors import AmpSpaceError as _ErrorBase
except ImportError:  # pragma: no cover - exercised by copying the file out of the project
  _ErrorBase = ValueError


class ExportError(_ErrorBase):
  """A missing, corrupt or inconsistent export, or a bad knob/conditioning request."""


# ---------------------------------------------------------------- files
def paths_of(path: str) -> tuple[str, str]:
  """(json, npz) paths of an export named by either file or by their common stem."""
  stem = path[:-5] if path.endswith(".json") else path[:-4] if path.endswith(".npz") else path
  return stem + ".json", stem + ".npz"


def sha256_of(path: str) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()


def load(path: str) -> "Model":
  """Reads and checks an export: the JSON parses, the npz matches its checksum and the arch."""
  json_path, npz_path = paths_of(path)
  for p in (json_path, npz_path):
    if not os.path.isfile(p):
      raise ExportError(f"{p}: export file not found (an export is a .json and a .npz pair)")
  try:
    with open(json_path) as f:
      meta = json.load(f)
  except (ValueError, UnicodeDecodeError) as e:
    raise ExportError(f"{json_path}: not valid JSON ({e})") from None
  if not isinstance(meta, dict) or meta.get("format") != FORMAT:
    raise ExportError(f"{json_path}: not an Amp-Space export (format must be {FORMAT!r})")
  if meta.get("version") != VERSION:
    raise ExportError(
      f"{json_path}: export version {meta.get('version')!r}; this runtime reads version {VERSION}"
    )
  for key in ("arch", "weights_sha256", "mode"):
    if key not in meta:
      raise ExportError(f"{json_path}: missing key {key!r}")
  if sha256_of(npz_path) != meta["weights_sha256"]:
    raise ExportError(
      f"{npz_path}: checksum does not match {json_path} (corrupt, truncated or from another export)"
    )
  try:
    with np.load(npz_path, allow_pickle=False) as z:
      weights = {k: np.asarray(z[k], np.float32) for k in z.files}
  except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
    raise ExportError(f"{npz_path}: unreadable weights ({e})") from None
  return Model(meta, weights, where=json_path)


def weight_shapes(arch: dict) -> dict:
  """Every array's shape for `arch`, as ampspace.runtime.export_format.weight_shapes (a copy)."""
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
    shapes["class_centers"] = (K,)
  return shapes


def check_weights(arch: dict, w: dict, where: str) -> None:
  """Every array is present with the shape the architecture implies."""
  try:
    shapes = weight_shapes(arch)
  except KeyError as e:
    raise ExportError(f"{where}: arch is missing {e}") from None
  except (TypeError, ValueError) as e:
    raise ExportError(f"{where}: arch is malformed ({e})") from None
  for key, shape in shapes.items():
    if key not in w:
      raise ExportError(f"{where}: weights lack {key!r}")
    if tuple(w[key].shape) != shape:
      raise ExportError(
        f"{where}: weights {key!r} have shape {tuple(w[key].shape)}, the arch implies {shape}"
      )
    if not np.all(np.isfinite(w[key])):
      raise ExportError(f"{where}: weights {key!r} are not all finite")


# ---------------------------------------------------------------- conditioning
def canonical_knob(name: str, aliases: dict) -> str:
  """As ampspace.conditioning.canonical_knob: case, spaces, dashes and aliases folded."""
  key = name.strip().lower().replace(" ", "_").replace("-", "_")
  return aliases.get(key.replace("_", ""), aliases.get(key, key))


def conditioning_vector(
  vocab: dict, knobs: dict, device: str, attributes: dict, knob_ranges: dict
) -> np.ndarray:
  """[knob values * mask, mask, device one-hot, attribute one-hots], the training layout.

  Knob values are dial positions, mapped to [0, 1] by `knob_ranges` ([0, 10] by default).
  """
  knob_vocab, aliases = list(vocab["knob_vocab"]), dict(vocab.get("knob_aliases", {}))
  values = np.zeros(len(knob_vocab), np.float32)
  mask = np.zeros(len(knob_vocab), np.float32)
  for name, v in knobs.items():
    key = canonical_knob(name, aliases)
    if key not in knob_vocab:
      raise ExportError(
        f"knob {name!r} is not in the model's conditioning vocabulary; known "
        f"knobs: {', '.join(knob_vocab)}"
      )
    lo, hi = knob_ranges.get(key, knob_ranges.get(name, (0.0, 10.0)))
    try:
      v = float(v)
    except (TypeError, ValueError):
      raise ExportError(f"knob {name!r}: value {v!r} is not a number") from None
    if not np.isfinite(v):
      raise ExportError(f"knob {name!r}: value {v} is not finite")
    i = knob_vocab.index(key)
    values[i] = 0.0 if hi == lo else np.clip((v - lo) / (hi - lo), 0.0, 1.0)
    mask[i] = 1.0
  # As ampspace.conditioning.knob_vector: without a gain knob, the first drive-like knob also
  # fills the gain slot (exports of vocabulary version 3 on list them).
  given = [canonical_knob(n, aliases) for n in knobs]
  if "gain" in knob_vocab and "gain" not in given:
    role = next((k for k in vocab.get("gain_role_knobs", ()) if k in given), None)
    if role:
      g = knob_vocab.index("gain")
      values[g], mask[g] = values[knob_vocab.index(role)], 1.0
  devices = list(vocab["device_vocab"])
  onehot = np.zeros(len(devices), np.float32)
  onehot[devices.index(device) if device in devices else 0] = 1.0
  parts = [values * mask, mask, onehot]
  attr_vocab = dict(vocab["attribute_vocab"])
  for name in attributes:
    if name not in attr_vocab:
      raise ExportError(
        f"attribute {name!r} is not in the model's conditioning vocabulary; "
        f"known attributes: {', '.join(attr_vocab)}"
      )
  for name, values_list in attr_vocab.items():
    one = np.zeros(len(values_list), np.float32)
    value = str(attributes.get(name, "unknown"))
    one[values_list.index(value) if value in values_list else 0] = 1.0
    parts.append(one)
  return np.concatenate(parts)


# ---------------------------------------------------------------- model
class Model:
  """An exported model: weights, architecture and (live exports) the conditioning vocabulary."""

  def __init__(self, meta: dict, weights: dict, where: str = "export"):
    self.meta, self.where = meta, where
    self.arch = meta["arch"]
    if self.arch.get("model") != "wave2wavenet":
      raise ExportError(
        f"{where}: this runtime runs wave2wavenet exports, got {self.arch.get('model')!r}"
      )
    check_weights(self.arch, weights, where)
    self.weights = weights
    self.mode = meta["mode"]
    self.sample_rate = int(meta.get("sample_rate", 44100))
    self.latency = int(self.arch["context"][1])

  @property
  def cond_dim(self) -> int:
    return int(self.arch["cond_dim"])

  def conditioning(
    self, knobs: dict | None = None, device: str | None = None, attributes: dict | None = None
  ) -> np.ndarray:
    """The conditioning vector for knob dial values by name, over the export's defaults."""
    if self.mode == "fixed":
      if knobs or device or attributes:
        raise ExportError(
          f"{self.where}: a fixed export takes no knobs (its settings were folded "
          f"in at export time: {self.meta.get('fixed')})"
        )
      return np.zeros(0, np.float32)
    defaults = self.meta.get("defaults", {})
    merged_knobs = {**defaults.get("knobs", {}), **(knobs or {})}
    merged_attrs = {**defaults.get("attributes", {}), **(attributes or {})}
    vocab = self.meta["conditioning"]
    ranges = {
      canonical_knob(k, vocab.get("knob_aliases", {})): tuple(v)
      for k, v in vocab.get("knob_ranges", {}).items()
    }
    return conditioning_vector(
      vocab, merged_knobs, device or defaults.get("device", "other"), merged_attrs, ranges
    )

  def check_cond(self, c) -> np.ndarray:
    c = np.asarray(c, np.float32).reshape(-1)
    if c.shape != (self.cond_dim,):
      raise ExportError(
        f"conditioning vector has {c.shape[0]} values; the model takes {self.cond_dim}"
      )
    return c

  def stream(
    self,
    c=None,
    *,
    knobs: dict | None = None,
    device: str | None = None,
    attributes: dict | None = None,
    smoothing: int = DEFAULT_SMOOTHING,
    decode: str = "expected_value",
  ) -> "Stream":
    if c is None:
      c = self.conditioning(knobs, device, attributes)
    return Stream(self, self.check_cond(c), smoothing=smoothing, decode=decode)

  def process(self, audio, c=None, *, block_size: int = 4096, **kwargs) -> np.ndarray:
    """Offline: the whole signal, aligned with the input (the lookahead is compensated)."""
    s = self.stream(c, **kwargs)
    x = np.asarray(audio, np.float32).reshape(-1)
    n = len(x)
    x = np.concatenate([x, np.zeros(self.latency, np.float32)])
    out = np.concatenate([s.process(x[i : i + block_size]) for i in range(0, len(x), block_size)])
    return out[self.latency : self.latency + n]


class Stream:
  """Block-by-block inference with state; blocks may have any length."""

  def __init__(
    self,
    model: Model,
    c: np.ndarray,
    *,
    smoothing: int = DEFAULT_SMOOTHING,
    decode: str = "expected_value",
  ):
    if decode not in ("expected_value", "argmax"):
      raise ExportError(f"unknown decode {decode!r}; known: expected_value, argmax")
    if int(smoothing) < 0:
      raise ExportError(f"smoothing must be >= 0 samples, got {smoothing}")
    self.model, self.smoothing, self.decode = model, int(smoothing), decode
    a, w = model.arch, model.weights
    self.dilations = [int(d) for d in a["dilations"]]
    self.k, self.C, self.S = int(a["kernel_size"]), int(a["channels"]), int(a["skip_channels"])
    self.shrinks = [d * (self.k - 1) for d in self.dilations]
    C, L = self.C, len(self.dilations)
    half = np.concatenate([np.ones(C), np.full(C, 0.5)]).astype(np.float32)  # g -> g/2
    self.conv_w = np.ascontiguousarray(w["conv_w"] * half)
    self.conv_b = w["conv_b"] * half
    self.cond_w = w["cond_w"] * half
    # residual and skip in one matmul; z' = 2z, so the weights take the 1/2; the bias row last
    rs = np.concatenate([w["res_w"], w["skip_w"]], axis=-1) * 0.5
    self.rs_w = np.ascontiguousarray(
      np.concatenate([rs, np.concatenate([w["res_b"], w["skip_b"]], axis=-1)[:, None, :]], axis=1)
    )
    self.input_w, self.input_b = w["input_w"], w["input_b"]
    self.h1_w, self.h1_b = w["head1_w"], w["head1_b"]
    self.h2_w = np.ascontiguousarray(np.concatenate([w["head2_w"], w["head2_b"][None]], axis=0))
    K = self.h2_w.shape[1]
    if K > 1:
      self.ev_w = np.stack([w["class_centers"], np.ones(K, np.float32)], axis=1)
    self.centers = w.get("class_centers")
    self.K, self.L = K, L
    # conditioning: p_to rides in the conv matmul's bias row; a ramp adds (1-a)(p_from - p_to)
    self.c = c.copy()
    self.p_to = self._proj(c)
    self.p_from = self.p_to.copy()
    self.ramp_pos = max(self.smoothing, 1)
    self._alloc(4096)
    self.reset()

  # ------------------------------------------------------------ state
  def _proj(self, c):
    return self.conv_b + np.einsum("d,ldo->lo", c, self.cond_w)

  def _alloc(self, cap: int):
    C, k, S = self.C, self.k, self.S
    self.cap = cap
    self.bufs = [np.zeros((s + cap, C), np.float32) for s in self.shrinks]
    # taps of row r are buf[r], buf[r + d], ..., a strided view made once per buffer
    self.taps = [
      np.lib.stride_tricks.as_strided(
        b, shape=(cap, k, C), strides=(C * 4, d * C * 4, 4), writeable=False
      )
      for b, d in zip(self.bufs, self.dilations)
    ]
    self.X = np.ones((cap, k * C + 1), np.float32)
    self.X3 = self.X[:, : k * C].reshape(cap, k, C)
    self.H = np.empty((cap, 2 * C), np.float32)
    self.Z = np.ones((cap, C + 1), np.float32)
    self.RS = np.empty((cap, C + S), np.float32)
    self.Sk = np.empty((cap, S), np.float32)
    self.Hd = np.ones((cap, self.h1_w.shape[1] + 1), np.float32)
    self.Lg = np.empty((cap, self.h2_w.shape[1]), np.float32)
    self.off = 0

  def reset(self):
    """The state after an endless run of silence at the current conditioning."""
    w = self.model.weights
    k, C = self.k, self.C
    h = w["input_b"].astype(np.float32)
    for l, (buf, s) in enumerate(zip(self.bufs, self.shrinks)):
      buf[:s] = h
      pre = (
        h @ w["conv_w"][l].reshape(k, C, 2 * C).sum(0) + w["conv_b"][l] + self.c @ w["cond_w"][l]
      )
      z = np.tanh(pre[:C]) / (1.0 + np.exp(-pre[C:]))
      h = (h + z @ w["res_w"][l] + w["res_b"][l]).astype(np.float32)
    self.off = 0
    self.p_from = self.p_to.copy()
    self.ramp_pos = max(self.smoothing, 1)

  def _grow(self, B: int):
    hist = [b[self.off : self.off + s].copy() for b, s in zip(self.bufs, self.shrinks)]
    self._alloc(max(2 * B, self.cap))
    for b, h in zip(self.bufs, hist):
      b[: len(h)] = h

  def _compact(self):
    for b, s in zip(self.bufs, self.shrinks):
      b[:s] = b[self.off : self.off + s]
    self.off = 0

  # ------------------------------------------------------------ conditioning
  def set_conditioning(self, c) -> None:
    """New target conditioning, reached by a linear ramp over `smoothing` samples."""
    c = self.model.check_cond(c)
    if np.array_equal(c, self.c):
      return
    if self.smoothing > 0:
      a = min(self.ramp_pos / self.smoothing, 1.0)
      self.p_from = self.p_from + (self.p_to - self.p_from) * np.float32(a)
      self.ramp_pos = 0
    self.c = c.copy()
    self.p_to = self._proj(c)
    if self.smoothing == 0:
      self.p_from = self.p_to.copy()

  def set_knobs(self, device: str | None = None, attributes: dict | None = None, **knobs) -> None:
    self.set_conditioning(self.model.conditioning(knobs, device, attributes))

  # ------------------------------------------------------------ processing
  def process(self, block) -> np.ndarray:
    """Output samples for the input block (same length), continuing from earlier blocks."""
    x = np.asarray(block, np.float32).reshape(-1)
    B = len(x)
    if B == 0:
      return np.zeros(0, np.float32)
    if B > self.cap:
      self._grow(B)
    if self.off + B > self.cap:
      self._compact()
    off, C, k = self.off, self.C, self.k
    ramp = None
    if self.ramp_pos < self.smoothing:
      a = np.minimum((self.ramp_pos + 1 + np.arange(B, dtype=np.float32)) / self.smoothing, 1.0)
      ramp = (1.0 - a)[:, None]
      self.ramp_pos = min(self.ramp_pos + B, self.smoothing)
    X, X3, H, Z, RS, Sk = self.X[:B], self.X3[:B], self.H[:B], self.Z[:B], self.RS[:B], self.Sk[:B]
    Zc, Hf, Hg = Z[:, :C], H[:, :C], H[:, C:]
    Sk[...] = 0.0
    h = self.bufs[0][off + self.shrinks[0] : off + self.shrinks[0] + B]
    np.multiply(x[:, None], self.input_w, out=h)
    h += self.input_b
    last = self.L - 1
    for l in range(self.L):
      np.copyto(X3, self.taps[l][off : off + B])
      W = self.conv_w[l]
      np.matmul(X[:, : k * C], W, out=H)
      H += self.p_to[l]
      if ramp is not None:
        H += ramp * (self.p_from[l] - self.p_to[l])
      np.tanh(H, out=H)
      Hg += 1.0
      np.multiply(Hf, Hg, out=Zc)  # = 2 * tanh(f) * sigmoid(g)
      np.matmul(Z, self.rs_w[l], out=RS)
      Sk += RS[:, C:]
      if l < last:
        nxt = self.bufs[l + 1][off + self.shrinks[l + 1] : off + self.shrinks[l + 1] + B]
        np.add(h, RS[:, :C], out=nxt)
        h = nxt
    self.off = off + B
    np.maximum(Sk, 0.0, out=Sk)
    Hd = self.Hd[:B]
    Hdc = Hd[:, :-1]
    np.matmul(Sk, self.h1_w, out=Hdc)
    Hdc += self.h1_b
    np.maximum(Hdc, 0.0, out=Hdc)
    Lg = self.Lg[:B]
    np.matmul(Hd, self.h2_w, out=Lg)
    if self.K == 1:
      return Lg[:, 0].copy()
    if self.decode == "argmax":
      return self.centers[np.argmax(Lg, axis=1)]
    Lg -= Lg.max(axis=1, keepdims=True)
    np.exp(Lg, out=Lg)
    r = Lg @ self.ev_w
    return r[:, 0] / r[:, 1]
