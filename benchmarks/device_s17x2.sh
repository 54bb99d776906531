#!/usr/bin/env bash
# Session 17, 2x H100: where the compiled pair's step time goes (benchmarks/step_events.py: CUDA events around the
# forward, backward, optimizer step and the rest, per rank; "behind" = steps whose start found the GPU idle), one GPU
# against the pair as shipped, and two changes tried through the script's switches, alternated with the shipped pair:
# DDP without the per-forward broadcast of rank 0's buffers (a second point per step where the ranks wait for each
# other), and torch's fused SGD. Predictions: the pair's backward is 2-3 ms longer than one GPU's (DDP), "behind"
# under 5% on one GPU; no broadcast +0.5-2%, fused SGD +0-1%.
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
val100
leftovers() {  # processes of earlier runs still alive (then killed), and the load average
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
CUDA_VISIBLE_DEVICES=0 LIMIT=95 run c1 256 $SE -- $TT/c1 $C --batch-size 256 > /dev/null; half c1 256; steps c1; leftovers
pair() {  # name, step_events switches...
  local name=$1; shift
  LIMIT=62 run $name 512 $SE "$@" -- $TT/$name $C --batch-size 512 --ngpu 2 > /dev/null; half $name 512; steps $name; leftovers
}
pair p1
pair n1 --no-broadcast-buffers
pair f1 --fused-sgd
pair p2
[ $(( $(date +%s) - t0 )) -lt 470 ] && pair n2 --no-broadcast-buffers
echo "elapsed $(( $(date +%s) - t0 )) s" | tee -a $S
echo; cat $S
