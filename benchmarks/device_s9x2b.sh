#!/usr/bin/env bash
# Session 9, 2-GPU call B (warm from call A): resnet50 from JPEG on 1 GPU against 2, eager twice, then
# compiled (250 steps, steady over batches 80-250), at the new default (cuDNN's own algorithm picks).
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
for r in 1 2; do
  CUDA_VISIBLE_DEVICES=0 run g1_$r 256 $T/g1_$r --batch-size 256
  run g2_$r 512 $T/g2_$r --batch-size 512 --ngpu 2
done
CUDA_VISIBLE_DEVICES=0 LIMIT=200 run c1 256 $T/c1 --batch-size 256 --backend compile
LIMIT=200 run c2 512 $T/c2 --batch-size 512 --ngpu 2 --backend compile
