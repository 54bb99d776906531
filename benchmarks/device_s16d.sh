#!/usr/bin/env bash
# Session 16, call 4 (one H100). 1. The workers' early start (08a81b3) against the code before it (BASE = .base/src,
# 0cdfc1f), compiled resnet50 on one GPU, the first batch only, alternated, with start_phases.py's steps. Call 3 (2x H100)
# had NEW later than BASE in 3 of 3 pairs (pair 10.5 / 9.8 s against 9.6 / 9.1; one GPU 8.0 against 5.8), against the
# prediction (0.5-1 s earlier). If the workers' start slows the model's wrapping (the pin-memory thread, the GIL),
# start_phases shows _wrap longer under NEW. 2. Issue #8: the documented 93% command with new seeds 9-11, then
# ensemble_probe.py on their models: does session 15's flip+shift1+2 gain (+0.11, chosen after the fact) hold?
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
make_tree > /dev/null
cifar_data
BASE=$PWD/.base/src:/tmp/site NEW=$PYTHONPATH
P="python3 benchmarks/start_phases.py train --data /tmp/inet13k --arch resnet50 --epochs 1 --cache off --val-every 0 --backend compile --loader cpu --batch-size 256"
for r in 1 2 3; do
  for v in NEW BASE; do
    PYTHONPATH=${!v} timeout 16 $P --output /tmp/runs/f$v$r > /tmp/f$v$r.log 2>&1
    echo "== f$v$r $(grep -h 'first training batch' /tmp/f$v$r.log) | load $(cut -d' ' -f1 /proc/loadavg)" | tee -a $S
    grep -E "^\[start\]" /tmp/f$v$r.log | grep -E "_setup|create_model|_wrap|build_data|__iter__|first item|script" | cut -c17- | tee -a $S
    pkill -9 -f "start_phases|compile_worker"; sleep 1
  done
done
cifar fill --arch resnet9 --epochs 1
for seed in 9 10 11; do
  cifar w96_s$seed --arch resnet9_w96 --epochs 100 --cutout 0.3 --label-smoothing 0.2 --tta-shift 1 --seed $seed
done
timeout 100 python3 benchmarks/ensemble_probe.py /tmp/c/cifar10 /tmp/runs/w96_s*/model_best.pt 2>&1 \
  | grep -v Warning | tee -a $OUT/probe.txt | tail -16
echo; cat $S
