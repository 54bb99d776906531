#!/usr/bin/env bash
# Session 10, 2-GPU call (its first run had the output path misplaced, call8_2xh100; fixed here, call9_2xh100): the compiled ResNet-50 pair over 600 steps (session 9's 200-step runs ended while
# the split controller was still climbing from its start at 0.3). The compile cache is filled first, so
# runs fit the time limit. 1 GPU with --loader auto (cpu), then 2 GPUs: --loader auto, hybrid at a fixed
# CPU share of 0.8, and the CPU loader with 14 workers per rank. Steady rates from 30% and from 50% of the run.
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
lscpu | grep -E "^(Thread|Core|Socket)" | tee -a $S
C="--backend compile --epoch-size 600"
LIMIT=240 run fill 512 $T/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null
half() { python3 benchmarks/steady_rate.py /tmp/$1.log --batch $2 --from 0.5 | tee -a $S; }
CUDA_VISIBLE_DEVICES=0 LIMIT=120 run c1 256 $T/c1 $C --batch-size 256; half c1 256
LIMIT=120 run c2auto 512 $T/c2auto $C --batch-size 512 --ngpu 2; half c2auto 512
LIMIT=120 run c2s08 512 $T/c2s08 $C --batch-size 512 --ngpu 2 --loader hybrid --cpu-share 0.8; half c2s08 512
LIMIT=120 run c2cpu14 512 $T/c2cpu14 $C --batch-size 512 --ngpu 2 --loader cpu --workers 14; half c2cpu14 512
