#!/usr/bin/env bash
# Session 10, 2-GPU call B (warm from device_s10x2.sh, compile cache filled): the compiled pair with 14 workers
# per rank and the hybrid loader at a fixed CPU share of 0.85, then the CPU loader with 15 workers per rank.
set -u
source benchmarks/device_x2_lib.sh > /dev/null
unset PYTHONDONTWRITEBYTECODE; export PYTHONPYCACHEPREFIX=/tmp/pyc XDG_CACHE_HOME=/tmp/xdg
T="python3 -m imagenet_trainer train --data /tmp/inet13k --arch resnet50 --epochs 1 --cache off --val-every 0 --backend compile --epoch-size 600 --batch-size 512 --ngpu 2"
half() { python3 benchmarks/steady_rate.py /tmp/$1.log --batch 512 --from 0.5 | tee -a $S; }
LIMIT=100 run c2s085w14 512 $T --output /tmp/runs/a --loader hybrid --cpu-share 0.85 --workers 14; half c2s085w14
LIMIT=100 run c2cpu15 512 $T --output /tmp/runs/b --loader cpu --workers 15; half c2cpu15
