#!/usr/bin/env bash
# Planned in session 13 for the next 2-GPU call; NOT RUN YET. ddp_ceiling.py's fed steps reach 1.91x one GPU's
# `train`, `train --ngpu 2` 1.84x. One difference not tried: `train` (its CLI) asks CUDA for 32 hardware queues
# per GPU (CUDA_DEVICE_MAX_CONNECTIONS, for the hybrid loader's nvJPEG), the script runs with CUDA's 8. With
# more queues the NCCL kernels run more freely beside the backward. Prediction: if this is the gap, the pair
# with 8 queues makes about 10,500 img/s (1.9x) and the script's fed steps with 32 fall by about 3%.
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
val100
C="--backend compile --epoch-size 600 --val-dir /tmp/val100 --loader cpu"
LIMIT=120 run fill 512 $T/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null
CUDA_VISIBLE_DEVICES=0 LIMIT=95 run c1 256 $T/c1 $C --batch-size 256; half c1 256
LIMIT=75 run c2 512 $T/c2 $C --batch-size 512 --ngpu 2; half c2 512
CUDA_DEVICE_MAX_CONNECTIONS=8 LIMIT=75 run c2q8 512 $T/c2q8 $C --batch-size 512 --ngpu 2; half c2q8 512
CUDA_DEVICE_MAX_CONNECTIONS=1 LIMIT=75 run c2q1 512 $T/c2q1 $C --batch-size 512 --ngpu 2; half c2q1 512
LIMIT=90 ddp_ceiling2 dcq8 --data /tmp/inet13k
CUDA_DEVICE_MAX_CONNECTIONS=32 LIMIT=90 ddp_ceiling2 dcq32 --data /tmp/inet13k
