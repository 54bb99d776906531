#!/usr/bin/env bash
# Session 5, call 4: #8, cutout + label smoothing 0.2 on the wide ResNet-9 at 70-80 epochs, two seeds, with bytecode, one GPU.
set -u
source benchmarks/device_x2_lib.sh
unset PYTHONDONTWRITEBYTECODE; export PYTHONPYCACHEPREFIX=/tmp/pyc XDG_CACHE_HOME=/tmp/xdg
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $S
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
cifar w_e70_c3_ls2_s0 --arch resnet9_wide --epochs 70 --cutout 0.3 --label-smoothing 0.2 --seed 0
cifar w_e70_c3_ls2_s1 --arch resnet9_wide --epochs 70 --cutout 0.3 --label-smoothing 0.2 --seed 1
