"""The C runtime (ampspace/runtime/c_runtime/w2w.c) reproduces the NumPy runtime and the JAX model,
streams at any block size, ramps knob changes, splits offline work over threads exactly, and
its file loader (the one a plugin or host uses) reads `python -m ampspace.runtime.export`'s .w2w."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest
from flax import nnx

from ampspace.runtime import c_runtime
from ampspace import conditioning as cond
from ampspace.runtime import export
from ampspace.runtime import export_runtime as rt
from ampspace.runtime import inference, stream
from ampspace.errors import AmpSpaceError
from ampspace.models.wave2wavenet import Wave2WaveNet

D = cond.conditioning_dim()


def audio(n: int, seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).uniform(-0.8, 0.8, n).astype(np.float32)


@pytest.fixture(scope="module")
def models():
  """The fast path (16 channels, padded from 6), the generic path (24 channels), a
  non-causal model and a regression head."""
  return {
    "c6": Wave2WaveNet(D, depth=8, channels=6, max_dilation=64, rngs=nnx.Rngs(5)),
    "c24": Wave2WaveNet(
      D, depth=5, channels=24, skip_channels=20, head_channels=40, max_dilation=16, rngs=nnx.Rngs(6)
    ),
    "noncausal": Wave2WaveNet(
      D, depth=6, channels=16, max_dilation=32, causal=False, rngs=nnx.Rngs(7)
    ),
    "regression": Wave2WaveNet(
      D, depth=6, channels=16, max_dilation=32, num_classes=1, rngs=nnx.Rngs(8)
    ),
  }


@pytest.fixture(scope="module")
def exports(models, tmp_path_factory):
  folder = tmp_path_factory.mktemp("cexport")
  return {
    name: export.export_model(m, str(folder / f"{name}.npz"), device="tube_amp", knobs={"gain": 7})[
      0
    ]
    for name, m in models.items()
  }


def jax_output(model, di, c):
  graphdef, params = nnx.split(model)
  return inference.run_clip(inference.make_apply(graphdef, params), di, c, model.context)


@pytest.mark.parametrize("name", ["c6", "c24", "noncausal", "regression"])
def test_offline_and_streaming_match_the_jax_model(models, exports, name):
  m = c_runtime.load(exports[name])
  c = m.conditioning(knobs={"gain": 2})
  di = audio(6000)
  ref = jax_output(models[name], di, c)
  np.testing.assert_allclose(m.process(di, c, threads=1), ref, atol=1e-5)
  np.testing.assert_allclose(rt.load(exports[name]).process(di, c), ref, atol=1e-5)
  causal = models[name].causal
  for block in (32, 64, 333, 2048):  # any block size, also one that divides nothing
    s = m.stream(c)
    y = np.concatenate([s.process(di[i : i + block]) for i in range(0, len(di), block)])
    if causal:
      np.testing.assert_allclose(y, ref, atol=1e-5)
    else:  # the stream's output is late by the lookahead
      lat = m.latency
      np.testing.assert_allclose(y[lat:], ref[:-lat], atol=1e-5)


def test_threads_split_the_signal_exactly(exports):
  m = c_runtime.load(exports["c6"])
  c = m.conditioning()
  di = audio(40000, seed=3)
  one = m.process(di, c, threads=1, block_size=512)
  for threads, block in ((2, 512), (3, 1000), (4, 4096)):
    np.testing.assert_allclose(m.process(di, c, threads=threads, block_size=block), one, atol=2e-7)
  # too short to be worth splitting: one part, same answer
  np.testing.assert_allclose(m.process(di[:3000], c, threads=8), one[:3000], atol=2e-7)


def test_knob_changes_are_ramped_like_the_jax_streamer(models, exports):
  m = c_runtime.load(exports["c6"])
  a, b, d = (m.conditioning(knobs={"gain": g}) for g in (1, 9, 4))
  di = audio(64 * 40)
  ref = stream.Streamer(models["c6"], 64).run(di, a, changes={10: b})
  s = m.stream(a)
  out = []
  for i in range(40):
    if i == 10:
      s.set_knobs(gain=9)
    out.append(s.process(di[i * 64 : (i + 1) * 64]))
  np.testing.assert_allclose(np.concatenate(out), ref, atol=1e-5)
  # a change in the middle of a ramp continues from where the ramp is, as the NumPy runtime
  sn, sc = rt.load(exports["c6"]).stream(a, smoothing=300), m.stream(a, smoothing=300)
  ys = []
  for i, blk in enumerate(np.split(di[:2400], 24)):
    if i == 2:
      sn.set_conditioning(b), sc.set_conditioning(b)
    if i == 4:
      sn.set_conditioning(d), sc.set_conditioning(d)
    ys.append((sn.process(blk), sc.process(blk)))
  np.testing.assert_allclose(
    np.concatenate([y[1] for y in ys]), np.concatenate([y[0] for y in ys]), atol=1e-5
  )


def test_argmax_decode_reset_and_a_changing_block_size(exports):
  m, ref_model = c_runtime.load(exports["c6"]), rt.load(exports["c6"])
  c = m.conditioning()
  di = audio(5000)
  np.testing.assert_array_equal(
    m.stream(c, decode="argmax").process(di[:2000]),
    ref_model.stream(c, decode="argmax").process(di[:2000]),
  )
  s = m.stream(c)
  first = s.process(di[:1000])
  s.process(di[1000:3000])
  s.reset()
  np.testing.assert_allclose(s.process(di[:1000]), first, atol=1e-6)
  # blocks growing past the buffers and shrinking again
  s, sizes, out, i = m.stream(c), [7, 300, 5000 - 7 - 300 - 64, 64], [], 0
  for n in sizes:
    out.append(s.process(di[i : i + n]))
    i += n
  np.testing.assert_allclose(np.concatenate(out), m.process(di, c, threads=1), atol=1e-5)
  with pytest.raises(AmpSpaceError, match="unknown decode"):
    m.stream(c, decode="median")
  with pytest.raises(AmpSpaceError, match="conditioning vector has 2 values"):
    m.stream(c).set_conditioning([0.0, 1.0])


def test_the_w2w_file_is_what_the_c_loader_reads(exports, tmp_path):
  json_path = exports["c6"]
  w2w = os.path.splitext(json_path)[0] + ".w2w"
  meta = rt.load(json_path).meta
  assert meta["c_runtime_file"] == os.path.basename(w2w)
  assert rt.sha256_of(w2w) == meta["c_runtime_sha256"]
  m = c_runtime.load(json_path)
  c = m.conditioning(knobs={"gain": 3})
  di = audio(3000)
  s = c_runtime.stream_from_file(w2w, c)
  np.testing.assert_allclose(s.process(di), m.stream(c).process(di), atol=0)
  with pytest.raises(AmpSpaceError, match="no knob names"):
    s.set_knobs(gain=2)


def test_corrupt_w2w_files_are_clear_errors(exports, tmp_path):
  w2w = os.path.splitext(exports["c6"])[0] + ".w2w"
  data = open(w2w, "rb").read()
  cases = {
    "magic.w2w": (b"NOTAW2W1" + data[8:], "bad magic"),
    "header.w2w": (data[:20], "truncated"),
    "short.w2w": (data[:-8], "truncated weights"),
    "long.w2w": (data + b"\0\0\0\0", "trailing bytes"),
  }
  nan = bytearray(data)
  nan[-4:] = np.float32(np.nan).tobytes()
  cases["nan.w2w"] = (bytes(nan), "not all finite")
  for name, (blob, message) in cases.items():
    (tmp_path / name).write_bytes(blob)
    with pytest.raises(AmpSpaceError, match=message) as e:
      c_runtime.stream_from_file(str(tmp_path / name))
    assert name in str(e.value)
  with pytest.raises(AmpSpaceError, match="cannot open"):
    c_runtime.stream_from_file(str(tmp_path / "missing.w2w"))


def _cpu_has(flag: str) -> bool:
  try:
    return f" {flag} " in open("/proc/cpuinfo").read()
  except OSError:
    return False


# the vector width follows the target: 4 floats (baseline x86-64 / NEON), 8 (AVX2), native
VECTOR_FLAGS = [["-O2"], ["-O3", "-march=native"]]
if _cpu_has("avx2") and _cpu_has("fma"):
  VECTOR_FLAGS.append(["-O3", "-mavx2", "-mfma"])


@pytest.mark.skipif(shutil.which(os.environ.get("CC", "cc")) is None, reason="no C compiler")
@pytest.mark.parametrize("flags", VECTOR_FLAGS, ids=" ".join)
def test_the_command_line_host_runs_an_export_without_python(exports, tmp_path, flags):
  src = os.path.join(os.path.dirname(c_runtime.__file__), "w2w_cli.c")
  exe = str(tmp_path / "w2w_cli")
  subprocess.run(
    [os.environ.get("CC", "cc"), *flags, "-o", exe, src, "-lm"], check=True, capture_output=True
  )
  fixed_json, _ = export.export_model(
    Wave2WaveNet(D, depth=4, channels=8, max_dilation=8, rngs=nnx.Rngs(2)),
    str(tmp_path / "fixed.npz"),
    device="tube_amp",
    knobs={"gain": 6},
    fixed=True,
  )
  di = audio(2500)
  proc = subprocess.run(
    [exe, str(tmp_path / "fixed.w2w"), "100"], input=di.tobytes(), capture_output=True, check=True
  )
  got = np.frombuffer(proc.stdout, np.float32)
  np.testing.assert_allclose(got, c_runtime.load(fixed_json).stream().process(di), atol=1e-6)
  bad = subprocess.run([exe, str(tmp_path / "nothing.w2w")], capture_output=True)
  assert bad.returncode == 1 and b"nothing.w2w: cannot open" in bad.stderr
