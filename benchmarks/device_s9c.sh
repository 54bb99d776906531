#!/usr/bin/env bash
# Session 9, last call (one H100): the loader issue's figures at the session's final code (cuDNN's own
# algorithm picks, the probe timing the workers after the model's warm-up): the 130k tree (GPU-marked
# tests run while it is written), then bench train with --loader auto for resnet50 compiled, resnet18
# and alexnet, each against the model-only ceiling of the same run.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
tree130k 240
NEW=$PWD/src:/tmp/site
LIM=200 b r50c NEW --arch resnet50 --backend compile --loader auto --steps 100 --warmup 40
LIM=80 b r18 NEW --arch resnet18 --loader auto --steps 150 --warmup 30
LIM=80 b alex NEW --arch alexnet --loader auto --steps 150 --warmup 30
cp /tmp/*.NEW.json $OUT/ 2>/dev/null
