#!/usr/bin/env bash
# Session 7, issue #4, second 2-GPU call: what holds 2 ranks at 1.83x. The crop kernel made GPU decoding
# cheap for the GPU (about 1.6 ms of kernels per 256 images), so 2 ranks may do better with a smaller CPU
# share than the controller reaches in 250 steps (it starts at 0.3), or with more workers per rank.
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
CUDA_VISIBLE_DEVICES=0 run fill 256 $T/f --batch-size 256 --epoch-size 10 > /dev/null
CUDA_VISIBLE_DEVICES=0 run g1 256 $T/g1 --batch-size 256
run g2s01 512 $T/g2s01 --batch-size 512 --ngpu 2 --cpu-share 0.1
run g2s02 512 $T/g2s02 --batch-size 512 --ngpu 2 --cpu-share 0.2
run g2w12 512 $T/g2w12 --batch-size 512 --ngpu 2 --workers 12
run g2 512 $T/g2 --batch-size 512 --ngpu 2
