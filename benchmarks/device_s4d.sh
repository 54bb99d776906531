#!/usr/bin/env bash
# Session 4, call 4 (one H100): GPU tests; the device image's bytecode (does it ship .pyc?); ResNet-9 on
# CIFAR-10 JPEG at the session start (.base) and now, 20 and 22 epochs x 3 seeds; first batch from the
# 13k imagenet-like tree (issue #3), cold and with a bytecode cache.
set -u
source benchmarks/device_x2_lib.sh
export XDG_CACHE_HOME=/tmp/xdg
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $S
timeout 150 python3 -m pytest -q -x -m gpu -p no:cacheprovider tests 2>&1 | tail -2 | tee -a $S
TD=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')
echo "torch at $TD; __pycache__ files: $(ls $TD/__pycache__ 2>/dev/null | wc -l); writable: $([ -w $TD ] && echo yes || echo no); PYTHONDONTWRITEBYTECODE=${PYTHONDONTWRITEBYTECODE:-unset}" | tee -a $S
mkdir -p /tmp/c && tar xzf .devdata/cifar10-jpeg.tar.gz -C /tmp/c
cifar() {
  name=$1; pp=$2; shift 2; s=$(date +%s%N)
  PYTHONPATH=$pp:/tmp/site timeout 90 python3 -m imagenet_trainer train --data /tmp/c/cifar10 --output /tmp/runs/$name --print-freq 1000 \
    --arch resnet9 --val-every 0 --weight-decay 5e-4 --batch-size 512 "$@" > /tmp/$name.log 2>&1
  e=$(date +%s%N); echo "$name $*: wall $(( (e - s) / 1000000 )) ms | $(tail -1 /tmp/$name.log | cut -c1-60)" | tee -a $S
  grep -E "^time:|first training" /tmp/$name.log | tee -a $S; { echo "== $name"; cat /tmp/$name.log; } >> $OUT/logs.txt
}
cifar e1_nopyc $PWD/src --epochs 1
export PYTHONPYCACHEPREFIX=/tmp/pyc
cifar e1_pyc_cold $PWD/src --epochs 1
cifar e1_pyc_warm $PWD/src --epochs 1
cifar e16_old $PWD/.base/src --epochs 16
cifar e16_new $PWD/src --epochs 16
for seed in 0 1 2; do cifar e20_s$seed $PWD/src --epochs 20 --seed $seed; done
for seed in 0 1 2; do cifar e22_s$seed $PWD/src --epochs 22 --seed $seed; done
make_tree
T="python3 -m imagenet_trainer train --data /tmp/inet13k --arch resnet50 --epochs 1 --epoch-size 60 --cache off --val-every 0 --output /tmp/runs"
run r50_a 256 $T/a --batch-size 256
run r50_b 256 $T/b --batch-size 256
unset PYTHONPYCACHEPREFIX
run r50_nopyc 256 $T/c --batch-size 256
