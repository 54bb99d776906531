#!/usr/bin/env bash
# Session 3, issue #4, second 2-GPU call: ResNet-50 from JPEG (--cache off) on 1 and 2 GPUs with the
# lazily mapped batch slots (first-batch time), and fewer loader workers per rank on 2 GPUs (the ranks'
# main threads compete with 2 x 15 workers for 32 cores).
set -u
source benchmarks/device_x2_lib.sh
nvidia-smi -L | tee $S; nproc | tee -a $S
CUDA_VISIBLE_DEVICES=0 timeout 100 python3 -m pytest -q -x -m gpu -p no:cacheprovider tests 2>&1 | tail -2 | tee -a $S
make_tree
T="python3 -m imagenet_trainer train --data /tmp/inet13k --arch resnet50 --epochs 1 --epoch-size 150 --cache off --val-every 0 --output /tmp/runs"
CUDA_VISIBLE_DEVICES=0 run g1 256 $T/g1 --batch-size 256
run g2 512 $T/g2 --batch-size 512 --ngpu 2
run g2_w12 512 $T/g2_w12 --batch-size 512 --ngpu 2 --workers 12
