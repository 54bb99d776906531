#!/usr/bin/env bash
# Session 3, last H100 call: the issue #3 ResNet-50 row with the current loader (compiled, hybrid and
# cpu loaders, ceiling measured in the same run), and ResNet-9 on CIFAR-10 JPEG at 16 and 17 epochs
# (padded crops, flip TTA) for the 30 s budget of issue #8.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONUNBUFFERED=1 IMAGENET_TRAINER_CACHE=/tmp/itcache XDG_CACHE_HOME=/tmp/xdg PYTHONPATH=$PWD/src:/tmp/site
S=$OUT/summary.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $S
mkdir -p /tmp/c && tar xzf .devdata/cifar10-jpeg.tar.gz -C /tmp/c
cifar() {
  name=$1; shift; s=$(date +%s%N)
  timeout 60 python3 -m imagenet_trainer train --data /tmp/c/cifar10 --output /tmp/runs/$name --print-freq 1000 \
    --arch resnet9 --val-every 0 --weight-decay 5e-4 --batch-size 512 "$@" > /tmp/$name.log 2>&1
  e=$(date +%s%N); echo "$name $*: wall $(( (e - s) / 1000000 )) ms | $(tail -1 /tmp/$name.log | cut -c1-60)" | tee -a $S
  grep -E "^time:" /tmp/$name.log | tee -a $S
}
cifar warm --epochs 1
cifar e16 --epochs 16
cifar e17 --epochs 17
python3 -m imagenet_trainer sample-data /tmp/inet13k --kind imagenet-like --classes 100 --per-class 130 --val-per-class 10 > /dev/null 2>&1
run() { name=$1; shift; timeout 200 python3 -m imagenet_trainer bench "$@" --json > $OUT/$name.json 2> /tmp/$name.err || tail -3 /tmp/$name.err; python3 benchmarks/summarize.py $OUT/$name.json | sed "s/^/$name /" | tee -a $S; }
run r50c_hybrid train --data /tmp/inet13k --arch resnet50 --backend compile --loader hybrid --steps 80 --warmup 40
