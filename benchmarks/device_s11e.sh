#!/usr/bin/env bash
# Session 11, call E (one H100): the workers carry on into the next epoch. The GPU-marked tests while the
# 13k tree (epochs of 50 batches of 256) is written; then BASE (.base/src = 271ad72, each epoch's iterator
# starts afresh) against NEW in turn: the CPU loader alone over 6 whole epochs, resnet18 and alexnet
# `bench train --loader hybrid --cpu-share 0.3` over 300 steps (6 epoch boundaries).
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
gpu_tests_beside_tree13k 200
T=/tmp/inet13k
NEW=$PWD/src:/tmp/site; BASE=$PWD/.base/src:/tmp/site
ldr() {  # label, code: bench loader --loader cpu --epochs 6, img/s and memory
  echo "-- $1 $2" | tee -a $S
  PYTHONPATH=${!2} timeout 60 python3 -m imagenet_trainer bench loader --data $T --loader cpu --epochs 6 --json > /tmp/$1.$2.json 2>/tmp/$1.$2.err
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(round(d['images_per_s']), 'img/s', [m['main_mb'] for m in d['memory']])" /tmp/$1.$2.json 2>&1 | tee -a $S
  tail -2 /tmp/$1.$2.err >> $S
}
ldr ld BASE; ldr ld NEW
for m in resnet18 alexnet; do
  LIM=80 b $m BASE --arch $m --loader hybrid --cpu-share 0.3 --steps 300 --warmup 30
  LIM=80 b $m NEW --arch $m --loader hybrid --cpu-share 0.3 --steps 300 --warmup 30
done
