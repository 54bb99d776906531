#!/usr/bin/env bash
# Session 16, fifth call (2x H100). `train --ngpu 2 --backend compile` now imports Inductor in the launcher, before it
# forks the ranks (each rank imported it while wrapping its model: _wrap took 3.6-4.0 s per rank in call 2, where one
# GPU's took 1.0-1.3 s on its own machine in call 4). Prediction: the compiled pair's first batch comes 1-1.5 s
# sooner than with the code before (BASE = .base/src, 0cdfc1f; 9.1-10.5 s in call 3), and the ranks' _wrap falls to
# DDP's own start. Alternated after one warm-up run; each run is stopped at 18 s (the first batch only).
set -u
source benchmarks/device_x2_lib.sh
nvidia-smi -L | tee $S
unset PYTHONDONTWRITEBYTECODE; export PYTHONPYCACHEPREFIX=/tmp/pyc XDG_CACHE_HOME=/tmp/xdg
make_tree > /dev/null
BASE=$PWD/.base/src:/tmp/site NEW=$PYTHONPATH
P="python3 benchmarks/start_phases.py train --data /tmp/inet13k --arch resnet50 --epochs 1 --cache off --val-every 0 --backend compile --loader cpu --batch-size 512 --ngpu 2"
for name in warmBASE NEW1 BASE1 NEW2 BASE2 NEW3 BASE3; do
  v=${name%[0-9]}; v=${v#warm}
  PYTHONPATH=${!v} timeout 18 $P --output /tmp/runs/$name > /tmp/$name.log 2>&1
  echo "== $name ($v) $(grep -h 'first training batch' /tmp/$name.log) | load $(cut -d' ' -f1 /proc/loadavg)" | tee -a $S
  grep -E "^\[start\]" /tmp/$name.log | grep -E "script|_setup|_wrap|build_data|first item" | cut -c10- | tee -a $S
  { echo "== $name"; cat /tmp/$name.log; } >> $OUT/logs.txt
  pkill -9 -f "start_phases|compile_worker"; sleep 1
done
