#!/usr/bin/env bash
# Session 15, call B (one H100, after call A on the same machine): issue #8's documented 93% command with four
# new seeds (5-8), then benchmarks/ensemble_probe.py on their saved models: does averaging the weights' and the
# EMA's probabilities, or more shifted views, lift every run above 93%? Prediction: W+E adds about 0.1 point.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
cifar_data
cifar fill --arch resnet9 --epochs 1
for seed in 5 6 7 8; do
  cifar w96_s$seed --arch resnet9_w96 --epochs 100 --cutout 0.3 --label-smoothing 0.2 --tta-shift 1 --seed $seed
done
timeout 120 python3 benchmarks/ensemble_probe.py /tmp/c/cifar10 /tmp/runs/w96_s*/model_best.pt 2>&1 \
  | grep -v Warning | tee -a $OUT/probe.txt | tail -16
