#!/usr/bin/env bash
# Session 16, 2x H100 (two calls on one warm machine: `bash benchmarks/device_s16x2.sh 1`, then `... 2`).
# 1. The shipped affinity (CPU-loader workers of a multi-rank GPU run kept off the ranks' cores, 4d2bdab) against the
#    code before it (BASE = .base/src: `git archive 4d2bdab~1 src`), compiled resnet50 pair, alternated, one GPU as
#    the ratio's baseline. Prediction: +3-5% for the shipped code (the patched copy of session 15: +3.5-4.6%).
# 2. Where the first batch's time goes (benchmarks/start_phases.py: train's set-up steps timed in each rank), compiled
#    pair and one GPU, compile cache warm. Session 15: the pair 8.6-11.7 s, one GPU 8.0-8.8 s; ranks "ready" after
#    4.1-5.3 s. Prediction: the gap between "ready" and the first item is the 28 workers' start and first batch.
set -u
source benchmarks/device_x2_lib.sh
PART=${1:-1}
if [ $PART = 1 ]; then
  x2_resnet50
  lscpu | grep -E "Model name|^CPU\(s\)|Thread|Core|Socket|NUMA|L3" | tee -a $S
  val100
fi
BASE=$PWD/.base/src:/tmp/site
T="python3 -m imagenet_trainer train --data /tmp/inet13k --arch resnet50 --epochs 1 --cache off --val-every 0 --output /tmp/runs"
C="--backend compile --epoch-size 600 --val-dir /tmp/val100 --loader cpu"
if [ $PART = 1 ]; then
  LIMIT=120 run fill 512 $T/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null
  CUDA_VISIBLE_DEVICES=0 LIMIT=95 run c1 256 $T/c1 $C --batch-size 256 > /dev/null; half c1 256
  rounds=a
else
  rounds=b
fi
for r in $rounds; do
  LIMIT=62 run c2$r 512 $T/c2$r $C --batch-size 512 --ngpu 2 > /dev/null; half c2$r 512
  PYTHONPATH=$BASE LIMIT=62 run c2base$r 512 $T/c2base$r $C --batch-size 512 --ngpu 2 > /dev/null; half c2base$r 512
done
if [ $PART = 2 ]; then
  P="python3 benchmarks/start_phases.py train --data /tmp/inet13k --arch resnet50 --epochs 1 --cache off --val-every 0"
  for name in sp2a sp1 sp2b; do
    if [ $name = sp1 ]; then export CUDA_VISIBLE_DEVICES=0; G="--batch-size 256"; else unset CUDA_VISIBLE_DEVICES; G="--batch-size 512 --ngpu 2"; fi
    timeout 30 $P --output /tmp/runs/$name $C $G > /tmp/$name.log 2>&1
    echo "== $name" | tee -a $S; grep -E "^\[start\]|first training|ready after" /tmp/$name.log | tee -a $S
    { echo "== $name"; cat /tmp/$name.log; } >> $OUT/logs.txt
  done
  unset CUDA_VISIBLE_DEVICES
fi
echo; cat $S
