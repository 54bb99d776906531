#!/usr/bin/env bash
# Session 8, call 4 (one H100): decode_contention.py with pageable/pinned file bytes and the model on the
# default/a side stream, with the default and 32 hardware queues; then the GPU-marked tests.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
make_tree
timeout 200 python3 benchmarks/decode_contention.py /tmp/inet13k 4 2>&1 | grep -v Warn | tee -a $S
CUDA_DEVICE_MAX_CONNECTIONS=32 timeout 150 python3 benchmarks/decode_contention.py /tmp/inet13k 4 --no-profile 2>&1 | tee -a $S
timeout 200 python3 -m pytest -q -m gpu tests -p no:cacheprovider > $OUT/gpu_tests.txt 2>&1
echo "gpu tests rc=$?: $(tail -1 $OUT/gpu_tests.txt)" | tee -a $S
