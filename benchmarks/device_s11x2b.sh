#!/usr/bin/env bash
# Session 11, 2-GPU call B: is the compiled pair held by its training processes waiting for a core? (Call A:
# training never waited for data in the steady state, and the workers' cheaper regions changed nothing.)
# BASE (.base/src = 34d0eda) against NEW, whose GPU-run workers keep off one core per training process.
# 1 GPU NEW, then 2 GPUs with the CPU loader: BASE, NEW, NEW with a 0.5 ms interpreter switch interval
# (inherited by the forked ranks), and NEW hybrid at CPU share 1.0.
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
mkdir -p /tmp/val100 && for d in /tmp/inet13k/val/*/; do c=$(basename $d); mkdir -p /tmp/val100/$c; cp $(ls $d* | head -1) /tmp/val100/$c/; done
NEW=$PWD/src:/tmp/site; BASE=$PWD/.base/src:/tmp/site
C="--backend compile --epoch-size 600 --val-dir /tmp/val100"
half() { python3 benchmarks/steady_rate.py /tmp/$1.log --batch $2 --from 0.5 | tee -a $S; }
printf 'import runpy, sys\nsys.setswitchinterval(0.0005)\nrunpy.run_module("imagenet_trainer", run_name="__main__")\n' > /tmp/sw.py
LIMIT=200 run fill 512 $T/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 --loader cpu > /dev/null
CUDA_VISIBLE_DEVICES=0 LIMIT=90 run c1 256 $T/c1 $C --batch-size 256 --loader cpu; half c1 256
PYTHONPATH=$BASE LIMIT=85 run c2base 512 $T/c2base $C --batch-size 512 --ngpu 2 --loader cpu; half c2base 512
LIMIT=85 run c2new 512 $T/c2new $C --batch-size 512 --ngpu 2 --loader cpu; half c2new 512
LIMIT=85 run c2sw 512 ${T/-m imagenet_trainer//tmp/sw.py}/c2sw $C --batch-size 512 --ngpu 2 --loader cpu; half c2sw 512
LIMIT=85 run c2h100 512 $T/c2h100 $C --batch-size 512 --ngpu 2 --loader hybrid --cpu-share 1.0; half c2h100 512
