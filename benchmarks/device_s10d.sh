#!/usr/bin/env bash
# Session 10, call D (one H100, 130k tree; GPU-marked tests while it is written): the producer's wait for
# the workers, per timed window (bench JSON split_windows), at fixed CPU shares (alexnet 0.15-0.45,
# resnet18 0.3 and 0.5, 600 steps), then the split controller with its new guard (a window in which the
# producer waited more than 10% of the time moves the share towards the GPU): alexnet three times and
# resnet18 once, 1,000 steps each.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
tree130k 240
NEW=$PWD/src:/tmp/site
for s in 0.15 0.25 0.35 0.45; do LIM=90 b alexfix$s NEW --arch alexnet --loader hybrid --cpu-share $s --steps 600 --warmup 50; done
for r in 1 2 3; do LIM=90 b alexguard$r NEW --arch alexnet --loader hybrid --steps 1000 --warmup 50; done
for s in 0.3 0.5; do LIM=90 b r18fix$s NEW --arch resnet18 --loader hybrid --cpu-share $s --steps 600 --warmup 50; done
LIM=120 b r18guard NEW --arch resnet18 --loader hybrid --steps 1000 --warmup 50
mkdir -p $OUT/json && cp /tmp/*.NEW.json $OUT/json/ 2>/dev/null
