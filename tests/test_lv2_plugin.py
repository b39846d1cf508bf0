"""The LV2 plugin of an export (`python -m ampspace.runtime.export --lv2=OUT_DIR`), run by hosts nobody
here wrote (Debian's lilv-utils: lv2ls, lv2info, lv2apply) and by the project's own LV2 host,
against the C runtime and the JAX model; bad input ends in one line and leaves nothing behind.

Skips with a reason when lilv-utils, a C compiler or the LV2 headers are missing, unless
AMPSPACE_REQUIRE_PLUGINS=1 (then it fails): see `require_lv2_tools`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest
from flax import nnx

from ampspace.runtime import c_runtime, export
from ampspace import conditioning as cond
from ampspace.audio.wav_io import read_wav, write_wav
from ampspace.runtime.c_runtime import lv2_bundle
from ampspace.devices import dsp, get_device, lv2
from ampspace.errors import AmpSpaceError
from ampspace.models.wave2wavenet import Wave2WaveNet
from conftest import require_or_skip
from test_c_runtime import audio, jax_output
from test_export import training_workdir

TINY = {"depth": 4, "channels": 4, "max_dilation": 8}


def lv2_tools_unavailable_reason() -> str | None:
  """Why the plugin cannot be built or hosted here, or None."""
  missing = [t for t in ("lv2ls", "lv2info", "lv2apply", "pkg-config", "cc") if not shutil.which(t)]
  if missing:
    return f"missing {missing} (apt install lilv-utils lv2-dev liblilv-dev pkg-config gcc)"
  for package, apt in (("lv2", "lv2-dev"), ("lilv-0", "liblilv-dev")):
    if subprocess.run(["pkg-config", "--exists", package]).returncode != 0:
      return f"pkg-config does not find {package} (apt install {apt})"
  return None


@pytest.fixture(scope="module")
def require_lv2_tools():
  reason = lv2_tools_unavailable_reason()
  require_or_skip(reason is None, reason or "")


def plugin_in(folder, model) -> types.SimpleNamespace:
  """A bundle `amp.lv2` in `folder`, with the environment that puts it on LV2_PATH."""
  return types.SimpleNamespace(
    folder=str(folder),
    env={**os.environ, "LV2_PATH": str(folder)},
    uri="urn:ampspace:amp",
    model=model,
    export=c_runtime.load(str(folder / "amp.lv2" / "model.json")),
  )


@pytest.fixture(scope="module")
def plugins(tmp_path_factory, require_lv2_tools):
  """`amp`: a causal model with the tube_amp's knobs, exported from a training workdir by the
  command line; `ahead`: a model that looks ahead, and `fixed`: amp's model with its settings
  folded in (no knobs), their bundles written from exports. All bundles are named amp.lv2
  (one URI, so one compiled library) in folders of their own."""
  root = tmp_path_factory.mktemp("lv2")
  run = str(root / "run")
  amp_model = training_workdir(run, **TINY)
  cli = subprocess.Popen(
    [
      sys.executable,
      "-m",
      "ampspace.runtime.export",
      f"--workdir={run}",
      f"--lv2={root / 'causal' / 'amp.lv2'}",
      "--device=tube_amp",
      "--knobs=gain=7",
    ],
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )  # runs beside the exports below
  ahead_model = Wave2WaveNet(cond.conditioning_dim(), causal=False, rngs=nnx.Rngs(3), **TINY)
  json_path, _ = export.export_model(
    ahead_model, str(root / "ahead_export" / "model.npz"), knobs={"gain": 4}
  )
  assert lv2_bundle.write_bundle(json_path, str(root / "ahead" / "amp.lv2")) == "urn:ampspace:amp"
  json_path, _ = export.export_model(
    amp_model,
    str(root / "fixed_export" / "model.npz"),
    device="tube_amp",
    knobs={"gain": 7},
    fixed=True,
  )
  lv2_bundle.write_bundle(json_path, str(root / "fixed" / "amp.lv2"))
  stdout, stderr = cli.communicate(timeout=120)
  assert cli.returncode == 0, stderr[-2000:]
  assert "urn:ampspace:amp" in stdout
  return types.SimpleNamespace(
    amp=plugin_in(root / "causal", amp_model),
    ahead=plugin_in(root / "ahead", ahead_model),
    fixed=plugin_in(root / "fixed", amp_model),
  )


def lv2info_ports(uri: str, env: dict) -> dict[str, dict]:
  """symbol -> {'type': [...], 'min':, 'max':, 'default':, 'properties': [...]} from lv2info."""
  text = subprocess.run(
    ["lv2info", uri], env=env, capture_output=True, text=True, check=True, timeout=30
  ).stdout
  ports = {}
  for block in re.split(r"\n\s*Port \d+:\n", text)[1:]:
    fields, key = {}, None
    for line in block.splitlines():
      m = re.match(r"\s*(\w[\w ]*):\s*(.*)", line)
      if m and not line.strip().startswith("http"):
        key, value = m.group(1), m.group(2).strip()
        fields.setdefault(key, []).append(value)
      elif key and line.strip():
        fields[key].append(line.strip())
    ports[fields["Symbol"][0]] = fields
  return ports


def lv2apply(uri: str, di: np.ndarray, tmp_path, env: dict, **controls) -> np.ndarray:
  write_wav(tmp_path / "in.wav", di)  # float32 WAV: lv2apply writes the same format back
  cmd = ["lv2apply", "-i", str(tmp_path / "in.wav"), "-o", str(tmp_path / "out.wav")]
  for symbol, value in controls.items():
    cmd += ["-c", symbol, repr(float(value))]
  subprocess.run(cmd + [uri], env=env, check=True, capture_output=True, timeout=60)
  return read_wav(tmp_path / "out.wav")[0]


def test_lv2info_lists_the_knobs_of_model_json_and_the_latency_port(plugins):
  for plugin in (plugins.amp, plugins.ahead, plugins.fixed):
    listed = subprocess.run(
      ["lv2ls"], env=plugin.env, capture_output=True, text=True, check=True, timeout=30
    ).stdout.split()
    assert listed == [plugin.uri]
  meta = plugins.amp.export.model.meta
  knobs, ranges = meta["defaults"]["knobs"], meta["conditioning"]["knob_ranges"]
  ports = lv2info_ports(plugins.amp.uri, plugins.amp.env)
  assert list(ports) == ["in", "out", *knobs]  # tube_amp's knobs, in its order
  assert knobs["gain"] == 7.0
  for name, default in knobs.items():
    lo, hi = ranges[name]
    limits = [float(ports[name][k][0]) for k in ("Minimum", "Maximum", "Default")]
    assert limits == [lo, hi, default]
    assert "http://lv2plug.in/ns/lv2core#InputPort" in ports[name]["Type"]
  assert "latency" not in ports  # a causal model reports none
  ahead = lv2info_ports(plugins.ahead.uri, plugins.ahead.env)
  latency = plugins.ahead.export.latency
  assert latency > 0 and list(ahead) == ["in", "out", "gain", "latency"]
  assert "http://lv2plug.in/ns/lv2core#OutputPort" in ahead["latency"]["Type"]
  assert "http://lv2plug.in/ns/lv2core#reportsLatency" in ahead["latency"]["Properties"]
  assert "http://lv2plug.in/ns/lv2core#latency" in ahead["latency"]["Designation"]
  # no device: dial 0..10, the export's --knobs as defaults
  assert [float(ahead["gain"][k][0]) for k in ("Minimum", "Maximum", "Default")] == [0, 10, 4]
  assert list(lv2info_ports(plugins.fixed.uri, plugins.fixed.env)) == ["in", "out"]


def test_lv2apply_output_equals_the_c_runtime(plugins, tmp_path):
  di = audio(6000)
  outputs = []
  for plugin in (plugins.amp, plugins.ahead, plugins.fixed):  # lv2apply: one sample per run()
    got = lv2apply(plugin.uri, di, tmp_path, plugin.env)
    want = plugin.export.stream().process(di)  # a stream: late by the lookahead, as the plugin
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert np.std(want) > 1e-3
    outputs.append(got)
  np.testing.assert_allclose(outputs[2], outputs[0], atol=1e-5)  # fixed = live at its settings


def test_lv2apply_knob_ports_change_the_output_as_the_jax_model_predicts(plugins, tmp_path):
  di = audio(6000)
  amp = plugins.amp
  default = lv2apply(amp.uri, di, tmp_path, amp.env)
  turned = lv2apply(amp.uri, di, tmp_path, amp.env, gain=2.0, bass=9.5)
  c = plugins.amp.export.conditioning(knobs={"gain": 2.0, "bass": 9.5})
  want = jax_output(plugins.amp.model, di, c)
  np.testing.assert_allclose(turned, want, atol=2e-5)
  # the knobs matter far beyond that tolerance (an untrained model: a small but sure change)
  assert np.max(np.abs(turned - default)) > 50 * 2e-5
  # a dial past its range is clipped to it, as the training code clips it
  np.testing.assert_array_equal(
    lv2apply(amp.uri, di, tmp_path, amp.env, gain=2.0, bass=25.0),
    lv2apply(amp.uri, di, tmp_path, amp.env, gain=2.0, bass=10.0),
  )


def test_the_projects_lv2_host_loads_the_bundle_as_a_device(plugins, monkeypatch):
  monkeypatch.setenv("LV2_PATH", plugins.amp.folder)  # lilv reads it as the host opens one
  dev = get_device(f"lv2:{plugins.amp.uri}")
  knobs = plugins.amp.export.model.meta["defaults"]["knobs"]
  assert dev.defaults == knobs and dev.vst_name == "Amp-Space amp"
  assert dev.latency_samples == 0
  di = audio(6000, seed=4)
  got = dev.process(di, {"gain": 3.0})
  # the device's renders pass a 5 Hz DC blocker (ampspace/devices/lv2.py), so the reference too
  want = dsp.run_sos(
    lv2._DC_BLOCK, plugins.amp.export.stream(knobs={"gain": 3.0}).process(di).astype(np.float64)
  )
  np.testing.assert_allclose(got, want, atol=1e-4)


def test_knob_changes_while_running_ramp_like_the_c_runtime(plugins, monkeypatch):
  monkeypatch.setenv("LV2_PATH", plugins.amp.folder)
  di = audio(64 * 60, seed=5)
  host = lv2_bundle.HostedPlugin(plugins.amp.uri, block=64)
  ref = plugins.amp.export.stream()
  got, want = [host.process(di[:640])], [ref.process(di[:640])]
  host.set("gain", 9.0)
  ref.set_knobs(gain=9.0)
  got.append(host.process(di[640:]))
  want.append(ref.process(di[640:]))
  np.testing.assert_allclose(np.concatenate(got), np.concatenate(want), atol=1e-5)
  host.close()
  # the lookahead model reports its latency on the lv2:latency port
  monkeypatch.setenv("LV2_PATH", plugins.ahead.folder)
  ahead = lv2_bundle.HostedPlugin(plugins.ahead.uri, block=64)
  ahead.process(di[:64])
  assert ahead.get("latency") == plugins.ahead.export.latency > 0
  ahead.close()


def test_host_blocks_longer_than_the_plugins_buffers_are_cut_into_chunks(plugins, monkeypatch):
  monkeypatch.setenv("LV2_PATH", plugins.ahead.folder)
  di = audio(10000, seed=6)
  host = lv2_bundle.HostedPlugin(plugins.ahead.uri, block=10000)  # the plugin reserves 4096
  np.testing.assert_allclose(host.process(di), plugins.ahead.export.stream().process(di), atol=1e-5)
  host.close()


def test_a_corrupt_bundle_fails_to_instantiate_naming_the_file(
  plugins, tmp_path, monkeypatch, capfd
):
  broken = tmp_path / "broken" / "amp.lv2"
  shutil.copytree(os.path.join(plugins.amp.folder, "amp.lv2"), broken)
  data = (broken / lv2_bundle.CONDITIONING_FILE).read_bytes()
  (broken / lv2_bundle.CONDITIONING_FILE).write_bytes(data[:-3])
  monkeypatch.setenv("LV2_PATH", str(broken.parent))
  with pytest.raises(AmpSpaceError, match="failed to instantiate"):
    lv2_bundle.HostedPlugin(plugins.amp.uri, block=64)
  assert "conditioning.bin: truncated or corrupt" in capfd.readouterr().err


def test_bad_input_is_named_and_leaves_nothing_behind(plugins, tmp_path, monkeypatch):
  out = tmp_path / "out"
  out.mkdir()
  no_checkpoint = str(tmp_path / "no_ckpt")
  training_workdir(no_checkpoint, checkpoint=False, **TINY)
  with pytest.raises(AmpSpaceError, match=r"no_ckpt.*no checkpoint found"):
    export.export_to_lv2(no_checkpoint, str(out / "a.lv2"))
  (out / "file.lv2").write_text("not a folder")
  with pytest.raises(AmpSpaceError, match=r"file\.lv2: is a file, not a folder"):
    export.export_to_lv2(no_checkpoint, str(out / "file.lv2"))
  (out / "mine").mkdir()
  (out / "mine" / "notes.txt").write_text("keep me")
  with pytest.raises(AmpSpaceError, match=r"mine: exists and is not an LV2 bundle"):
    export.export_to_lv2(no_checkpoint, str(out / "mine"))
  rnn = str(tmp_path / "lstm_run")
  training_workdir(rnn, "lstm", checkpoint=False)  # refused from its config, before restoring
  with pytest.raises(AmpSpaceError, match=r"lstm_run/config\.json: model 'lstm' cannot be"):
    export.export_to_lv2(rnn, str(out / "b.lv2"))
  assert sorted(os.listdir(out)) == ["file.lv2", "mine"]
  # a failure while the bundle is assembled keeps the bundle that was there, and no temporary
  bundle = out / "amp.lv2"
  shutil.copytree(os.path.join(plugins.amp.folder, "amp.lv2"), bundle)
  before = sorted(os.listdir(bundle))
  ahead_json = os.path.join(plugins.ahead.folder, "amp.lv2", "model.json")

  def fail(*args, **kwargs):
    raise OSError("disk full")

  monkeypatch.setattr(lv2_bundle, "plugin_ttl", fail)
  with pytest.raises(OSError, match="disk full"):
    lv2_bundle.write_bundle(ahead_json, str(bundle))
  assert sorted(os.listdir(out)) == ["amp.lv2", "file.lv2", "mine"]
  assert sorted(os.listdir(bundle)) == before
  monkeypatch.undo()
  # ... and a successful one replaces it
  assert lv2_bundle.write_bundle(ahead_json, str(bundle)) == "urn:ampspace:amp"
  assert "latency" in (bundle / "plugin.ttl").read_text()
  assert sorted(os.listdir(out)) == ["amp.lv2", "file.lv2", "mine"]


def test_the_command_line_reports_bad_input_in_one_line(plugins, tmp_path):
  (tmp_path / "taken").write_text("a file")
  proc = subprocess.run(
    [
      sys.executable,
      "-m",
      "ampspace.runtime.export",
      f"--workdir={tmp_path}",
      f"--lv2={tmp_path / 'taken'}",
    ],
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines() == [
    f"error: --lv2 {tmp_path / 'taken'}: is a file, not a folder; an LV2 bundle is a folder"
  ]
  assert sorted(os.listdir(tmp_path)) == ["taken"]


def test_the_benchmarks_c_host_runs_the_plugin_block_by_block(plugins, tmp_path, monkeypatch):
  """benchmarks/lv2_block_host.c (the streaming table's `lv2_c` row): the plugin's output does
  not depend on the block length, the figures are positive, and a missing plugin is one line."""
  sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks"))
  import bench_streaming

  exe = bench_streaming.lv2_c_host(str(tmp_path))
  assert exe and os.path.exists(exe)
  monkeypatch.setenv("LV2_PATH", plugins.amp.folder)
  outs = {}
  for block in (64, 128):
    r = subprocess.run(
      [exe, plugins.amp.uri, str(block), "0.3", "1"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert r[0] == "rtf" and float(r[1]) > 0 and float(r[3]) > 0
    outs[block] = float(r[5])
  # 0.3 s in whole blocks is 13184 samples at either length: the same output
  assert outs[64] > 1e-4 and abs(outs[64] - outs[128]) <= 1e-5 * outs[64]
  bad = subprocess.run(
    [exe, "urn:ampspace:nothing", "64", "0.3", "1"], capture_output=True, text=True
  )
  assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0
  assert "urn:ampspace:nothing: no such plugin" in bad.stderr
