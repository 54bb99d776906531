#!/usr/bin/env bash
# Session 5, call 5 (one H100): (a) loader workers at a lower priority (WORKER_NICE) against the session's
# starting code (.base/src), bench train A/B, alternating; (b) #8's 93% command, two seeds, with bytecode.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
make_tree
NEW=$PWD/src:/tmp/site; BASE=$PWD/.base/src:/tmp/site
ab() {  # label, bench args...
  local label=$1; shift
  for v in BASE NEW; do
    echo "-- $label $v" | tee -a $S
    PYTHONPATH=${!v} timeout 150 python3 -m imagenet_trainer bench train --data /tmp/inet13k "$@" 2>&1 | tail -1 | tee -a $S
  done
}
ab r18_hybrid --arch resnet18 --loader hybrid --steps 80 --warmup 20
ab alexnet_hybrid --arch alexnet --loader hybrid --steps 80 --warmup 20
ab r18_cpu --arch resnet18 --loader cpu --steps 80 --warmup 20
cifar_data
cifar fill --arch resnet9 --epochs 1
cifar w_e80_c3_ls2_s0 --arch resnet9_wide --epochs 80 --cutout 0.3 --label-smoothing 0.2 --seed 0
cifar w_e80_c3_ls2_s1 --arch resnet9_wide --epochs 80 --cutout 0.3 --label-smoothing 0.2 --seed 1
