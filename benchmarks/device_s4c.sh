#!/usr/bin/env bash
# Session 4, call 3 (one GPU): does a thread's torch._dynamo import overlap CUDA start-up; ResNet-9 step
# variants (channels_last vs NCHW); a cProfile of a 1-epoch CIFAR run; ResNet-9 (pool before BN) at 20/22/24 epochs.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONUNBUFFERED=1 IMAGENET_TRAINER_CACHE=/tmp/itcache XDG_CACHE_HOME=/tmp/xdg PYTHONPATH=$PWD/src:/tmp/site
S=$OUT/summary.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $S
mkdir -p /tmp/c && tar xzf .devdata/cifar10-jpeg.tar.gz -C /tmp/c
for m in cuda dynamo both cuda dynamo both; do python3 benchmarks/startup_probe.py $m | tee -a $S; done
timeout 200 python3 benchmarks/step_profile.py --data /tmp/c/cifar10 --variants epochs epochs-nchw model > $OUT/steps.txt 2>&1; grep -E "img/s$" $OUT/steps.txt | tee -a $S
python3 -m cProfile -o /tmp/prof.out -m imagenet_trainer train --data /tmp/c/cifar10 --output /tmp/runs/prof --arch resnet9 --epochs 1 --batch-size 512 > /tmp/prof_run.log 2>&1
python3 - > $OUT/prof.txt <<'PY'
import pstats
p = pstats.Stats("/tmp/prof.out"); p.sort_stats("cumulative").print_stats(70); p.sort_stats("tottime").print_stats(30)
PY
cifar() {
  name=$1; shift; s=$(date +%s%N)
  timeout 90 python3 -m imagenet_trainer train --data /tmp/c/cifar10 --output /tmp/runs/$name --print-freq 1000 \
    --arch resnet9 --val-every 0 --weight-decay 5e-4 --batch-size 512 "$@" > /tmp/$name.log 2>&1
  e=$(date +%s%N); echo "$name $*: wall $(( (e - s) / 1000000 )) ms | $(tail -1 /tmp/$name.log | cut -c1-60)" | tee -a $S
  grep -E "^time:" /tmp/$name.log | tee -a $S; cat /tmp/$name.log >> $OUT/runs.log
}
cifar e20 --epochs 20
cifar e22 --epochs 22
cifar e24 --epochs 24
cifar e20s1 --epochs 20 --seed 1
cifar e22s1 --epochs 22 --seed 1
cifar e24s1 --epochs 24 --seed 1
