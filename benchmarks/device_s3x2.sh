#!/usr/bin/env bash
# Session 3, issue #4 on a 2-GPU machine: ResNet-50 end to end from JPEG (--cache off) on 1 and 2 GPUs,
# the session's starting code (carried as .base/src) against the current tree, in one call: the 2-GPU
# ratio and the first-batch time (forked ranks instead of torchrun's fresh interpreters).
set -u
source benchmarks/device_x2_lib.sh
nvidia-smi -L | tee $S; nproc | tee -a $S
CUDA_VISIBLE_DEVICES=0 timeout 120 python3 -m pytest -q -m gpu -p no:cacheprovider tests 2>&1 | tail -2 | tee -a $S
make_tree
OLD="env PYTHONPATH=$PWD/.base/src:/tmp/site"
T="python3 -m imagenet_trainer train --data /tmp/inet13k --arch resnet50 --epochs 1 --epoch-size 150 --cache off --val-every 0 --output /tmp/runs"
CUDA_VISIBLE_DEVICES=0 run old_1gpu 256 $OLD $T/old_1gpu --batch-size 256
run old_2gpu 512 $OLD $T/old_2gpu --batch-size 512 --ngpu 2
CUDA_VISIBLE_DEVICES=0 run new_1gpu 256 $T/new_1gpu --batch-size 256
run new_2gpu 512 $T/new_2gpu --batch-size 512 --ngpu 2
run new_2gpu_b 512 $T/new_2gpu_b --batch-size 512 --ngpu 2
