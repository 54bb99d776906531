#!/usr/bin/env bash
# Session 9, 2-GPU call A: the DDP ceiling (random batches on the device, 1 process and 2, eager and
# compiled), then the first training batch with cuDNN's own algorithm picks (the new default) on 1 and
# 2 GPUs, the loader probe fresh and then cached (13k tree, resnet50 eager, 60 steps).
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
D="timeout 150 python3 benchmarks/ddp_ceiling.py --arch resnet50"
TR="timeout 150 torchrun --nproc-per-node 2 benchmarks/ddp_ceiling.py --arch resnet50"
CUDA_VISIBLE_DEVICES=0 $D 2>/dev/null | tee -a $S
$TR 2>/dev/null | grep '^{' | tee -a $S
CUDA_VISIBLE_DEVICES=0 $D --compile 2>/dev/null | tee -a $S
$TR --compile 2>/dev/null | grep '^{' | tee -a $S
rm -rf /tmp/itcache/loader
for c in fresh cached; do
  CUDA_VISIBLE_DEVICES=0 LIMIT=90 run g1_$c 256 $T/g1_$c --batch-size 256 --epoch-size 60
done
for c in fresh cached; do
  LIMIT=90 run g2_$c 512 $T/g2_$c --batch-size 512 --ngpu 2 --epoch-size 60
done
