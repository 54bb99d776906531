#!/usr/bin/env bash
# Session 8, call 5 (one H100), the 130,000-image tree: the hybrid loader with 8 hardware queues (CUDA's
# default) against 32, and with the files' bytes pinned. OLD = .base/src (HEAD: pageable bytes) with
# CUDA_DEVICE_MAX_CONNECTIONS=8; BASE32 = the same code with 32; NEW = the working tree (32 by default, pinned
# bytes). The loader alone, then resnet18 and alexnet end to end; then longer runs of NEW.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
tree130k 200
NEW=$PWD/src:/tmp/site; OLD=$PWD/.base/src:/tmp/site; BASE32=$OLD
queues() { case $1 in OLD) export CUDA_DEVICE_MAX_CONNECTIONS=8;; BASE32) export CUDA_DEVICE_MAX_CONNECTIONS=32;; *) unset CUDA_DEVICE_MAX_CONNECTIONS;; esac; }
for v in OLD NEW; do queues $v; loader_alone $v; done
LIM=60
for v in OLD BASE32 NEW; do queues $v; b r18 $v --arch resnet18 --loader hybrid --steps 150 --warmup 30; done
for v in NEW BASE32 OLD; do queues $v; b alexnet $v --arch alexnet --loader hybrid --steps 150 --warmup 30; done
queues NEW
b r18long NEW --arch resnet18 --loader hybrid --steps 500 --warmup 50
b alexlong NEW --arch alexnet --loader hybrid --steps 600 --warmup 50
cp /tmp/*.json $OUT/ 2>/dev/null
