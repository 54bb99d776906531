#!/usr/bin/env bash
# Planned next 2-GPU call (written in session 15; its first part, the shipped affinity against the code before it,
# ran in session 16 as device_s16x2.sh: +1.5% in a clean round, -3.4% on a slowed machine). Left, on 2x H100:
# 1. the compiled pair with the affinity at crop scale 0.08 (1 GPU at 0.08 too): do the affinity's and the lighter
#    crops' gains add up (session 15: +10% for the crops where the workers kept every core)?
# 2. the eager pair with and without the affinity (`--loader cpu`, so that both runs use the CPU loader; BASE =
#    .base/src: `git archive 4d2bdab~1 src | tar x -C .base`): it must not lose (1.91x in sessions 8-9).
# Prediction: 1. 1.85-1.9x; 2. within 1%. Check for processes left behind before each run (session 16's
# device_s16x2c.sh: `leftovers`). One call: `bash benchmarks/device_next_x2.sh`.
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
val100
NEW=$PYTHONPATH BASE=$PWD/.base/src:/tmp/site
T="python3 -m imagenet_trainer train --data /tmp/inet13k --arch resnet50 --epochs 1 --cache off --val-every 0 --output /tmp/runs"
C="--backend compile --epoch-size 600 --val-dir /tmp/val100 --loader cpu"
[ -d /tmp/runs/fill ] || LIMIT=120 run fill 512 $T/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null
CUDA_VISIBLE_DEVICES=0 LIMIT=95 run c1s 256 $T/c1s $C --rrc-min-scale 0.08 --batch-size 256 > /dev/null; half c1s 256
LIMIT=62 run c2s 512 $T/c2s $C --rrc-min-scale 0.08 --batch-size 512 --ngpu 2 > /dev/null; half c2s 512
E="--epoch-size 250 --val-dir /tmp/val100 --loader cpu"
LIMIT=60 run e2 512 $T/e2 $E --batch-size 512 --ngpu 2 > /dev/null; half e2 512
PYTHONPATH=$BASE LIMIT=60 run e2base 512 $T/e2base $E --batch-size 512 --ngpu 2 > /dev/null
python3 benchmarks/steady_rate.py /tmp/e2base.log --batch 512 --from 0.5 --first 0 | tee -a $S  # BASE: older lines
echo; cat $S
