#!/usr/bin/env bash
# Session 5, call 6 (one H100): #8's 93% in 120 s. ResNet-9 at width 96 (registered in a scratch copy, .alt/src)
# for 100 epochs with cutout + label smoothing 0.2, two seeds; the wide net at 80 epochs, a third seed; then
# translation TTA on the saved models (benchmarks/tta_probe.py). With bytecode.
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
export PYTHONPATH=$PWD/.alt/src:/tmp/site
cifar fill --arch resnet9 --epochs 1
cifar w96_e100_s0 --arch resnet9w96 --epochs 100 --cutout 0.3 --label-smoothing 0.2 --seed 0
cifar w96_e100_s1 --arch resnet9w96 --epochs 100 --cutout 0.3 --label-smoothing 0.2 --seed 1
cifar w128_e80_s2 --arch resnet9_wide --epochs 80 --cutout 0.3 --label-smoothing 0.2 --seed 2
timeout 100 python3 benchmarks/tta_probe.py /tmp/c/cifar10 /tmp/runs/w96_e100_s0/model_best.pt \
  /tmp/runs/w96_e100_s1/model_best.pt /tmp/runs/w128_e80_s2/model_best.pt 2>&1 | grep -v Warn | tee -a $S
