#!/usr/bin/env bash
# Session 5, call 5 (one H100): (a) loader workers at a lower priority (WORKER_NICE) against the session's
# starting code (.base/src), bench train A/B, alternating; (b) #8's 93% command, two seeds, with bytecode.
set -u
source benchmarks/device_x2_lib.sh
unset PYTHONDONTWRITEBYTECODE; export PYTHONPYCACHEPREFIX=/tmp/pyc XDG_CACHE_HOME=/tmp/xdg
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $S
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
mkdir -p /tmp/c && tar xzf .devdata/cifar10-jpeg.tar.gz -C /tmp/c
cifar() {
  name=$1; shift; s=$(date +%s%N)
  timeout 150 python3 -m imagenet_trainer train --data /tmp/c/cifar10 --output /tmp/runs/$name --print-freq 1000 \
    --val-every 0 --weight-decay 5e-4 --batch-size 512 "$@" > /tmp/$name.log 2>&1
  e=$(date +%s%N); echo "$name $*: wall $(( (e - s) / 1000000 )) ms | $(tail -1 /tmp/$name.log | cut -c1-70)" | tee -a $S
  grep -E "^time:" /tmp/$name.log | tee -a $S; { echo "== $name"; cat /tmp/$name.log; } >> $OUT/logs.txt
}
cifar fill --arch resnet9 --epochs 1
cifar w_e80_c3_ls2_s0 --arch resnet9_wide --epochs 80 --cutout 0.3 --label-smoothing 0.2 --seed 0
cifar w_e80_c3_ls2_s1 --arch resnet9_wide --epochs 80 --cutout 0.3 --label-smoothing 0.2 --seed 1
