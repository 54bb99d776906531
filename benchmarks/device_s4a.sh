#!/usr/bin/env bash
# Session 4, call 1 (one GPU): where ResNet-9's CIFAR step goes. Step variants and a profile, at the
# session's start (.base/src) and now (no device read per batch in the padded-crop gather), then the
# 16-epoch recipe end to end with both.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONUNBUFFERED=1 IMAGENET_TRAINER_CACHE=/tmp/itcache XDG_CACHE_HOME=/tmp/xdg
S=$OUT/summary.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $S
mkdir -p /tmp/c && tar xzf .devdata/cifar10-jpeg.tar.gz -C /tmp/c
P() { PYTHONPATH=$1:/tmp/site timeout ${LIMIT:-200} python3 benchmarks/step_profile.py --data /tmp/c/cifar10 "${@:2}"; }
P $PWD/.base/src --variants epochs > $OUT/old_epochs.txt 2>&1; grep -E "img/s$" $OUT/old_epochs.txt | sed 's/^/old /' | tee -a $S
P $PWD/src --variants model model-fused epochs epochs-noema > $OUT/new_epochs.txt 2>&1; grep -E "img/s$" $OUT/new_epochs.txt | sed 's/^/new /' | tee -a $S
P $PWD/src --variants profile > $OUT/profile.txt 2>&1
LIMIT=300 P $PWD/src --variants compile compile:max-autotune-no-cudagraphs > $OUT/compile.txt 2>&1; grep -E "img/s$" $OUT/compile.txt | tee -a $S
cifar() {
  name=$1; pp=$2; shift 2; s=$(date +%s%N)
  PYTHONPATH=$pp:/tmp/site timeout 90 python3 -m imagenet_trainer train --data /tmp/c/cifar10 --output /tmp/runs/$name --print-freq 1000 \
    --arch resnet9 --val-every 0 --weight-decay 5e-4 --batch-size 512 "$@" > $OUT/$name.log 2>&1
  e=$(date +%s%N); echo "$name $*: wall $(( (e - s) / 1000000 )) ms | $(tail -1 $OUT/$name.log | cut -c1-60)" | tee -a $S
  grep -E "^time:" $OUT/$name.log | tee -a $S
}
cifar e16_old $PWD/.base/src --epochs 16
cifar e16_new $PWD/src --epochs 16
