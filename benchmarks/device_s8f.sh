#!/usr/bin/env bash
# Session 8, call 6 (one H100, warm from call 5, 130k tree): alexnet OLD/NEW interleaved three times (as in
# device_s8e.sh), resnet18 NEW once more, and resnet50 compiled with --loader auto at NEW.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
T=/tmp/inet130k
[ -d $T ] || python3 -m imagenet_trainer sample-data $T --kind imagenet-like --classes 100 --per-class 1300 --val-per-class 10 > /dev/null 2>&1
NEW=$PWD/src:/tmp/site; OLD=$PWD/.base/src:/tmp/site
queues() { case $1 in OLD) export CUDA_DEVICE_MAX_CONNECTIONS=8;; *) unset CUDA_DEVICE_MAX_CONNECTIONS;; esac; }
LIM=60
for i in 1 2 3; do for v in OLD NEW; do queues $v; b alex$i $v --arch alexnet --loader hybrid --steps 150 --warmup 30; done; done
queues NEW
b r18c NEW --arch resnet18 --loader hybrid --steps 150 --warmup 30
LIM=150 b r50 NEW --arch resnet50 --backend compile --loader auto --steps 100 --warmup 40
cp /tmp/*.json $OUT/ 2>/dev/null
