#!/bin/bash
# Does a longer pretraining transfer better? One seed of the gain-5 row: pretrain the
# protocol's model for PRE_STEPS steps (default 3000; the table's runlocal pretraining is 500)
# on the pretraining data of the protocol workdir R, fine-tune it as the table does (150 steps
# at 3e-3, finetune_rate.sh) on each device of DEVS, and evaluate the pretrained and the
# fine-tuned runs on every test gain (evaluate.py). BASELINE=1 also trains the equal-steps
# baseline (PRE_STEPS + 150 steps from scratch) on the same slice and evaluates it beside them.
set -e  # run from the repository root
R=${R:-runs/sim_to_real_local}
PRE_STEPS=${PRE_STEPS:-3000}
OUT=${OUT:-runs/diag/pretrain_$PRE_STEPS}
export DEVS=${DEVS:-gx_amp gx_bossds1}
if [ ! -f $OUT/pretrain.done ]; then
  .venv/bin/python -m ampspace.train --config=configs/sim_to_real_pretrain.py:runlocal \
    --workdir=$OUT/pretrain --config.dataset.name=amp_space/synthetic_lenient \
    --config.dataset.data_dir=$R/tfds/pretrain --config.dataset.manual_dir=$R/rendered/pretrain \
    --config.train.steps=$PRE_STEPS --config.train.tensorboard=false
  touch $OUT/pretrain.done
fi
R=$R INIT=$OUT/pretrain OUT=$OUT/ft bash benchmarks/sim_to_real_diag/finetune_rate.sh
RUNS="fine-tuned=$OUT/ft/{dev}"
if [ "${BASELINE:-0}" = 1 ]; then
  for dev in $DEVS; do
    knob=gain; [ $dev = gx_bossds1 ] && knob=drive
    .venv/bin/python -m ampspace.train --config=configs/sim_to_real_baseline.py:runlocal,gains=5 \
      --workdir=$OUT/baseline/$dev --config.dataset.name=amp_space/real_heldout \
      --config.dataset.data_dir=$R/tfds/real/$dev --config.dataset.manual_dir=$R/recordings/$dev \
      "--config.dataset.filter=$knob=5;di_id=real_0002,real_0003,real_0005,real_0007,real_0010" \
      --config.seed=0 --config.train.steps=$((PRE_STEPS + 150)) --config.train.tensorboard=false
  done
  RUNS="$RUNS baseline=$OUT/baseline/{dev}"
fi
R=$R PRETRAIN=$OUT/pretrain RUNS="$RUNS" OUT=$OUT .venv/bin/python benchmarks/sim_to_real_diag/evaluate.py
