#!/usr/bin/env bash
# Session 5, call 3: #8's 93% in 120 s. Cutout (--cutout) on the wide ResNet-9, with bytecode, one GPU.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
cifar_data
cifar fill --arch resnet9 --epochs 1
cifar w_e60_c375 --arch resnet9_wide --epochs 60 --cutout 0.375
cifar w_e70_c25 --arch resnet9_wide --epochs 70 --cutout 0.25
cifar w_e60_c25_ls2 --arch resnet9_wide --epochs 60 --cutout 0.25 --label-smoothing 0.2
cifar r9_e60_c375 --arch resnet9 --epochs 60 --cutout 0.375
