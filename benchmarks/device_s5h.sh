#!/usr/bin/env bash
# Session 5, call 8 (one H100): #8, two more seeds (3, 4) of the recommended command: ResNet-9 at width 96, 100 epochs,
# cutout 0.3, label smoothing 0.2, flip + 1 px shift TTA; two more seeds, with bytecode.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
cifar_data
cifar fill --arch resnet9 --epochs 1
for seed in 3 4; do
  cifar w96_s$seed --arch resnet9_w96 --epochs 100 --cutout 0.3 --label-smoothing 0.2 --tta-shift 1 --seed $seed
done
