#!/usr/bin/env bash
# Session 9, 2-GPU call C: the GPU-marked tests (while the 13k tree is written), then resnet50 compiled
# from JPEG with the probe fixed (workers timed after the compile), compile cache and probe cold: 1 GPU,
# 2 GPUs, 2 GPUs with 13 workers per rank, and 1 GPU again (probe cached, compile cache warm).
set -u
source benchmarks/device_x2_lib.sh
nvidia-smi -L | tee $S
unset PYTHONDONTWRITEBYTECODE; export PYTHONPYCACHEPREFIX=/tmp/pyc XDG_CACHE_HOME=/tmp/xdg
gpu_tests_beside_tree13k 150
T="python3 -m imagenet_trainer train --data /tmp/inet13k --arch resnet50 --epochs 1 --epoch-size 200 --cache off --val-every 0 --backend compile --output /tmp/runs"
LIMIT=140 CUDA_VISIBLE_DEVICES=0 run c1 256 $T/c1 --batch-size 256
LIMIT=140 run c2 512 $T/c2 --batch-size 512 --ngpu 2
LIMIT=120 run c2w13 512 $T/c2w13 --batch-size 512 --ngpu 2 --workers 13
LIMIT=100 CUDA_VISIBLE_DEVICES=0 run c1b 256 $T/c1b --batch-size 256
