"""Stands in for the GPU image's Python on this machine, to check benchmarks/gpu_wheels.sh's list
without a GPU: a top-level module whose distribution is not in image_packages.txt (the image's
package list; the last three names are artefacts of newer packages here, whose older versions
the image holds) is importable only from $DEVSIM_SITE, where the wheels are installed.

  GPU_PYTHON_VERSION=3.11 WHEEL_DIR=/tmp/whl bash benchmarks/gpu_wheels.sh
  .venv/bin/python -m pip install -q --no-index --no-deps --target /tmp/site /tmp/whl/*.whl
  DEVSIM_SITE=/tmp/site PYTHONPATH=benchmarks/gpu_image_sim:/tmp/site JAX_PLATFORMS=cpu \
    .venv/bin/python benchmarks/gpu_check.py --smoke --out=/tmp/gc \
    --nam_python=.venv-nam/bin/python
"""

import importlib.abc
import importlib.machinery
import importlib.metadata as md
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
_device = set(open(os.path.join(_here, "image_packages.txt")).read().split())
_site = os.environ.get("DEVSIM_SITE", "")
_allow = {
  "ampspace",
  "tfds_ampspace",
  "sitecustomize",
  "_distutils_hack",
  "pkg_resources",
  "setuptools",
  "pip",
}
_norm = lambda d: d.lower().replace("_", "-")
_blocked = {
  top
  for top, dists in md.packages_distributions().items()
  if top not in _allow and not any(_norm(d) in _device for d in dists)
}


class _Blocker(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path, target=None):
    if "." in name or name not in _blocked:
      return None
    spec = importlib.machinery.PathFinder.find_spec(name, [_site]) if _site else None
    if spec is None:
      raise ModuleNotFoundError(f"devsim: no module named {name!r} on the GPU image", name=name)
    return spec


sys.meta_path.insert(0, _Blocker())
