#!/usr/bin/env bash
# Session 8, call 2 (one H100): GPU-marked tests, then the hybrid loader with nvJPEG on a thread of its own
# (NEW: a working tree that was not kept, its loader.py is not in the repository; the result: no gain)
# against one thread that decodes and crops in turn (BASE, .base/src = commit 7e9cc9d),
# on the 130,000-image tree: the loader alone, then resnet18 and alexnet end to end, A/B then B/A.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
T=/tmp/inet130k
if [ ! -d $T ]; then
  ( t0=$(date +%s)
    python3 -m imagenet_trainer sample-data $T --kind imagenet-like --classes 100 --per-class 1300 --val-per-class 10 > /dev/null 2>&1
    echo "sample-data 130k: $(( $(date +%s) - t0 )) s" >> $S ) &
  TREE=$!
  t0=$(date +%s)
  timeout 200 python3 -m pytest -q -m gpu tests -p no:cacheprovider > $OUT/gpu_tests.txt 2>&1
  echo "gpu tests rc=$? in $(( $(date +%s) - t0 )) s: $(tail -1 $OUT/gpu_tests.txt)" | tee -a $S
  wait $TREE
fi
python3 -c "
from imagenet_trainer.config import TrainConfig
from imagenet_trainer.data.build import load_indexes
print('indexed', len(load_indexes(TrainConfig(data='$T'))[0]))" | tee -a $S
NEW=$PWD/src:/tmp/site; BASE=$PWD/.base/src:/tmp/site
for v in BASE NEW; do
  echo "-- loader $v" | tee -a $S
  PYTHONPATH=${!v} timeout 60 python3 -m imagenet_trainer bench loader --data $T --loader hybrid --steps 150 --warmup 30 --json > /tmp/loader.$v.json 2>/dev/null
  python3 -c "import json; d=json.load(open('/tmp/loader.$v.json')); print(round(d['images_per_s']))" | tee -a $S
done
LIM=60
b r18 BASE --arch resnet18 --loader hybrid --steps 150 --warmup 30
b r18 NEW --arch resnet18 --loader hybrid --steps 150 --warmup 30
b alexnet BASE --arch alexnet --loader hybrid --steps 150 --warmup 30
b alexnet NEW --arch alexnet --loader hybrid --steps 150 --warmup 30
b alexnet2 NEW --arch alexnet --loader hybrid --steps 150 --warmup 30
b alexnet2 BASE --arch alexnet --loader hybrid --steps 150 --warmup 30
b r18long NEW --arch resnet18 --loader hybrid --steps 500 --warmup 50
b alexlong NEW --arch alexnet --loader hybrid --steps 600 --warmup 50
cp /tmp/*.json $OUT/ 2>/dev/null
