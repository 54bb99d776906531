#!/usr/bin/env bash
# Session 5, call 1: would GPU decoding in separate processes (CUDA IPC slots) keep eager models fed?
# feeder_probe.py for resnet18 and alexnet, then the current hybrid loader's bench train as the baseline.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
make_tree
timeout 200 python3 benchmarks/feeder_probe.py /tmp/inet13k/train --arch resnet18 --feeders 1 2 3 2>&1 | tee -a $S
timeout 120 python3 benchmarks/feeder_probe.py /tmp/inet13k/train --arch alexnet --feeders 2 3 --pad foreach 2>&1 | tee -a $S
for arch in resnet18 alexnet; do
  timeout 120 python3 -m imagenet_trainer bench train --data /tmp/inet13k --arch $arch --loader hybrid --steps 60 --warmup 20 2>&1 | tail -4 | tee -a $S
done
