#!/usr/bin/env bash
# Session 7, issue #4 on 2 GPUs with the crop kernel (data/gpu_crop.py): ResNet-50 from JPEG every epoch,
# 1 GPU against 2 in one call, alternating, session 4's commands (eager, 250 steps, steady over 75-250),
# then the same pair compiled (a first short run fills the compile cache).
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
x2_pairs
