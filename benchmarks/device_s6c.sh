#!/usr/bin/env bash
# Session 6, call 4 (one H100): the issue's own tree size (100 classes x 1,300 images, so epochs of 507
# batches instead of 50), and the throughput-seeking split controller against the session's starting code
# (.base/src, the wait-watching controller), in one call. Then resnet50 compiled with the new code.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
T=/tmp/inet130k
if [ ! -d $T ]; then
  t0=$(date +%s)
  python3 -m imagenet_trainer sample-data $T --kind imagenet-like --classes 100 --per-class 1300 --val-per-class 10 > /dev/null 2>&1
  echo "sample-data 130k: $(( $(date +%s) - t0 )) s, $(du -sh $T | cut -f1)" | tee -a $S
  t0=$(date +%s)
  python3 -c "
from imagenet_trainer.config import TrainConfig
from imagenet_trainer.data.build import load_indexes
print('indexed', len(load_indexes(TrainConfig(data='$T'))[0]))" | tee -a $S
  echo "index: $(( $(date +%s) - t0 )) s" | tee -a $S
fi
NEW=$PWD/src:/tmp/site; BASE=$PWD/.base/src:/tmp/site
LIM=200  # b's time limit per run in this call
b r18 BASE --arch resnet18 --loader hybrid --steps 150 --warmup 30
b r18 NEW --arch resnet18 --loader hybrid --steps 150 --warmup 30
b alexnet BASE --arch alexnet --loader hybrid --steps 150 --warmup 30
b alexnet NEW --arch alexnet --loader hybrid --steps 150 --warmup 30
b r18_share03 NEW --arch resnet18 --loader hybrid --steps 150 --warmup 30 --cpu-share 0.3
b alexnet_share03 NEW --arch alexnet --loader hybrid --steps 150 --warmup 30 --cpu-share 0.3
b r50 NEW --arch resnet50 --backend compile --loader hybrid --steps 100 --warmup 40
tar czf $OUT/bench_json.tgz /tmp/*.json 2>/dev/null
