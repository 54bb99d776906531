#!/usr/bin/env bash
# Session 20's second one-GPU call, nvidia-h100-x1, carry [.whl, .devdata]: the README's two CIFAR commands with
# this session's code (the quick exit, the charts drawn once each), on the kind of H100 where call 3 trained the
# 91% command in 15.0-15.5 s (wall 24.4-25.5 s, seed 0).
# Predictions: the 91% command, seeds 0-2: 24-26 s each, the EMA at 91% or more in 3 of 3, checkpoint waits
# 1.3-1.6 s (1.6-1.8 in call 3). The 93% command (seed 12): 93% or more, but 120-135 s on this slower host (104-114 s
# on session 16's), so likely over 120 s.
set -u
source benchmarks/device_x2_lib.sh  # install and helpers
with_bytecode
cifar_data
cifar warm9 --arch resnet9 --epochs 2 > /dev/null  # bytecode and the compile caches
cifar warm96 --arch resnet9_w96 --epochs 2 --cutout 0.3 --label-smoothing 0.2 --tta-shift 1 > /dev/null
for s in 0 1 2; do cifar r9e22_s$s --arch resnet9 --epochs 22 --seed $s; done
CIFAR_LIMIT=200 cifar w96e100_s12 --arch resnet9_w96 --epochs 100 --cutout 0.3 --label-smoothing 0.2 --tta-shift 1 --seed 12
echo; cat $S
