#!/usr/bin/env bash
# Session 8, issue #4 on 2 GPUs with 32 hardware queues, pinned file bytes and --loader auto's probe:
# ResNet-50 from JPEG every epoch, 1 GPU against 2 in one call, alternating, session 4's commands (eager,
# 250 steps, steady over 75-250), then the same pair compiled (a first short run fills the compile cache).
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
CUDA_VISIBLE_DEVICES=0 run fill 256 $T/f --batch-size 256 --epoch-size 10 > /dev/null
for r in 1 2; do
  CUDA_VISIBLE_DEVICES=0 run g1_$r 256 $T/g1_$r --batch-size 256
  run g2_$r 512 $T/g2_$r --batch-size 512 --ngpu 2
done
LIMIT=200 run fillc 512 $T/fc --batch-size 512 --epoch-size 10 --ngpu 2 --backend compile > /dev/null
CUDA_VISIBLE_DEVICES=0 LIMIT=200 run c1 256 $T/c1 --batch-size 256 --backend compile
LIMIT=200 run c2 512 $T/c2 --batch-size 512 --ngpu 2 --backend compile
