#!/usr/bin/env bash
# Session 5, call 6 (one H100): #8's 93% in 120 s. ResNet-9 at width 96 (registered in a scratch copy, .alt/src)
# for 100 epochs with cutout + label smoothing 0.2, two seeds; the wide net at 80 epochs, a third seed; then
# translation TTA on the saved models (benchmarks/tta_probe.py). With bytecode.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
cifar_data
export PYTHONPATH=$PWD/.alt/src:/tmp/site
cifar fill --arch resnet9 --epochs 1
cifar w96_e100_s0 --arch resnet9w96 --epochs 100 --cutout 0.3 --label-smoothing 0.2 --seed 0
cifar w96_e100_s1 --arch resnet9w96 --epochs 100 --cutout 0.3 --label-smoothing 0.2 --seed 1
cifar w128_e80_s2 --arch resnet9_wide --epochs 80 --cutout 0.3 --label-smoothing 0.2 --seed 2
timeout 100 python3 benchmarks/tta_probe.py /tmp/c/cifar10 /tmp/runs/w96_e100_s0/model_best.pt \
  /tmp/runs/w96_e100_s1/model_best.pt /tmp/runs/w128_e80_s2/model_best.pt 2>&1 | grep -v Warn | tee -a $S
