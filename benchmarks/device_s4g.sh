#!/usr/bin/env bash
# Session 4, call 9 (one H100): is 93% within 120 s reachable with a wider ResNet-9? Widths 96 and 128
# (.alt/src registers them as resnet9w96 / resnet9w128, an experiment), same recipe, bytecode cached.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONUNBUFFERED=1 IMAGENET_TRAINER_CACHE=/tmp/itcache XDG_CACHE_HOME=/tmp/xdg PYTHONPATH=$PWD/.alt/src:/tmp/site
unset PYTHONDONTWRITEBYTECODE; export PYTHONPYCACHEPREFIX=/tmp/pyc
S=$OUT/summary.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $S
mkdir -p /tmp/c && tar xzf .devdata/cifar10-jpeg.tar.gz -C /tmp/c
cifar() {
  name=$1; shift; s=$(date +%s%N)
  timeout 170 python3 -m imagenet_trainer train --data /tmp/c/cifar10 --output /tmp/runs/$name --print-freq 1000 \
    --val-every 0 --weight-decay 5e-4 --batch-size 512 "$@" > /tmp/$name.log 2>&1
  e=$(date +%s%N); echo "$name $*: wall $(( (e - s) / 1000000 )) ms | $(tail -1 /tmp/$name.log | cut -c1-60)" | tee -a $S
  grep -E "^time:|^epoch 1/" /tmp/$name.log | tee -a $S; { echo "== $name"; cat /tmp/$name.log; } >> $OUT/logs.txt
}
cifar fill --arch resnet9 --epochs 1
cifar w128_e80 --arch resnet9w128 --epochs 80
cifar w96_e110 --arch resnet9w96 --epochs 110
