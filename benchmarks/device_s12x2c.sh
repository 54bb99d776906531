#!/usr/bin/env bash
# Session 12, 2-GPU call C: call B found ddp_ceiling.py's steps fed by this project's loader at 5,304-5,318
# img/s per GPU (1.91x the 1-GPU train run of call A), while `train --ngpu 2` made 5,100 per GPU; one GPU's
# train run matches the script's within 0.2%. What differs between the two pairs: train's processes are
# forked by its own launcher without torchrun's OMP_NUM_THREADS=1, and train does more per step (EMA,
# metrics, progress lines on rank 0 only). 1 GPU, then the pair: as is; OMP_NUM_THREADS=1; --no-ema; and
# launched by torchrun.
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
mkdir -p /tmp/val100 && for d in /tmp/inet13k/val/*/; do c=$(basename $d); mkdir -p /tmp/val100/$c; cp $(ls $d* | head -1) /tmp/val100/$c/; done
C="--backend compile --epoch-size 600 --val-dir /tmp/val100 --loader cpu"
half() { python3 benchmarks/steady_rate.py /tmp/$1.log --batch $2 --from 0.5 | tee -a $S; }
LIMIT=200 run fill 512 $T/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null
CUDA_VISIBLE_DEVICES=0 LIMIT=100 run c1 256 $T/c1 $C --batch-size 256; half c1 256
LIMIT=85 run c2 512 $T/c2 $C --batch-size 512 --ngpu 2; half c2 512
OMP_NUM_THREADS=1 LIMIT=85 run c2omp 512 $T/c2omp $C --batch-size 512 --ngpu 2; half c2omp 512
LIMIT=85 run c2noema 512 $T/c2noema $C --batch-size 512 --ngpu 2 --no-ema; half c2noema 512
LIMIT=90 run c2trun 512 ${T/python3 -m/torchrun --nproc-per-node 2 -m}/c2trun $C --batch-size 512; half c2trun 512
