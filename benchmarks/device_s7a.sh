#!/usr/bin/env bash
# Session 7, call 1 (one H100): the GPU-marked tests at the current code, then the hybrid loader's crop step
# as one Triton kernel (data/gpu_crop.py) against roi_align over a padded batch (.base/src = commit 742407b),
# on the 130,000-image tree: the crop step alone, then bench train, resnet18 and alexnet, A/B.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
tree130k 240
timeout 60 python3 benchmarks/crop_kernel_probe.py $T 256 224 2>&1 | tee -a $S
timeout 60 python3 benchmarks/crop_kernel_probe.py $T 256 128 2>&1 | tee -a $S
NEW=$PWD/src:/tmp/site; BASE=$PWD/.base/src:/tmp/site
b r18 BASE --arch resnet18 --loader hybrid --steps 150 --warmup 30
b r18 NEW --arch resnet18 --loader hybrid --steps 150 --warmup 30
b alexnet NEW --arch alexnet --loader hybrid --steps 150 --warmup 30
b alexnet BASE --arch alexnet --loader hybrid --steps 150 --warmup 30
LIM=170 b r50 NEW --arch resnet50 --backend compile --loader hybrid --steps 100 --warmup 40
cp /tmp/*.json $OUT/ 2>/dev/null
