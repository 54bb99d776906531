#!/usr/bin/env bash
# Session 6, call 6 (one H100, warm from calls 4-5): the fast recipe on resnet50 compiled from the 130k tree with
# the new split controller (compare call 4's bench train, 4,917 img/s), then #8's 110-epoch command, seed 4.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
[ -d /tmp/inet130k ] || { echo "no 130k tree: machine was not warm" | tee -a $S; exit 0; }
LIMIT=170 run r50_fast130k 256 python3 -m imagenet_trainer train --data /tmp/inet130k --arch resnet50 --backend compile \
  --epochs 1 --epoch-size 200 --cache off --val-every 0 --output /tmp/runs/r50_fast130k
cifar_data
cifar w96_e110_s4 --arch resnet9_w96 --epochs 110 --cutout 0.3 --label-smoothing 0.2 --tta-shift 1 --seed 4
