#!/usr/bin/env bash
# Session 14, last call (one H100, about 150 s of device time left): AlexNet from JPEG on another machine, the
# final code, --loader auto twice (probe, then its cached choice), 600 steps each, on the 13k tree (the 130k tree
# takes longer to write than was left). Session 11 measured 16,497-16,764 img/s on one machine, 130k tree.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
make_tree
T=/tmp/inet13k NEW=$PWD/src:/tmp/site
LIM=60 b alexauto1 NEW --arch alexnet --steps 600 --warmup 30
LIM=45 b alexauto2 NEW --arch alexnet --steps 600 --warmup 30
