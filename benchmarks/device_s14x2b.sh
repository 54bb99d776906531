#!/usr/bin/env bash
# Session 14, third 2-GPU call. Calls 1-2 (2x H200): the compiled pair with CUDA's 8 hardware queues made
# 10,464-10,776 img/s (3 runs), with train's 32 9,493-11,014 (3 runs): +4.5% on the means, inside the 32-queue runs'
# spread; on H200s the CPU loader is the limit, which makes the runs noisy. Here the same A/B where the GPUs are
# the limit (asked for H100s), alternated, and one GPU with 8 queues too (it must not lose).
# Prediction: if the queues are the pair's gap, the pair with 8 gains 3-4% on H100s and one GPU moves less than 1%.
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
val100
T="python3 -m imagenet_trainer train --data /tmp/inet13k --arch resnet50 --epochs 1 --cache off --val-every 0 --output /tmp/runs"
C="--backend compile --epoch-size 600 --val-dir /tmp/val100 --loader cpu"
LIMIT=120 run fill 512 $T/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null
CUDA_VISIBLE_DEVICES=0 LIMIT=80 run c1 256 $T/c1 $C --batch-size 256 > /dev/null; half c1 256
CUDA_VISIBLE_DEVICES=0 CUDA_DEVICE_MAX_CONNECTIONS=8 LIMIT=70 run c1q8 256 $T/c1q8 $C --batch-size 256 > /dev/null; half c1q8 256
for r in a b; do
  CUDA_DEVICE_MAX_CONNECTIONS=8 LIMIT=62 run c2q8$r 512 $T/c2q8$r $C --batch-size 512 --ngpu 2 > /dev/null; half c2q8$r 512
  LIMIT=62 run c2$r 512 $T/c2$r $C --batch-size 512 --ngpu 2 > /dev/null; half c2$r 512
done
echo; cat $S
