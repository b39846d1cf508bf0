"""An export as an installable LV2 plugin bundle (`python -m ampspace.runtime.export --lv2=OUT_DIR`).

The bundle is a folder any LV2 host finds on its LV2_PATH (e.g. ~/.lv2/amp.lv2):

  manifest.ttl, plugin.ttl   the plugin's description: mono audio in/out, one control port per
                             knob of the export (range and default from model.json), and an
                             lv2:latency output when the model looks ahead;
  <name>.so                  lv2_plugin.c with w2w.c, compiled for this machine's CPU;
  model.w2w                  the weights the plugin loads at instantiate();
  conditioning.bin           how knob port values become the conditioning vector (the .w2w has
                             no knob names; layout at the top of lv2_plugin.c);
  model.json, model.npz      the export itself, so the bundle is also an export
                             (c_runtime.load(bundle + "/model.json")).

The bundle is assembled in a temporary folder beside OUT_DIR and renamed into place, so a
failed export leaves nothing half-written; an existing bundle written by this code is replaced.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import re
import shlex
import shutil
import struct
import subprocess
import tempfile

import numpy as np

from ampspace import SAMPLE_RATE
from ampspace.runtime import export_runtime as rt
from ampspace import native_build
from ampspace.errors import AmpSpaceError

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "lv2_plugin.c")
RUNTIME_SOURCE = os.path.join(HERE, "w2w.c")
FLAGS = ["-O3", "-march=native", "-std=gnu11", "-fvisibility=hidden", "-lm"]
CONDITIONING_FILE = "conditioning.bin"
CONDITIONING_MAGIC = b"AMPLV2C1"
EXPORT_FILES = ("model.json", "model.npz", "model.w2w")
URI_PREFIX = "urn:ampspace:"
_RESERVED_SYMBOLS = ("in", "out", "latency")


@dataclasses.dataclass(frozen=True)
class KnobPort:
  """One control input port: a knob of the export, in the device's dial units."""

  knob: str  # the export's name for it (model.json defaults)
  symbol: str
  name: str
  minimum: float
  maximum: float
  default: float
  indices: tuple[int, ...]  # the conditioning entries it sets to its position in [0, 1]


def _position(v: float, lo: float, hi: float) -> np.float32:
  return np.float32(0.0 if hi == lo else np.clip((v - lo) / (hi - lo), 0.0, 1.0))


def knob_ports(model: rt.Model) -> list[KnobPort]:
  """The export's knobs as ports, in the order of its default settings.

  Which conditioning entries a knob sets is read off `model.conditioning` itself (the entries
  that differ between the knob at its minimum and at its maximum), then checked at several
  dial values, so the plugin reproduces the Python runtime exactly or the export fails here."""
  if model.mode == "fixed":
    return []
  vocab = model.meta["conditioning"]
  aliases = vocab.get("knob_aliases", {})
  ranges = {
    rt.canonical_knob(k, aliases): tuple(v) for k, v in vocab.get("knob_ranges", {}).items()
  }
  base = model.conditioning()
  ports: dict[str, KnobPort] = {}
  for knob, default in model.meta.get("defaults", {}).get("knobs", {}).items():
    key = rt.canonical_knob(knob, aliases)
    lo, hi = (float(v) for v in ranges.get(key, (0.0, 10.0)))
    indices = np.flatnonzero(
      model.conditioning(knobs={knob: lo}) != model.conditioning(knobs={knob: hi})
    )
    for v in (lo, hi, default, lo + 0.3 * (hi - lo), lo - (hi - lo), hi + (hi - lo)):
      v = float(np.float32(v))  # what a float control port holds
      want = base.copy()
      want[indices] = _position(v, lo, hi)
      if not np.array_equal(model.conditioning(knobs={knob: v}), want):
        raise AmpSpaceError(
          f"{model.where}: knob {knob!r} does not enter the conditioning as "
          f"its clipped dial position; the LV2 plugin cannot reproduce it"
        )
    symbol = key if key not in _RESERVED_SYMBOLS else key + "_knob"
    ports[key] = KnobPort(
      knob,
      symbol,
      key.replace("_", " ").capitalize(),
      lo,
      hi,
      min(max(float(default), min(lo, hi)), max(lo, hi)),
      tuple(int(i) for i in indices),
    )
  return list(ports.values())


def conditioning_map(model: rt.Model, ports: list[KnobPort]) -> bytes:
  """conditioning.bin: the vector at the export's defaults and each knob port's mapping."""
  c = model.conditioning().astype("<f4")
  head = CONDITIONING_MAGIC + struct.pack(
    "<4i", len(c), len(ports), model.latency, model.sample_rate
  )
  return (
    head
    + c.tobytes()
    + b"".join(
      struct.pack(f"<ddi{len(p.indices)}i", p.minimum, p.maximum, len(p.indices), *p.indices)
      for p in ports
    )
  )


def _ttl_string(text: str) -> str:
  return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ttl_number(x: float) -> str:
  return repr(float(x))  # always with a decimal point or exponent: an xsd:decimal/double


def manifest_ttl(uri: str, binary: str) -> str:
  return (
    f"@prefix lv2: <http://lv2plug.in/ns/lv2core#> .\n"
    f"@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n\n"
    f"<{uri}>\n  a lv2:Plugin ;\n  lv2:binary <{binary}> ;\n"
    f"  rdfs:seeAlso <plugin.ttl> .\n"
  )


def plugin_ttl(uri: str, name: str, ports: list[KnobPort], latency: int, comment: str) -> str:
  lines = [
    "@prefix doap: <http://usefulinc.com/ns/doap#> .",
    "@prefix lv2: <http://lv2plug.in/ns/lv2core#> .",
    "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .",
    "@prefix units: <http://lv2plug.in/ns/extensions/units#> .",
    "@prefix urid: <http://lv2plug.in/ns/ext/urid#> .",
    "@prefix opts: <http://lv2plug.in/ns/ext/options#> .",
    "",
    f"<{uri}>",
    "  a lv2:Plugin, lv2:SimulatorPlugin ;",
    f"  doap:name {_ttl_string(name)} ;",
    f"  rdfs:comment {_ttl_string(comment)} ;",
    "  lv2:optionalFeature lv2:hardRTCapable, urid:map, opts:options ;",
    "  lv2:port [",
  ]
  port_blocks = [
    ["a lv2:AudioPort, lv2:InputPort ;", "lv2:index 0 ;", 'lv2:symbol "in" ;', 'lv2:name "In"'],
    ["a lv2:AudioPort, lv2:OutputPort ;", "lv2:index 1 ;", 'lv2:symbol "out" ;', 'lv2:name "Out"'],
  ]
  for i, p in enumerate(ports):
    port_blocks.append(
      [
        "a lv2:ControlPort, lv2:InputPort ;",
        f"lv2:index {2 + i} ;",
        f"lv2:symbol {_ttl_string(p.symbol)} ;",
        f"lv2:name {_ttl_string(p.name)} ;",
        f"lv2:default {_ttl_number(p.default)} ;",
        f"lv2:minimum {_ttl_number(min(p.minimum, p.maximum))} ;",
        f"lv2:maximum {_ttl_number(max(p.minimum, p.maximum))}",
      ]
    )
  if latency > 0:
    port_blocks.append(
      [
        "a lv2:ControlPort, lv2:OutputPort ;",
        f"lv2:index {2 + len(ports)} ;",
        'lv2:symbol "latency" ;',
        'lv2:name "Latency" ;',
        "lv2:designation lv2:latency ;",
        "lv2:portProperty lv2:reportsLatency, lv2:integer ;",
        "units:unit units:frame ;",
        "lv2:minimum 0 ;",
        f"lv2:maximum {int(latency)}",
      ]
    )
  body = "\n  ] , [\n".join("\n".join("    " + line for line in block) for block in port_blocks)
  return "\n".join(lines) + "\n" + body + "\n  ] .\n"


def uri_for(bundle: str) -> str:
  """urn:ampspace:<folder name without .lv2>: re-exporting to the same folder keeps the URI,
  so a host's saved sessions find the updated model."""
  stem = os.path.basename(os.path.normpath(bundle))
  stem = stem[:-4] if stem.endswith(".lv2") else stem
  return URI_PREFIX + (re.sub(r"[^A-Za-z0-9._~-]", "_", stem) or "model")


def build_library(uri: str) -> str:
  """Compiles the plugin for `uri` (cached by ampspace.native_build); the library's path."""
  if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9._~:/#?=&+-]+", uri):
    raise AmpSpaceError(f"LV2 plugin URI {uri!r}: use letters, digits and :/._~#?=&+- only")
  try:  # where the LV2 headers are (nothing to add on Debian, whose lv2-dev puts them in /usr)
    headers = shlex.split(
      subprocess.run(
        ["pkg-config", "--cflags", "lv2"], capture_output=True, text=True, check=True
      ).stdout
    )
  except (OSError, subprocess.CalledProcessError):
    headers = []  # the compiler then names the missing <lv2/core/lv2.h>: apt install lv2-dev
  flags = FLAGS + headers + [f'-DAMPSPACE_LV2_URI="{uri}"']
  return native_build.build(
    SOURCE, "ampspace_lv2_plugin", flags, what="LV2 plugin", depends=(RUNTIME_SOURCE,)
  )


def _is_our_bundle(path: str) -> bool:
  names = set(os.listdir(path))
  return not names or {"manifest.ttl", CONDITIONING_FILE} <= names


def check_destination(out_dir: str) -> None:
  """Fails early, naming OUT_DIR, when the bundle could not be written there."""
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    raise AmpSpaceError(f"--lv2 {out_dir}: is a file, not a folder; an LV2 bundle is a folder")
  if os.path.isdir(out_dir) and not _is_our_bundle(out_dir):
    raise AmpSpaceError(
      f"--lv2 {out_dir}: exists and is not an LV2 bundle written by "
      f"`python -m ampspace.runtime.export --lv2`; choose a new folder"
    )


def write_bundle(export_json: str, out_dir: str) -> str:
  """Writes the LV2 bundle of an export (model.json beside model.npz and model.w2w) to
  `out_dir`; returns the plugin's URI."""
  check_destination(out_dir)
  model = rt.load(export_json)
  stem = os.path.splitext(rt.paths_of(export_json)[0])[0]
  w2w = stem + ".w2w"
  if not os.path.isfile(w2w) or rt.sha256_of(w2w) != model.meta.get("c_runtime_sha256"):
    raise AmpSpaceError(f"{w2w}: missing or does not match {export_json}; export again")
  ports = knob_ports(model)
  uri = uri_for(out_dir)
  library = build_library(uri)
  binary = uri[len(URI_PREFIX) :] + ".so"
  source = model.meta.get("source", {})
  settings = model.meta.get("defaults") or model.meta.get("fixed") or {}
  comment = (
    f"Wave2WaveNet of device {settings.get('device', 'other')!r}, exported by Amp-Space "
    f"from {source.get('workdir', 'a model')} (step {source.get('step', '?')})"
  )
  parent = os.path.dirname(os.path.abspath(out_dir))
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(os.path.normpath(out_dir))}.tmp-")
  try:
    for src, name in zip((stem + ".json", stem + ".npz", w2w), EXPORT_FILES):
      shutil.copyfile(src, os.path.join(tmp, name))
    shutil.copyfile(library, os.path.join(tmp, binary))
    with open(os.path.join(tmp, CONDITIONING_FILE), "wb") as f:
      f.write(conditioning_map(model, ports))
    with open(os.path.join(tmp, "manifest.ttl"), "w") as f:
      f.write(manifest_ttl(uri, binary))
    with open(os.path.join(tmp, "plugin.ttl"), "w") as f:
      f.write(plugin_ttl(uri, "Amp-Space " + uri[len(URI_PREFIX) :], ports, model.latency, comment))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; an installed bundle is readable by all
    _replace_folder(tmp, out_dir)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return uri


def _replace_folder(new: str, out_dir: str) -> None:
  """Renames `new` to `out_dir`; an existing bundle there is moved aside first, then removed."""
  if not os.path.isdir(out_dir):
    os.rename(new, out_dir)
    return
  old = new + "-old"
  os.rename(out_dir, old)
  try:
    os.rename(new, out_dir)
  except BaseException:
    os.rename(old, out_dir)
    raise
  shutil.rmtree(old, ignore_errors=True)


class HostedPlugin:
  """A bundle's plugin in the project's own LV2 host (ampspace.devices.lv2host), run block by
  block with port changes between blocks, as a DAW runs it: for tests and the benchmark.

  The plugin must be on LV2_PATH (lilv reads it when the host opens the plugin)."""

  def __init__(self, uri: str, block: int, sample_rate: int = SAMPLE_RATE):
    from ampspace.devices import lv2host  # it imports the device zoo: only this test host needs it

    self._lib = lv2host.load()
    err = ctypes.create_string_buffer(1024)
    self._h = self._lib.ah_open(uri.encode(), float(sample_rate), int(block), err, len(err))
    if not self._h:
      raise AmpSpaceError(err.value.decode() or f"cannot open LV2 plugin <{uri}>")
    self.ports, buf = {}, ctypes.create_string_buffer(256)
    value = [ctypes.c_float() for _ in range(3)]
    for p in range(self._lib.ah_num_ports(self._h)):
      kind = self._lib.ah_port_info(self._h, p, buf, len(buf), *map(ctypes.byref, value))
      self.ports[buf.value.decode()] = (p, lv2host.KINDS[kind])

  def set(self, symbol: str, value: float) -> None:
    self._lib.ah_set_control(self._h, self.ports[symbol][0], float(value))

  def get(self, symbol: str) -> float:
    return float(self._lib.ah_get_control(self._h, self.ports[symbol][0]))

  def process_into(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Runs x (float32, contiguous) through the plugin into out, in the host's blocks."""
    ptr = ctypes.POINTER(ctypes.c_float)
    self._lib.ah_process(self._h, x.ctypes.data_as(ptr), out.ctypes.data_as(ptr), len(x))
    return out

  def process(self, x) -> np.ndarray:
    x = np.ascontiguousarray(x, np.float32)
    return self.process_into(x, np.empty_like(x))

  def close(self) -> None:
    h, self._h = getattr(self, "_h", None), None
    if h:
      self._lib.ah_close(h)

  __del__ = close
