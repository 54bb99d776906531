#!/usr/bin/env bash
# Session 10, call C (one H100, warm from call B, 130k tree): 150-step alexnet runs moved 12.5-17.6k img/s
# within one call, with no difference between the code versions; measure longer (1,000 steps, about
# 16 s of training, where 150 steps are 2.4 s): alexnet three times, resnet18 once, at this code.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
tree130k 240
NEW=$PWD/src:/tmp/site
for r in 1 2 3; do LIM=90 b alexlong$r NEW --arch alexnet --loader auto --steps 1000 --warmup 50; done
LIM=120 b r18long NEW --arch resnet18 --loader auto --steps 1000 --warmup 50
mkdir -p $OUT/json && cp /tmp/*long*.json $OUT/json/ 2>/dev/null
