#!/usr/bin/env bash
# Session 8, call 3 (one H100): does nvJPEG decoding compete with training for the GPU? (decode_contention.py,
# 13k tree), then the GPU-marked tests at the working tree.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
make_tree
timeout 200 python3 benchmarks/decode_contention.py /tmp/inet13k 5 2>&1 | tee -a $S
timeout 200 python3 -m pytest -q -m gpu tests -p no:cacheprovider > $OUT/gpu_tests.txt 2>&1
echo "gpu tests rc=$?: $(tail -1 $OUT/gpu_tests.txt)" | tee -a $S
