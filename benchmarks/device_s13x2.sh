#!/usr/bin/env bash
# Session 13, first 2-GPU call: the GPU-marked tests on the current code, then the call session 12 planned
# (device_next_x2.sh, removed now that it ran in this form) in the order that matters most if time runs out: the ceiling script with the recipe's
# loader and trainer phase against the defaults, train's pair with the recipe's crop scale and with 0.08, and
# DDP's copy savers last.
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
t0=$(date +%s); timeout 120 python3 -m pytest -q -m gpu tests -p no:cacheprovider > $OUT/gpu_tests.txt 2>&1
echo "gpu tests rc=$? in $(( $(date +%s) - t0 )) s: $(tail -1 $OUT/gpu_tests.txt)" | tee -a $S
val100
C="--backend compile --epoch-size 600 --val-dir /tmp/val100 --loader cpu"
LIMIT=100 ddp_ceiling2 dcfast --data /tmp/inet13k --recipe fast
LIMIT=70 ddp_ceiling2 dcplain --data /tmp/inet13k
LIMIT=120 run fill 512 $T/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null
CUDA_VISIBLE_DEVICES=0 LIMIT=80 run c1 256 $T/c1 $C --batch-size 256; half c1 256
LIMIT=75 run c2 512 $T/c2 $C --batch-size 512 --ngpu 2; half c2 512
LIMIT=75 run c2s008 512 $T/c2s008 $C --batch-size 512 --ngpu 2 --rrc-min-scale 0.08; half c2s008 512
LIMIT=60 ddp_ceiling2 dcview --bucket-view --no-broadcast-buffers
