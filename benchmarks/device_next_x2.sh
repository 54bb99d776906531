#!/usr/bin/env bash
# Planned in session 12 for the next 2-GPU call; NOT RUN YET. Session 12 found ddp_ceiling.py's steps fed by this
# project's loader at 1.91x one GPU's `train`, while `train --ngpu 2` makes 1.82-1.84x. This call bisects the 3.8%:
#  - ddp_ceiling.py --data with --recipe fast (the loader's crop scale 0.25 and train_one_epoch with the recipe's
#    loss, metrics, EMA) against TrainConfig's defaults: phases random / beside / loader_beside / fed / trainer;
#  - DDP's copy savers (--bucket-view --no-broadcast-buffers) on random batches;
#  - train's pair as shipped, and with the script's crop scale (--rrc-min-scale 0.08), against 1 GPU.
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
val100
C="--backend compile --epoch-size 600 --val-dir /tmp/val100 --loader cpu"
ddp_ceiling2 dcfast --data /tmp/inet13k --recipe fast
ddp_ceiling2 dcplain --data /tmp/inet13k
ddp_ceiling2 dcview --bucket-view --no-broadcast-buffers
LIMIT=120 run fill 512 $T/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null
CUDA_VISIBLE_DEVICES=0 LIMIT=80 run c1 256 $T/c1 $C --batch-size 256; half c1 256
LIMIT=75 run c2 512 $T/c2 $C --batch-size 512 --ngpu 2; half c2 512
LIMIT=75 run c2s008 512 $T/c2s008 $C --batch-size 512 --ngpu 2 --rrc-min-scale 0.08; half c2s008 512
