#!/usr/bin/env bash
# Session 13, third 2-GPU call. Call 2's traces (one H100, ddp_ceiling.py's trainer phase) showed the progress
# line's .tolist() leaving the GPU idle 2.8 ms every 10 steps, and slow launches after it; the progress line now
# shows values copied without a sync (HostCopies). Also: the NCCL kernels of a rank that waits for the other spin
# on SMs beside its backward (call 2: up to 30 ms a step under the profiler); NCCL_MAX_CTAS=4 caps how many.
# A/B in one call: .base/src is HEAD before HostCopies. Then the GPU-marked tests on this code.
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
val100
NEW=$PYTHONPATH BASE=$PWD/.base/src:/tmp/site
C="--backend compile --epoch-size 600 --val-dir /tmp/val100 --loader cpu"
LIMIT=120 run fill 512 $T/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null
CUDA_VISIBLE_DEVICES=0 LIMIT=95 run c1 256 $T/c1 $C --batch-size 256; half c1 256
LIMIT=75 run c2 512 $T/c2 $C --batch-size 512 --ngpu 2; half c2 512
PYTHONPATH=$BASE LIMIT=75 run c2base 512 $T/c2base $C --batch-size 512 --ngpu 2; half c2base 512
NCCL_MAX_CTAS=4 LIMIT=75 run c2ctas4 512 $T/c2ctas4 $C --batch-size 512 --ngpu 2; half c2ctas4 512
t0=$(date +%s); timeout 100 python3 -m pytest -q -m gpu tests -p no:cacheprovider > $OUT/gpu_tests.txt 2>&1
echo "gpu tests rc=$? in $(( $(date +%s) - t0 )) s: $(tail -1 $OUT/gpu_tests.txt)" | tee -a $S
