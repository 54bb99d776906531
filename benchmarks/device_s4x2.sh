#!/usr/bin/env bash
# Session 4, issue #4 (2 GPUs): ResNet-50 from JPEG (--cache off) on 1 and 2 GPUs, first batch and steady
# images/s, with Python's bytecode cached as an installed package has it (the image sets
# PYTHONDONTWRITEBYTECODE=1 and ships no .pyc: every process compiles torch's sources, ~4 s).
set -u
source benchmarks/device_x2_lib.sh
nvidia-smi -L | tee $S; nproc | tee -a $S
unset PYTHONDONTWRITEBYTECODE; export PYTHONPYCACHEPREFIX=/tmp/pyc
timeout 150 python3 -m pytest -q -x -m gpu -p no:cacheprovider tests 2>&1 | tail -2 | tee -a $S
make_tree
T="python3 -m imagenet_trainer train --data /tmp/inet13k --arch resnet50 --epochs 1 --epoch-size 150 --cache off --val-every 0 --output /tmp/runs"
CUDA_VISIBLE_DEVICES=0 run g1_fill 256 $T/g0 --batch-size 256 --epoch-size 10
run g2_fill 512 $T/g00 --batch-size 512 --ngpu 2 --epoch-size 10
CUDA_VISIBLE_DEVICES=0 run g1 256 $T/g1 --batch-size 256
run g2 512 $T/g2 --batch-size 512 --ngpu 2
CUDA_VISIBLE_DEVICES=0 run g1b 256 $T/g1b --batch-size 256
run g2b 512 $T/g2b --batch-size 512 --ngpu 2
