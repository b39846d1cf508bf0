#!/bin/bash
# One seed of the gain-5 fine-tune at rate LR (default 3e-3, the config's and the table's since
# 7e8e210; 1e-3 was the rate of the 8afe0a8 table) into OUT, from the protocol workdir R;
# STEPS fine-tuning steps (default 150, the table's until 863e181, which made it 650), ARCH
# the protocol's --architecture (default paper), INIT the pretrained run to start from
# (default R/pretrain).
# MODEL=baseline trains the table's baseline instead (from scratch, STEPS steps at the
# baseline config's own rate) on the same slice: the fine-tune DIs at gain 5. SET adds config
# overrides (space-separated, e.g. SET=--config.freeze_knob_conditioning=True).
set -e  # run from the repository root
R=${R:-runs/sim_to_real_local}
for dev in ${DEVS:-gx_amp gx_bossds1}; do
  knob=gain; [ $dev = gx_bossds1 ] && knob=drive
  if [ "${MODEL:-finetune}" = baseline ]; then
    run=(--config=configs/sim_to_real_baseline.py:runlocal,${ARCH:-paper},gains=5)
  else
    run=(--config=configs/sim_to_real_finetune.py:runlocal,${ARCH:-paper},gains=5
         --config.init_from=${INIT:-$R/pretrain} --config.optimizer.learning_rate=${LR:-0.003})
  fi
  .venv/bin/python -m ampspace.train "${run[@]}" \
    --workdir=${OUT:-runs/diag/ft_lr}/$dev --config.dataset.name=amp_space/real_heldout \
    --config.dataset.data_dir=$R/tfds/real/$dev --config.dataset.manual_dir=$R/recordings/$dev \
    "--config.dataset.filter=$knob=5;di_id=real_0002,real_0003,real_0005,real_0007,real_0010" \
    --config.seed=0 --config.train.steps=${STEPS:-150} \
    --config.train.tensorboard=false --config.dataset.build_if_missing=True ${SET:-}
done
