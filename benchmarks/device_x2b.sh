#!/usr/bin/env bash
# Issues #4 and #8, second round: the JPEG loader (--cache off; the 13k tree would otherwise be cached
# on the GPU) for ResNet-50 on 1 and 2 GPUs, and --recipe fast compiled on 1 GPU against bench's ceiling.
set -u
source benchmarks/device_x2_lib.sh
nvidia-smi -L | tee $S
CUDA_VISIBLE_DEVICES=0 timeout 100 python3 -m pytest -q -m gpu -p no:cacheprovider tests/data/test_cache.py 2>&1 | tail -2 | tee -a $S
make_tree
T="python3 -m imagenet_trainer train --data /tmp/inet13k --arch resnet50 --epochs 1 --epoch-size 150 --cache off --output /tmp/runs"
CUDA_VISIBLE_DEVICES=0 run r50_1gpu 256 $T/r50_1gpu --batch-size 256
run r50_2gpu 512 $T/r50_2gpu --batch-size 512 --ngpu 2
CUDA_VISIBLE_DEVICES=0 LIMIT=200 run r50c_fast 256 $T/r50c_fast --batch-size 256 --backend compile --epoch-size 200 --val-every 0
CUDA_VISIBLE_DEVICES=0 timeout 200 python3 -m imagenet_trainer bench train --data /tmp/inet13k --arch resnet50 --backend compile \
  --steps 80 --warmup 40 --json > $OUT/bench_r50c.json 2> /tmp/bench.err || tail -3 /tmp/bench.err
python3 benchmarks/summarize.py $OUT/bench_r50c.json | tee -a $S
