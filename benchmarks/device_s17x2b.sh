#!/usr/bin/env bash
# Session 17, 2x H100, call 2: the shipped code (20281ca: DDP without the per-forward buffer broadcast) against it
# with torch's fused SGD (step_events.py --fused-sgd), one GPU and the pair, alternated.
# Predictions: the shipped pair 10,150-10,300 img/s (1.84-1.86x); fused SGD +0.5-1% for one GPU and the pair.
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
val100
leftovers() {
  local n=$(pgrep -fc "imagenet_trainer|step_events|compile_worker" || true)
  [ "$n" != 0 ] && pkill -9 -f "imagenet_trainer|step_events|compile_worker"; sleep 1
  echo "   left over: $n processes | load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a $S
}
steps() { grep -h '^\[steps\]' /tmp/$1.log | cut -c1-600 | tee -a $S; }
TT="train --data /tmp/inet13k --arch resnet50 --epochs 1 --cache off --val-every 0 --output /tmp/runs"
C="--backend compile --epoch-size 600 --val-dir /tmp/val100 --loader cpu"
SE="python3 benchmarks/step_events.py --from 0.5 --to 0.9"
t0=$(date +%s)
LIMIT=120 run fill 512 python3 -m imagenet_trainer $TT/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null; leftovers
one() { local name=$1 lim=$2; shift 2
  CUDA_VISIBLE_DEVICES=0 LIMIT=$lim run $name 256 $SE "$@" -- $TT/$name $C --batch-size 256 > /dev/null; half $name 256; steps $name; leftovers; }
pair() { local name=$1; shift
  LIMIT=62 run $name 512 $SE "$@" -- $TT/$name $C --batch-size 512 --ngpu 2 > /dev/null; half $name 512; steps $name; leftovers; }
one c1 95
one c1f 60 --fused-sgd
pair s1
pair f1 --fused-sgd
pair s2
[ $(( $(date +%s) - t0 )) -lt 480 ] && pair f2 --fused-sgd
echo "elapsed $(( $(date +%s) - t0 )) s" | tee -a $S
echo; cat $S
