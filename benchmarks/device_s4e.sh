#!/usr/bin/env bash
# Session 4, call 5 (one H100): ResNet-9 on CIFAR-10 JPEG with --save-interval's default (files after the
# last epoch only), 18/20/22 epochs x 3 seeds, as the device image runs Python (PYTHONDONTWRITEBYTECODE=1,
# no .pyc anywhere: every import compiles its source) and as an installed package does (bytecode cached
# by one earlier run); ImageNet-like first batch both ways.
set -u
source benchmarks/device_x2_lib.sh
export XDG_CACHE_HOME=/tmp/xdg
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $S
mkdir -p /tmp/c && tar xzf .devdata/cifar10-jpeg.tar.gz -C /tmp/c
cifar() {
  name=$1; shift; s=$(date +%s%N)
  timeout 90 python3 -m imagenet_trainer train --data /tmp/c/cifar10 --output /tmp/runs/$name --print-freq 1000 \
    --arch resnet9 --val-every 0 --weight-decay 5e-4 --batch-size 512 "$@" > /tmp/$name.log 2>&1
  e=$(date +%s%N); echo "$name $*: wall $(( (e - s) / 1000000 )) ms | $(tail -1 /tmp/$name.log | cut -c1-60)" | tee -a $S
  grep -E "^time:|first training" /tmp/$name.log | tee -a $S; { echo "== $name"; cat /tmp/$name.log; } >> $OUT/logs.txt
}
cifar warm --epochs 1
for seed in 0 1 2; do cifar e20_s$seed --epochs 20 --seed $seed; done
echo "--- with bytecode (PYTHONDONTWRITEBYTECODE unset, PYTHONPYCACHEPREFIX=/tmp/pyc)" | tee -a $S
unset PYTHONDONTWRITEBYTECODE; export PYTHONPYCACHEPREFIX=/tmp/pyc
cifar pyc_fill --epochs 1
for seed in 0 1 2; do cifar pyc_e18_s$seed --epochs 18 --seed $seed; done
for seed in 0 1 2; do cifar pyc_e20_s$seed --epochs 20 --seed $seed; done
for seed in 0 1 2; do cifar pyc_e22_s$seed --epochs 22 --seed $seed; done
make_tree
T="python3 -m imagenet_trainer train --data /tmp/inet13k --arch resnet50 --epochs 1 --epoch-size 40 --cache off --val-every 0 --output /tmp/runs"
run r50_pyc_a 256 $T/a --batch-size 256
run r50_pyc_b 256 $T/b --batch-size 256
