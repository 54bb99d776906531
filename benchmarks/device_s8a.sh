#!/usr/bin/env bash
# Session 8, call 1 (one H100): the GPU-marked tests (the crop kernel's per-channel helper, the probe), then
# --loader auto with its probe (data/probe.py) on the 130,000-image tree: resnet50 compiled against
# the hybrid loader (what auto was before), resnet18 and alexnet.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
tree130k 240
NEW=$PWD/src:/tmp/site
LIM=150 b r50 NEW --arch resnet50 --backend compile --loader auto --steps 100 --warmup 40
LIM=100 b r50h NEW --arch resnet50 --backend compile --loader hybrid --steps 100 --warmup 40
LIM=60 b r18 NEW --arch resnet18 --loader auto --steps 150 --warmup 30
LIM=60 b alexnet NEW --arch alexnet --loader auto --steps 150 --warmup 30
cp /tmp/*.json $OUT/ 2>/dev/null
