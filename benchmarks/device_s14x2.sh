#!/usr/bin/env bash
# Session 14, first 2-GPU call (planned in session 13 as device_next_x2.sh). ddp_ceiling.py's fed steps reach 1.91x
# one GPU's `train`, `train --ngpu 2` 1.84x. One difference not tried: `train` (its CLI) asks CUDA for 32 hardware
# queues per GPU (CUDA_DEVICE_MAX_CONNECTIONS, for the hybrid loader's nvJPEG), the script runs with CUDA's 8. With
# more queues the NCCL kernels run more freely beside the backward. Prediction: if this is the gap, the pair with 8
# queues makes about 10,500 img/s (1.9x) and the script's fed steps with 32 fall by about 3%. Odds modest: session
# 7's compiled pair, before the 32 queues, made 1.79x. The GPU-marked tests run while the tree is written.
set -u
source benchmarks/device_x2_lib.sh
nvidia-smi -L | tee $S; nproc | tee -a $S
unset PYTHONDONTWRITEBYTECODE; export PYTHONPYCACHEPREFIX=/tmp/pyc XDG_CACHE_HOME=/tmp/xdg
gpu_tests_beside_tree13k 120
x2_resnet50
val100
C="--backend compile --epoch-size 600 --val-dir /tmp/val100 --loader cpu"
LIMIT=120 run fill 512 $T/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null
CUDA_VISIBLE_DEVICES=0 LIMIT=95 run c1 256 $T/c1 $C --batch-size 256; half c1 256
LIMIT=75 run c2 512 $T/c2 $C --batch-size 512 --ngpu 2; half c2 512
CUDA_DEVICE_MAX_CONNECTIONS=8 LIMIT=75 run c2q8 512 $T/c2q8 $C --batch-size 512 --ngpu 2; half c2q8 512
LIMIT=80 ddp_ceiling2 dcq8 --data /tmp/inet13k
CUDA_DEVICE_MAX_CONNECTIONS=32 LIMIT=80 ddp_ceiling2 dcq32 --data /tmp/inet13k
cp /tmp/c1.log /tmp/c2.log /tmp/c2q8.log /tmp/dcq8.log /tmp/dcq32.log $OUT/ 2>/dev/null
echo; cat $S
