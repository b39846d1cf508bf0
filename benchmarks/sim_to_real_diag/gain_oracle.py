"""Could a fine-tuned model reach a far gain if the device's gain knob were only a level before
(and after) the clipping? An oracle, one seed, the gain-5 row of a sim-to-real workdir.

For every test gain g of the device's test clips, three pooled ESRs of the fine-tuned run:
  model   the model at its own conditioning for g (what Table 3 scores);
  oracle  the model held at gain 5's conditioning, its DI scaled by the best of a grid of
          input gains (dB) and its output by the least-squares level: the best a pure
          "pre-gain plus volume" knob could give with this gain-5 fit;
  learnt  the input gain the model applies at g against 5 (model.input_gain, dB), beside the
          oracle's best input gain.
If the oracle is far below the model at the far gains, the knob's effect (not the fit at 5)
is what is missing; if it is not, a level before the clipping does not explain the device.

R (default runs/sim_to_real_local), RUN (default R/targets/DEV/ft_5/pretrained/seed0), DEV
(default gx_amp), KNOB (default gain), GAINS (default "2 5 8"; 5 must be among them), OUT
(default runs/diag/gain_oracle): the figures go to OUT/DEV.json and a table to OUT/DEV.md.
The input-gain grid is -30..+15 dB in 3 dB steps. About 10 minutes on the 2-core machine.
"""

import json
import os

import numpy as np

from ampspace import checkpoints
from ampspace.data import pipeline, sources
from ampspace.data.filters import text
from ampspace.runtime.inference import make_apply, run_clip

R = os.environ.get("R", "runs/sim_to_real_local")
DEV = os.environ.get("DEV", "gx_amp")
KNOB = os.environ.get("KNOB", "gain")
RUN = os.environ.get("RUN", f"{R}/targets/{DEV}/ft_5/pretrained/seed0")
OUT = os.environ.get("OUT", "runs/diag/gain_oracle")
GAINS = [float(g) for g in os.environ.get("GAINS", "2 5 8").split()]
GRID_DB = np.arange(-30.0, 15.01, 3.0)
CENTER = 5.0

config = checkpoints.load_config(RUN)
restored = checkpoints.restore_model(RUN, config, None)
apply = make_apply(restored.graphdef, restored.params, config.loss.get("decode", "expected_value"))
dataset = config.dataset.copy_and_resolve_references()
dataset.filter = ""
source = sources.open_split(dataset, "test")
clips: dict[float, list] = {}
for i in range(len(source)):
  record = source[i]
  names = [text(n) for n in record["knob_names"]]
  gain = float(record["knob_values"][names.index(KNOB)])
  if gain not in GAINS:
    continue
  clips.setdefault(gain, []).append(
    (
      pipeline.decode_audio(record, "di"),
      pipeline.decode_audio(record, "output").astype(np.float64),
      pipeline.conditioning_of(record),
    )
  )
if CENTER not in clips:
  raise SystemExit(f"{RUN}: no test clip at {KNOB}={CENTER:g}")
c_center = clips[CENTER][0][2]
gain_w = None
model = restored.graphdef, restored.params
if "input_gain" in config.model and config.model.input_gain:
  from flax import nnx

  net = nnx.merge(*model)
  gain_w = np.asarray(net.input_gain.kernel[...], np.float64)[:, 0]
  gain_w = gain_w * getattr(net, "input_gain_scale", 1.0)


def sums(pred_target):
  """(Σ e², Σ t², Σ p², Σ p t) over clips."""
  sse = sst = spp = spt = 0.0
  for p, t in pred_target:
    sse += float(np.sum((t - p) ** 2))
    sst += float(np.sum(t**2))
    spp += float(np.sum(p**2))
    spt += float(np.sum(p * t))
  return sse, sst, spp, spt


out = {}
for gain in sorted(clips):
  group = clips[gain]
  own = [(run_clip(apply, di, c, restored.context).astype(np.float64), t) for di, t, c in group]
  sse, sst, _, _ = sums(own)
  best = None
  for db in GRID_DB:
    scale = np.float32(10 ** (db / 20))
    pt = [(run_clip(apply, di * scale, c_center, restored.context), t) for di, t, _ in group]
    _, sst_, spp, spt = sums([(p.astype(np.float64), t) for p, t in pt])
    a = spt / max(spp, 1e-30)  # least-squares output level
    esr = (sst_ - 2 * a * spt + a * a * spp) / max(sst_, 1e-30)
    if best is None or esr < best[1]:
      best = (float(db), float(esr), float(20 * np.log10(max(abs(a), 1e-12))))
  learnt = (
    None if gain_w is None else float(20 * np.log10(np.e) * (group[0][2] - c_center) @ gain_w)
  )
  out[gain] = {
    "clips": len(group),
    "esr_model": sse / max(sst, 1e-30),
    "esr_oracle": best[1],
    "oracle_input_db": best[0],
    "oracle_output_db": best[2],
    "learnt_input_db": learnt,
  }
  print(gain, out[gain], flush=True)

os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, f"{DEV}.json"), "w") as f:
  json.dump({"run": RUN, "knob": KNOB, "grid_db": GRID_DB.tolist(), "gains": out}, f, indent=1)
lines = [
  f"Pooled test ESR of {RUN} at each {KNOB} ({DEV}, one seed): the model at its own "
  f"conditioning, and the oracle (held at {KNOB} {CENTER:g}, best input gain on a "
  f"{GRID_DB[1] - GRID_DB[0]:g} dB grid, least-squares output level); written by "
  "benchmarks/sim_to_real_diag/gain_oracle.py.",
  "",
  f"| {KNOB} | clips | ESR model | ESR oracle | oracle input dB | oracle output dB | "
  "model's input gain dB |",
  "|---:|---:|---:|---:|---:|---:|---:|",
]
for gain, g in out.items():
  learnt = "" if g["learnt_input_db"] is None else f"{g['learnt_input_db']:+.1f}"
  lines.append(
    f"| {gain:g} | {g['clips']} | {g['esr_model']:.3f} | {g['esr_oracle']:.3f} | "
    f"{g['oracle_input_db']:+.1f} | {g['oracle_output_db']:+.1f} | {learnt} |"
  )
with open(os.path.join(OUT, f"{DEV}.md"), "w") as f:
  f.write("\n".join(lines) + "\n")
print("\n".join(lines))
