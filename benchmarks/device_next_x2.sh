#!/usr/bin/env bash
# Planned next 2-GPU call (written in session 15, not run yet). Session 15 shipped the CPU loader's workers kept off
# the ranks' cores on multi-rank GPU runs (measured only as a patched copy: +3.5-4.6% for the compiled pair), and found
# lighter crops (scale 0.08) worth +10% to a pair whose workers kept every core. Here, on 2x H100:
# 1. the shipped affinity against the code before it (BASE = .base/src: `git archive 4d2bdab~1 src | tar x -C .base`),
#    compiled pair, alternated: the shipped form must match the patched copy's gain;
# 2. the compiled pair with the affinity at crop scale 0.08 (1 GPU at 0.08 too): do the two gains add up?
# 3. the eager pair with and without the affinity (`--loader cpu`, so that both runs use the CPU loader): it must
#    not lose (1.91x in sessions 8-9).
# Prediction: 1. +3-5%; 2. 1.85-1.9x; 3. within 1%.
# Two calls on the same warm machine (each under 600 s): `bash benchmarks/device_next_x2.sh 1`, then `... 2`.
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
val100
NEW=$PYTHONPATH BASE=$PWD/.base/src:/tmp/site
T="python3 -m imagenet_trainer train --data /tmp/inet13k --arch resnet50 --epochs 1 --cache off --val-every 0 --output /tmp/runs"
C="--backend compile --epoch-size 600 --val-dir /tmp/val100 --loader cpu"
PART=${1:-1}
[ -d /tmp/runs/fill ] || LIMIT=120 run fill 512 $T/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null
if [ $PART = 1 ]; then
CUDA_VISIBLE_DEVICES=0 LIMIT=95 run c1 256 $T/c1 $C --batch-size 256 > /dev/null; half c1 256
for r in a b; do
  LIMIT=62 run c2$r 512 $T/c2$r $C --batch-size 512 --ngpu 2 > /dev/null; half c2$r 512
  PYTHONPATH=$BASE LIMIT=62 run c2base$r 512 $T/c2base$r $C --batch-size 512 --ngpu 2 > /dev/null; half c2base$r 512
done
else
CUDA_VISIBLE_DEVICES=0 LIMIT=95 run c1s 256 $T/c1s $C --rrc-min-scale 0.08 --batch-size 256 > /dev/null; half c1s 256
LIMIT=62 run c2s 512 $T/c2s $C --rrc-min-scale 0.08 --batch-size 512 --ngpu 2 > /dev/null; half c2s 512
E="--epoch-size 250 --val-dir /tmp/val100 --loader cpu"
LIMIT=60 run e2 512 $T/e2 $E --batch-size 512 --ngpu 2 > /dev/null; half e2 512
PYTHONPATH=$BASE LIMIT=60 run e2base 512 $T/e2base $E --batch-size 512 --ngpu 2 > /dev/null; half e2base 512
fi
echo; cat $S
