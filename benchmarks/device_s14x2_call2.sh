#!/usr/bin/env bash
# Session 14, second 2-GPU call, on call 1's machine while it was warm (tree, val100 and compile caches there):
# the pair with CUDA's 8 hardware queues against train's 32, alternated, twice. Run as one command line.
set -u
source benchmarks/device_x2_lib.sh; unset PYTHONDONTWRITEBYTECODE; export PYTHONPYCACHEPREFIX=/tmp/pyc XDG_CACHE_HOME=/tmp/xdg
echo > $S
T="python3 -m imagenet_trainer train --data /tmp/inet13k --arch resnet50 --epochs 1 --cache off --val-every 0 --output /tmp/runs"
C="--backend compile --epoch-size 600 --val-dir /tmp/val100 --loader cpu"
for r in b c; do
  CUDA_DEVICE_MAX_CONNECTIONS=8 LIMIT=72 run c2q8$r 512 $T/c2q8$r $C --batch-size 512 --ngpu 2 > /dev/null; half c2q8$r 512
  LIMIT=72 run c2$r 512 $T/c2$r $C --batch-size 512 --ngpu 2 > /dev/null; half c2$r 512
done
cat $S
