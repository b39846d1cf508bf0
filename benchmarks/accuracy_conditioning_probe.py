"""Is the amp fine-tune's slow start the conditioning of a device pretraining never saw?

The gx_amp crunch capture of benchmarks/bench_accuracy.py (its audio, run that first) with its
`device.yaml` rewritten, fine-tuned for 120 s from the NAM-layout pretraining (contender
ours_finetune_nam_layout, seed 0) and scored as the race scores:
  - tube_amp_in_distribution: named as the zoo's `tube_amp`, with its attributes and its knobs
    at dials the pretraining saw (gain 8, the rest 5): a conditioning vector from pretraining;
  - gx_amp_no_knobs: gx_amp with no knobs at all (only the device and its unknown attributes).
The race's own row (gx_amp's knobs as dials) is in accuracy_pretrained_vs_scratch_nam_layout.md.

  .venv/bin/python benchmarks/accuracy_conditioning_probe.py tube_amp_in_distribution gx_amp_no_knobs

Writes benchmarks/results/accuracy_conditioning_probe.json (one seed; about 4 min a variant).
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, REPO)

import bench_accuracy as bench  # noqa: E402

from ampspace.files import atomic_write  # noqa: E402

SOURCE = os.path.join(REPO, "runs", "bench_accuracy", "captures", "gx_amp_crunch")
PRETRAINED = os.path.join(REPO, "runs", "pretrain_nam_layout")
WORK = os.path.join(REPO, "runs", "accuracy_conditioning_probe")
VARIANTS = {
  "tube_amp_in_distribution": {
    "device": "tube_amp",
    "device_type": "amp",
    "source": "real",
    "attributes": {
      "preamp_tube": "12AX7",
      "power_tube": "none",
      "tone_stack": "fender",
      "cabinet": "4x12",
    },
    "knobs": {"gain": 8.0, "bass": 5.0, "mid": 5.0, "treble": 5.0, "presence": 5.0, "master": 5.0},
  },
  "gx_amp_no_knobs": {"device": "gx_amp", "device_type": "amp", "source": "real", "knobs": {}},
}


def main(names: list[str]) -> None:
  for name in names:
    if name not in VARIANTS:
      raise SystemExit(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
  if not os.path.isfile(os.path.join(SOURCE, "capture.json")):
    raise SystemExit(f"{SOURCE}: no capture; run benchmarks/bench_accuracy.py first")
  out = {}
  for name in names:
    root = os.path.join(WORK, name)
    capture = os.path.join(root, "capture")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(capture)
    for part in ("train", "validation", "test"):
      shutil.copytree(os.path.join(SOURCE, part), os.path.join(capture, part))
    with open(os.path.join(capture, "device.yaml"), "w") as f:
      yaml.safe_dump(VARIANTS[name], f)
    data = os.path.join(root, "tfds")
    bench.build_dataset(capture, data)
    workdir = os.path.join(root, "run")
    run = bench.train_ours("ours_finetune_nam_layout", data, workdir, [120.0], 0, 2, PRETRAINED)
    scores = bench.evaluate_snapshots(
      "ours_finetune_nam_layout", run, workdir, bench.test_clips(data)
    )
    out[name] = [{k: s[k] for k in ("seconds", "step", "esr", "esr_pre")} for s in scores]
    print(name, out[name], flush=True)
  path = os.path.join(HERE, "results", "accuracy_conditioning_probe.json")
  atomic_write(path, json.dumps(out, indent=1))


if __name__ == "__main__":
  main(sys.argv[1:])
