#!/usr/bin/env bash
# Planned next one-GPU call (written in session 18), on nvidia-h100-x1, carry [.whl, .devdata]:
# 1. issue #8: the 91% command (resnet9, 22 epochs) under the EMA rule of session 17, seeds 0-2, with bytecode as an
#    installed package runs (prediction: the EMA's top-1 at 91.0% or more in 3 of 3, 19-25 s each);
# 2. issue #3: alexnet `bench train --loader auto` three times on the issue's 130k tree (the GPU-marked tests run
#    while it is written), to count how often 15,000 img/s is reached on one more machine.
set -u
source benchmarks/device_x2_lib.sh  # install and helpers (not only for two GPUs)
with_bytecode
cifar_data
cifar warm --arch resnet9 --epochs 2 > /dev/null  # bytecode and the first compile out of the timed runs
for s in 0 1 2; do cifar r9e22_s$s --arch resnet9 --epochs 22 --seed $s; done
tree130k 240
NEW=$PWD/src:/tmp/site
for r in 1 2 3; do LIM=100 b alexauto$r NEW --arch alexnet --steps 600 --warmup 30; done
echo; cat $S
