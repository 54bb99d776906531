#!/usr/bin/env bash
# Session 5, call 7 (one H100): #8's 93% in 120 s with the committed options: ResNet-9 at width 96, 100 epochs,
# cutout 0.3, label smoothing 0.2, flip + 1 px shift TTA; three seeds, with bytecode. Then the GPU-marked tests.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
cifar_data
cifar fill --arch resnet9 --epochs 1
for seed in 0 1 2; do
  cifar w96_s$seed --arch resnet9_w96 --epochs 100 --cutout 0.3 --label-smoothing 0.2 --tta-shift 1 --seed $seed
done
timeout 200 python3 -m pytest -q -m gpu tests -p no:cacheprovider 2>&1 | tail -4 | tee -a $S
