#!/usr/bin/env bash
# Session 4, issue #4, second 2-GPU call: fewer loader workers per rank (12, the default for 2 ranks on
# 32 cores, against 10 and 8), longer runs (250 steps, steady over 75-250), bytecode cached.
set -u
source benchmarks/device_x2_lib.sh
nvidia-smi -L | tee $S; nproc | tee -a $S
unset PYTHONDONTWRITEBYTECODE; export PYTHONPYCACHEPREFIX=/tmp/pyc
make_tree
T="python3 -m imagenet_trainer train --data /tmp/inet13k --arch resnet50 --epochs 1 --epoch-size 250 --cache off --val-every 0 --output /tmp/runs"
CUDA_VISIBLE_DEVICES=0 run fill 256 $T/f --batch-size 256 --epoch-size 10 > /dev/null
for r in 1 2; do
  CUDA_VISIBLE_DEVICES=0 run g1_$r 256 $T/g1_$r --batch-size 256
  run g2w12_$r 512 $T/g2w12_$r --batch-size 512 --ngpu 2
  run g2w10_$r 512 $T/g2w10_$r --batch-size 512 --ngpu 2 --workers 10
done
run g2w8 512 $T/g2w8 --batch-size 512 --ngpu 2 --workers 8
