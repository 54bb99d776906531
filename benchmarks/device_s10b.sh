#!/usr/bin/env bash
# Session 10, call B (one H100, warm from call A): alexnet rounds 2 and 3 of call A's A/B (NEW, NEWT,
# BASE), then `--loader auto` at NEW (the probe, then hybrid), as session 9's last call ran it.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
tree130k 240
NEW=$PWD/src:/tmp/site; BASE=$PWD/.base/src:/tmp/site
for r in 2 3; do
  LIM=80 b alex$r NEW --arch alexnet --loader hybrid --steps 150 --warmup 30
  LIM=80 b alexT$r NEW --arch alexnet --loader hybrid --steps 150 --warmup 30 --cudnn-benchmark
  LIM=80 b alex$r BASE --arch alexnet --loader hybrid --steps 150 --warmup 30
done
LIM=80 b alexauto NEW --arch alexnet --loader auto --steps 150 --warmup 30
cp /tmp/alex*.json $OUT/ 2>/dev/null
