#!/usr/bin/env bash
# Session 11, call B (one H100, warm from call A: the 130k tree is there): a second alexnet round, then
# resnet18 eager (hybrid, adaptive), BASE against NEW as in call A.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
tree130k 240
NEW=$PWD/src:/tmp/site; BASE=$PWD/.base/src:/tmp/site
LIM=80 b alex2 NEW --arch alexnet --loader hybrid --steps 150 --warmup 30
LIM=80 b alex2 BASE --arch alexnet --loader hybrid --steps 150 --warmup 30
LIM=80 b r18 BASE --arch resnet18 --loader hybrid --steps 150 --warmup 30
LIM=80 b r18 NEW --arch resnet18 --loader hybrid --steps 150 --warmup 30
LIM=80 b alex3 NEW --arch alexnet --loader hybrid --steps 150 --warmup 30
LIM=80 b alex3 BASE --arch alexnet --loader hybrid --steps 150 --warmup 30
tar czf $OUT/json_b.tgz -C /tmp $(cd /tmp && ls *.json) 2>/dev/null
