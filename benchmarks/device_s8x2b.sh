#!/usr/bin/env bash
# Session 8, second 2-GPU call: time to the first batch with --loader auto's probe, run alongside the model's
# (fresh) and from its cache (a later run of the same set-up), and the 1-GPU/2-GPU ratio once more
# (ResNet-50 eager from JPEG, session 4's commands).
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
CUDA_VISIBLE_DEVICES=0 run fill 256 $T/f --batch-size 256 --epoch-size 10 > /dev/null
CUDA_VISIBLE_DEVICES=0 run g1 256 $T/g1 --batch-size 256
run g2 512 $T/g2 --batch-size 512 --ngpu 2
run g2cached 512 $T/g2c --batch-size 512 --ngpu 2
CUDA_VISIBLE_DEVICES=0 run g1b 256 $T/g1b --batch-size 256
rm -rf /tmp/itcache/loader
CUDA_VISIBLE_DEVICES=0 run g1fresh 256 $T/g1f --batch-size 256
