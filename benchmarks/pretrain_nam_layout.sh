#!/bin/bash
# The NAM-layout model pretrained on the native zoo, for bench_accuracy.py's
# ours_finetune_nam_layout (--pretrained_nam_layout=OUT): configs/sim_to_real_pretrain.py's
# runlocal pretraining with model=nam_layout (configs/capture.py:nam_layout's model, conditioned
# on the device and knobs), STEPS steps (default 2000, about 15 min on 2 cores) on the
# pretraining data of the sim-to-real workdir R, which it prepares first if it is missing
# (`launch.sim_to_real --stage=data`, a few minutes).
#   bash benchmarks/pretrain_nam_layout.sh        # -> runs/pretrain_nam_layout
set -e
cd "$(dirname "$0")/.."
R=${R:-runs/sim_to_real_local}
STEPS=${STEPS:-2000}
OUT=${OUT:-runs/pretrain_nam_layout}
if [ ! -d "$R/tfds/pretrain" ]; then
  .venv/bin/python -m launch.sim_to_real --scale=runlocal --rows=5 --workdir="$R" --stage=data
fi
.venv/bin/python -m ampspace.train --config=configs/sim_to_real_pretrain.py:runlocal,model=nam_layout \
  --workdir="$OUT" --config.dataset.name=amp_space/synthetic_lenient \
  --config.dataset.data_dir="$(realpath "$R")/tfds/pretrain" --config.dataset.manual_dir="$(realpath "$R")/rendered/pretrain" \
  --config.train.steps="$STEPS"
