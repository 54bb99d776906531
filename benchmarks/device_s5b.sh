#!/usr/bin/env bash
# Session 5, call 2: in-process GPU decoding: how much GPU time does the decode side take per batch, and does
# a shorter GIL switch interval help the training thread? Probe + bench train under sys.setswitchinterval.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
make_tree
timeout 150 python3 benchmarks/feeder_probe.py /tmp/inet13k/train --arch resnet18 --mode thread --feeders 1 --pad loop --switch 0.005 0.001 0.0002 2>&1 | tee -a $S
timeout 150 python3 benchmarks/feeder_probe.py /tmp/inet13k/train --arch resnet18 --mode thread --feeders 1 --pad foreach --switch 0.005 0.0005 2>&1 | tee -a $S
timeout 100 python3 benchmarks/feeder_probe.py /tmp/inet13k/train --arch alexnet --mode thread --feeders 1 --pad foreach --switch 0.005 0.0005 2>&1 | tee -a $S
B="bench train --data /tmp/inet13k --loader hybrid --steps 60 --warmup 20"
for arch in resnet18 alexnet; do
  for sw in 0.005 0.0005; do
    echo "-- $arch hybrid switch $sw" | tee -a $S
    timeout 120 python3 -c "import sys, runpy; sys.setswitchinterval($sw); runpy.run_module('imagenet_trainer', run_name='__main__')" $B --arch $arch 2>&1 | tail -2 | tee -a $S
  done
done
