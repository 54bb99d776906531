#!/usr/bin/env bash
# Issues #4 and #8 on nvidia-h100-x2: GPU tests; ResNet-50 end to end from JPEG on 1 and 2 GPUs
# (same per-GPU batch, first-batch time with a cached index); --recipe fast (EMA) compiled on 1 GPU.
set -u
source benchmarks/device_x2_lib.sh
nvidia-smi -L | tee $S; nproc | tee -a $S
CUDA_VISIBLE_DEVICES=0 timeout 240 python3 -m pytest -q -m gpu -p no:cacheprovider tests > /tmp/gpu_tests.txt 2>&1
tail -4 /tmp/gpu_tests.txt | tee -a $S
make_tree
T="python3 -m imagenet_trainer train --data /tmp/inet13k --arch resnet50 --epochs 1 --epoch-size 150 --output /tmp/runs"
CUDA_VISIBLE_DEVICES=0 run r50_1gpu 256 $T/r50_1gpu --batch-size 256
run r50_2gpu 512 $T/r50_2gpu --batch-size 512 --ngpu 2
CUDA_VISIBLE_DEVICES=0 run r50_1gpu_b 256 $T/r50_1gpu_b --batch-size 256
run r50_2gpu_b 512 $T/r50_2gpu_b --batch-size 512 --ngpu 2
CUDA_VISIBLE_DEVICES=0 LIMIT=200 run r50c_fast 256 $T/r50c_fast --batch-size 256 --backend compile --epoch-size 200
cp /tmp/gpu_tests.txt $OUT/
