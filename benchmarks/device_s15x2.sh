#!/usr/bin/env bash
# Session 15, 2-GPU call. On 2x H200 the pair's CPU loader ran out, and torchvision's crop scale 0.08 instead of
# the fast recipe's 0.25 gave the pair +5.5% (session 13). Is the CPU also what holds the H100 pair at 1.84x?
# Alternated in one call, compiled resnet50 from JPEG: the shipped command, the same at crop scale 0.08 (1 GPU
# and 2), and the pair with the hybrid loader at a fixed CPU share of 0.8 (the GPUs decode a fifth).
# Prediction: if the workers' CPU load is the gap, the pair gains 2-4% at 0.08 (one GPU less than 1%), and the
# hybrid pair gains too; if neither moves, the gap is not the loader's load.
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
val100
T="python3 -m imagenet_trainer train --data /tmp/inet13k --arch resnet50 --epochs 1 --cache off --val-every 0 --output /tmp/runs"
C="--backend compile --epoch-size 600 --val-dir /tmp/val100"
LIMIT=120 run fill 512 $T/fill $C --loader cpu --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null
CUDA_VISIBLE_DEVICES=0 LIMIT=80 run c1 256 $T/c1 $C --loader cpu --batch-size 256 > /dev/null; half c1 256
LIMIT=62 run c2 512 $T/c2 $C --loader cpu --batch-size 512 --ngpu 2 > /dev/null; half c2 512
LIMIT=62 run c2s 512 $T/c2s $C --loader cpu --rrc-min-scale 0.08 --batch-size 512 --ngpu 2 > /dev/null; half c2s 512
LIMIT=62 run c2h 512 $T/c2h $C --loader hybrid --cpu-share 0.8 --batch-size 512 --ngpu 2 > /dev/null; half c2h 512
CUDA_VISIBLE_DEVICES=0 LIMIT=80 run c1s 256 $T/c1s $C --loader cpu --rrc-min-scale 0.08 --batch-size 256 > /dev/null; half c1s 256
LIMIT=62 run c2b 512 $T/c2b $C --loader cpu --batch-size 512 --ngpu 2 > /dev/null; half c2b 512
echo; cat $S
