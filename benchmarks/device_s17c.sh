#!/usr/bin/env bash
# Session 17, one H100 (nvidia-h100-x1): the GPU-marked tests on this code (DDP options, fused SGD, the EMA as the
# run's model), then the documented 93% command (README, #8) with four new seeds, 12-15, reported as train now
# reports it: the EMA's figure. Prediction (from twelve earlier runs, where the EMA ranged 93.02-93.35%): each seed
# at 93.0% or more, mean 93.1-93.25%, 105-115 s. Then, if time is left, the 91% command (22 epochs) with seeds 0-1.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
t0=$(date +%s)
( cifar_data ) &
timeout 150 python3 -m pytest -q -m gpu tests -p no:cacheprovider > $OUT/gpu_tests.txt 2>&1
echo "gpu tests rc=$? in $(( $(date +%s) - t0 )) s: $(tail -1 $OUT/gpu_tests.txt)" | tee -a $S
wait
cifar fill --arch resnet9 --epochs 1
for seed in 12 13 14 15; do
  [ $(( $(date +%s) - t0 )) -lt 440 ] || break
  cifar s$seed --arch resnet9_w96 --epochs 100 --cutout 0.3 --label-smoothing 0.2 --tta-shift 1 --seed $seed
  grep -h -E '^epoch 100/100|^best val' /tmp/s$seed.log | cut -c1-220 | tee -a $S
done
for seed in 0 1; do
  [ $(( $(date +%s) - t0 )) -lt 540 ] || break
  cifar q$seed --arch resnet9 --epochs 22 --seed $seed
  grep -h -E '^epoch 22/22|^best val' /tmp/q$seed.log | cut -c1-220 | tee -a $S
done
echo "elapsed $(( $(date +%s) - t0 )) s" | tee -a $S
