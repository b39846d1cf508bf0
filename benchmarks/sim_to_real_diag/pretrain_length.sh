#!/bin/bash
# Does a longer pretraining (or a longer fine-tuning) transfer better? One seed of the gain-5
# row: pretrain the protocol's model for PRE_STEPS steps (default 3000; the table's runlocal
# pretraining is 500) on the pretraining data of the protocol workdir R, fine-tune it as the
# table did up to 863e181 (FT_STEPS steps, default 150; the table now runs 650; at 3e-3;
# finetune_rate.sh) on each device of DEVS, and evaluate the pretrained and the fine-tuned
# runs on every test gain (evaluate.py). BASELINE=1 also trains the equal-steps baseline
# (PRE_STEPS + FT_STEPS steps from scratch) on the same slice and evaluates it beside them.
# PRETRAIN=DIR starts from that pretrained run instead of training one (e.g.
# PRETRAIN=R/pretrain, the protocol's own, with PRE_STEPS=500).
# SET adds config overrides to the pretraining and the fine-tuning (space-separated, e.g. a
# model option such as SET=--config.model.input_gain=False).
set -e  # run from the repository root
R=${R:-runs/sim_to_real_local}
PRE_STEPS=${PRE_STEPS:-3000}
FT_STEPS=${FT_STEPS:-150}
OUT=${OUT:-runs/diag/pretrain_$PRE_STEPS}
export DEVS=${DEVS:-gx_amp gx_bossds1}
PRETRAIN=${PRETRAIN:-$OUT/pretrain}
if [ "$PRETRAIN" = "$OUT/pretrain" ] && [ ! -f $OUT/pretrain.done ]; then
  .venv/bin/python -m ampspace.train --config=configs/sim_to_real_pretrain.py:runlocal \
    --workdir=$OUT/pretrain --config.dataset.name=amp_space/synthetic_lenient \
    --config.dataset.data_dir=$R/tfds/pretrain --config.dataset.manual_dir=$R/rendered/pretrain \
    --config.train.steps=$PRE_STEPS --config.train.tensorboard=false ${SET:-}
  touch $OUT/pretrain.done
fi
R=$R INIT=$PRETRAIN STEPS=$FT_STEPS OUT=$OUT/ft bash benchmarks/sim_to_real_diag/finetune_rate.sh
RUNS="fine-tuned=$OUT/ft/{dev}"
if [ "${BASELINE:-0}" = 1 ]; then
  R=$R MODEL=baseline STEPS=$((PRE_STEPS + FT_STEPS)) OUT=$OUT/baseline \
    bash benchmarks/sim_to_real_diag/finetune_rate.sh
  RUNS="$RUNS baseline=$OUT/baseline/{dev}"
fi
R=$R PRETRAIN=$PRETRAIN RUNS="$RUNS" OUT=$OUT .venv/bin/python benchmarks/sim_to_real_diag/evaluate.py
