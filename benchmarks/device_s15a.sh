#!/usr/bin/env bash
# Session 15, call A (one H100): issue #3's whole table again with the final code, on the issue's own 130k tree,
# the GPU-marked tests while the tree is written. alexnet --loader auto twice (probe, then its cached choice),
# 600 steps each; resnet18 auto 600 steps; compiled resnet50 auto (100 steps after 40, the table's command).
# Then a 2-epoch resnet18 train run on the 130k tree: the workers' carry-on into the next epoch, end to end.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
tree130k 240
NEW=$PWD/src:/tmp/site
LIM=100 b alexauto1 NEW --arch alexnet --steps 600 --warmup 30
LIM=100 b alexauto2 NEW --arch alexnet --steps 600 --warmup 30
LIM=100 b r18auto NEW --arch resnet18 --steps 600 --warmup 30
LIM=170 b r50auto NEW --arch resnet50 --backend compile --steps 100 --warmup 40
LIMIT=100 PF=50 run r18e2 256 python3 -m imagenet_trainer train --data $T --arch resnet18 --epochs 2 --val-every 0 \
  --batch-size 256 --output /tmp/runs/r18e2
tar czf $OUT/json_a.tgz -C /tmp $(cd /tmp && ls *.json) 2>/dev/null
cat $S
