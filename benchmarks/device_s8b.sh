#!/usr/bin/env bash
# Session 8, call 2 (one H100): GPU-marked tests, then the hybrid loader with nvJPEG on a thread of its own
# (NEW: a working tree that was not kept, its loader.py is not in the repository; the result: no gain)
# against one thread that decodes and crops in turn (BASE, .base/src = commit 7e9cc9d),
# on the 130,000-image tree: the loader alone, then resnet18 and alexnet end to end, A/B then B/A.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
tree130k 200
NEW=$PWD/src:/tmp/site; BASE=$PWD/.base/src:/tmp/site
for v in BASE NEW; do loader_alone $v; done
LIM=60
b r18 BASE --arch resnet18 --loader hybrid --steps 150 --warmup 30
b r18 NEW --arch resnet18 --loader hybrid --steps 150 --warmup 30
b alexnet BASE --arch alexnet --loader hybrid --steps 150 --warmup 30
b alexnet NEW --arch alexnet --loader hybrid --steps 150 --warmup 30
b alexnet2 NEW --arch alexnet --loader hybrid --steps 150 --warmup 30
b alexnet2 BASE --arch alexnet --loader hybrid --steps 150 --warmup 30
b r18long NEW --arch resnet18 --loader hybrid --steps 500 --warmup 50
b alexlong NEW --arch alexnet --loader hybrid --steps 600 --warmup 50
cp /tmp/*.json $OUT/ 2>/dev/null
