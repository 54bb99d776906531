#!/usr/bin/env bash
# Session 4, call 2 (one GPU): ResNet-9 on CIFAR-10 JPEG. The session-start code (.base), now (foreach EMA,
# charts at most every 30 s), and now with ResNet-9 pooling before BN (.alt), end to end, 16 and 20 epochs;
# then where the start-up goes (cProfile and -X importtime of a 1-epoch run).
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONUNBUFFERED=1 IMAGENET_TRAINER_CACHE=/tmp/itcache XDG_CACHE_HOME=/tmp/xdg
S=$OUT/summary.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $S
mkdir -p /tmp/c && tar xzf .devdata/cifar10-jpeg.tar.gz -C /tmp/c
PYTHONPATH=$PWD/src:/tmp/site timeout 200 python3 benchmarks/step_profile.py --data /tmp/c/cifar10 --variants epochs epochs-noema > $OUT/new_epochs.txt 2>&1; grep -E "img/s$" $OUT/new_epochs.txt | tee -a $S
cifar() {
  name=$1; pp=$2; shift 2; s=$(date +%s%N)
  PYTHONPATH=$pp:/tmp/site timeout 90 python3 -m imagenet_trainer train --data /tmp/c/cifar10 --output /tmp/runs/$name --print-freq 1000 \
    --arch resnet9 --val-every 0 --weight-decay 5e-4 --batch-size 512 "$@" > $OUT/$name.log 2>&1
  e=$(date +%s%N); echo "$name $*: wall $(( (e - s) / 1000000 )) ms | $(tail -1 $OUT/$name.log | cut -c1-60)" | tee -a $S
  grep -E "^time:" $OUT/$name.log | tee -a $S
}
cifar e16_old $PWD/.base/src --epochs 16
cifar e16_new $PWD/src --epochs 16
cifar e16_alt $PWD/.alt/src --epochs 16
cifar e20_new $PWD/src --epochs 20
cifar e20_alt $PWD/.alt/src --epochs 20
cifar e16_new2 $PWD/src --epochs 16
cifar e16_alt2 $PWD/.alt/src --epochs 16 --seed 1
export PYTHONPATH=$PWD/src:/tmp/site
python3 -m cProfile -o /tmp/prof.out -m imagenet_trainer train --data /tmp/c/cifar10 --output /tmp/runs/prof --arch resnet9 --epochs 1 --batch-size 512 > $OUT/prof_run.log 2>&1
python3 - > $OUT/prof.txt <<'PY'
import pstats
p = pstats.Stats("/tmp/prof.out"); p.sort_stats("cumulative").print_stats(60); p.sort_stats("tottime").print_stats(30)
PY
python3 -X importtime -m imagenet_trainer train --data /tmp/c/cifar10 --output /tmp/runs/imp --arch resnet9 --epochs 1 --batch-size 512 2> $OUT/importtime.txt > /dev/null
sort -t'|' -k2 -n $OUT/importtime.txt | tail -40 > $OUT/importtime_top.txt
