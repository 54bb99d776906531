#!/usr/bin/env bash
# Session 5, call 4: #8, cutout + label smoothing 0.2 on the wide ResNet-9 at 70-80 epochs, two seeds, with bytecode, one GPU.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
cifar_data
cifar fill --arch resnet9 --epochs 1
cifar w_e80_c3_ls2_s0 --arch resnet9_wide --epochs 80 --cutout 0.3 --label-smoothing 0.2 --seed 0
cifar w_e80_c3_ls2_s1 --arch resnet9_wide --epochs 80 --cutout 0.3 --label-smoothing 0.2 --seed 1
cifar w_e70_c3_ls2_s0 --arch resnet9_wide --epochs 70 --cutout 0.3 --label-smoothing 0.2 --seed 0
cifar w_e70_c3_ls2_s1 --arch resnet9_wide --epochs 70 --cutout 0.3 --label-smoothing 0.2 --seed 1
