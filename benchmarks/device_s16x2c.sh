#!/usr/bin/env bash
# Session 16, third 2-GPU call (a fresh machine). The loader's workers now start before the model is wrapped (08a81b3):
# start_phases.py (call 2) found the compile's set-up and DDP's start at 3-4 s of the start, and the workers' fork
# and first batch at 1.3-1.9 s after them, on a machine that ran everything 2x slower than call 1.
# Prediction: the compiled pair's first batch comes 0.5-1 s earlier than with the code before (BASE = .base/src,
# `git archive 0cdfc1f src`), from about 9.5 s to 8.5-9 s; one GPU's likewise (6.9 s in call 1). The steady rate
# does not move (pair about 9,800 img/s in call 1). Also the GPU-marked tests on this code, and each run's load
# beforehand (a killed run's processes left behind would slow the next: call 2's runs all took twice as long).
set -u
source benchmarks/device_x2_lib.sh
nvidia-smi -L | tee $S
unset PYTHONDONTWRITEBYTECODE; export PYTHONPYCACHEPREFIX=/tmp/pyc XDG_CACHE_HOME=/tmp/xdg
gpu_tests_beside_tree13k 200
val100
leftovers() {  # processes of earlier runs still alive (then killed), and the load average
  local n=$(pgrep -fc "imagenet_trainer|start_phases|compile_worker" || true)
  [ "$n" != 0 ] && pkill -9 -f "imagenet_trainer|start_phases|compile_worker"; sleep 1
  echo "   left over: $n processes | load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a $S
}
BASE=$PWD/.base/src:/tmp/site
T="python3 -m imagenet_trainer train --data /tmp/inet13k --arch resnet50 --epochs 1 --cache off --val-every 0 --output /tmp/runs"
C="--backend compile --epoch-size 600 --val-dir /tmp/val100 --loader cpu"
LIMIT=120 run fill 512 $T/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null; leftovers
CUDA_VISIBLE_DEVICES=0 LIMIT=95 run c1 256 $T/c1 $C --batch-size 256 > /dev/null; half c1 256; leftovers
LIMIT=62 run c2 512 $T/c2 $C --batch-size 512 --ngpu 2 > /dev/null; half c2 512; leftovers
first() {  # name, code variable, options...: the first batch's time only (the run is stopped at 25 s)
  local name=$1 v=$2; shift 2
  PYTHONPATH=${!v} timeout 25 $T/$name $C "$@" > /tmp/$name.log 2>&1
  echo "$name ($v): $(grep -h 'first training batch' /tmp/$name.log)" | tee -a $S; leftovers
  { echo "== $name"; cat /tmp/$name.log; } >> $OUT/logs.txt
}
NEW=$PYTHONPATH
for r in 1 2; do
  first f2new$r NEW --batch-size 512 --ngpu 2
  first f2base$r BASE --batch-size 512 --ngpu 2
done
export CUDA_VISIBLE_DEVICES=0
first f1new NEW --batch-size 256
first f1base BASE --batch-size 256
echo; cat $S
