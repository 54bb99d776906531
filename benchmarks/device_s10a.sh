#!/usr/bin/env bash
# Session 10, call A (one H100): why alexnet fell to 13,942 img/s in session 9's last call. The 130k tree
# (GPU-marked tests while it is written), then one round of alexnet `bench train --loader hybrid`:
# NEW = this code (cuDNN's own algorithm picks), NEWT = this code with --cudnn-benchmark, BASE = the code
# session 9 started from (b6c67a9, in .base/: cuDNN autotuned, the older gpu_crop helper).
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
tree130k 240
NEW=$PWD/src:/tmp/site; BASE=$PWD/.base/src:/tmp/site
alex_round() {  # round number
  LIM=80 b alex$1 NEW --arch alexnet --loader hybrid --steps 150 --warmup 30
  LIM=80 b alexT$1 NEW --arch alexnet --loader hybrid --steps 150 --warmup 30 --cudnn-benchmark
  LIM=80 b alex$1 BASE --arch alexnet --loader hybrid --steps 150 --warmup 30
}
alex_round 1
cp /tmp/alex*.json $OUT/ 2>/dev/null
