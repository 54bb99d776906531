#!/usr/bin/env bash
# Session 11, 2-GPU call: the compiled ResNet-50 pair over 600 steps with the hybrid loader's regions (the
# workers decode, the GPU resizes). The compile cache is filled first. 1 GPU with the CPU loader (what auto
# picks there), then 2 GPUs (14 workers per rank, the default): the CPU loader, hybrid at fixed CPU shares
# 1.0 and 0.9, and --loader auto. A 100-image val folder keeps the final evaluations short.
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
mkdir -p /tmp/val100 && for d in /tmp/inet13k/val/*/; do c=$(basename $d); mkdir -p /tmp/val100/$c; cp $(ls $d* | head -1) /tmp/val100/$c/; done
C="--backend compile --epoch-size 600 --val-dir /tmp/val100"
half() { python3 benchmarks/steady_rate.py /tmp/$1.log --batch $2 --from 0.5 | tee -a $S; }
LIMIT=200 run fill 512 $T/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 --loader cpu > /dev/null
CUDA_VISIBLE_DEVICES=0 LIMIT=90 run c1 256 $T/c1 $C --batch-size 256 --loader cpu; half c1 256
LIMIT=90 run c2cpu 512 $T/c2cpu $C --batch-size 512 --ngpu 2 --loader cpu; half c2cpu 512
LIMIT=90 run c2h100 512 $T/c2h100 $C --batch-size 512 --ngpu 2 --loader hybrid --cpu-share 1.0; half c2h100 512
LIMIT=90 run c2h90 512 $T/c2h90 $C --batch-size 512 --ngpu 2 --loader hybrid --cpu-share 0.9; half c2h90 512
LIMIT=120 run c2auto 512 $T/c2auto $C --batch-size 512 --ngpu 2; half c2auto 512
