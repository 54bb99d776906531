#!/usr/bin/env bash
# Session 11, call A (one H100): the hybrid loader's workers leave the resize to the GPU (decode_region).
# The 130k tree (GPU-marked tests while it is written); then BASE (.base/src = e055924, the workers resize)
# against NEW in turn: the loader alone at fixed CPU shares 1.0 (every image decoded by the workers) and
# 0.5, and one round of alexnet `bench train --loader hybrid` (adaptive split), 150 steps.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
tree130k 240
NEW=$PWD/src:/tmp/site; BASE=$PWD/.base/src:/tmp/site
ldr() {  # label, code, CPU share: bench loader --loader hybrid, img/s
  echo "-- $1 $2 share $3" | tee -a $S
  PYTHONPATH=${!2} timeout 60 python3 -m imagenet_trainer bench loader --data $T --loader hybrid --cpu-share $3 \
    --steps 100 --warmup 30 --json > /tmp/$1.$2.json 2>/tmp/$1.$2.err
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(round(d['images_per_s']), 'img/s')" /tmp/$1.$2.json 2>&1 | tee -a $S
  tail -2 /tmp/$1.$2.err >> $S
}
ldr ld100a BASE 1.0; ldr ld100a NEW 1.0; ldr ld100b BASE 1.0; ldr ld100b NEW 1.0
ldr ld50 BASE 0.5; ldr ld50 NEW 0.5
LIM=80 b alex1 BASE --arch alexnet --loader hybrid --steps 150 --warmup 30
LIM=80 b alex1 NEW --arch alexnet --loader hybrid --steps 150 --warmup 30
tar czf $OUT/json_a.tgz -C /tmp $(cd /tmp && ls *.json) 2>/dev/null
