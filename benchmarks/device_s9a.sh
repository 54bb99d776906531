#!/usr/bin/env bash
# Session 9, call 1 (one H100): the GPU-marked tests at the session's start (gpu_crop's sample helper
# folded); what cuDNN autotuning costs at start-up and buys in steady training (cudnn_tuning.py); and
# the first training batch on the 13k tree with the loader probe fresh and cached (resnet50 eager).
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
gpu_tests_beside_tree13k 240
timeout 260 python3 benchmarks/cudnn_tuning.py --arch resnet50 resnet18 alexnet --modes on off limit1 --repeat 2 | tee -a $S
T="python3 -m imagenet_trainer train --data /tmp/inet13k --arch resnet50 --epochs 1 --epoch-size 40 --cache off --val-every 0 --output /tmp/runs"
rm -rf /tmp/itcache/loader
LIMIT=90 run fresh 256 $T/fresh --batch-size 256
LIMIT=90 run cached 256 $T/cached --batch-size 256
