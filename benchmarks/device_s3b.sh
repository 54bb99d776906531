#!/usr/bin/env bash
# Session 3, one H100, issue #8: ResNet-9 on CIFAR-10 JPEG, random-resized crops against padded crops
# (--train-crop auto picks pad for small images), end to end, wall clock around each command.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONUNBUFFERED=1 XDG_CACHE_HOME=/tmp/xdg
S=$OUT/summary.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $S
NEW=$PWD/src:/tmp/site
mkdir -p /tmp/c && tar xzf .devdata/cifar10-jpeg.tar.gz -C /tmp/c
cifar() {
  name=$1; shift; s=$(date +%s%N)
  PYTHONPATH=$NEW timeout 100 python3 -m imagenet_trainer train --data /tmp/c/cifar10 --output /tmp/runs/$name --print-freq 1000 \
    --arch resnet9 --val-every 0 --weight-decay 5e-4 "$@" > /tmp/$name.log 2>&1
  e=$(date +%s%N); echo "$name $*: wall $(( (e - s) / 1000000 )) ms | $(tail -1 /tmp/$name.log | cut -c1-60)" | tee -a $S
  grep -E "^time:|small images" /tmp/$name.log | tee -a $S
}
cifar c_rrc --epochs 12 --batch-size 512 --train-crop rrc
cifar c_pad --epochs 12 --batch-size 512
cifar c_pad256 --epochs 12 --batch-size 256
cifar c_pad16 --epochs 16 --batch-size 512
cifar c_pad40 --epochs 40 --batch-size 512
