#!/usr/bin/env bash
# Session 8, call 1 (one H100): the GPU-marked tests (the crop kernel's per-channel helper, the probe), then
# --loader auto with its probe (data/probe.py) on the 130,000-image tree: resnet50 compiled against
# the hybrid loader (what auto was before), resnet18 and alexnet.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
T=/tmp/inet130k
( t0=$(date +%s)
  python3 -m imagenet_trainer sample-data $T --kind imagenet-like --classes 100 --per-class 1300 --val-per-class 10 > /dev/null 2>&1
  echo "sample-data 130k: $(( $(date +%s) - t0 )) s, $(du -sh $T | cut -f1)" >> $S ) &
TREE=$!
t0=$(date +%s)
timeout 240 python3 -m pytest -q -m gpu tests -p no:cacheprovider > $OUT/gpu_tests.txt 2>&1
echo "gpu tests rc=$? in $(( $(date +%s) - t0 )) s (while the tree was written): $(tail -1 $OUT/gpu_tests.txt)" | tee -a $S
wait $TREE
t0=$(date +%s)
python3 -c "
from imagenet_trainer.config import TrainConfig
from imagenet_trainer.data.build import load_indexes
print('indexed', len(load_indexes(TrainConfig(data='$T'))[0]))" | tee -a $S
echo "index: $(( $(date +%s) - t0 )) s" | tee -a $S
NEW=$PWD/src:/tmp/site
LIM=150 b r50 NEW --arch resnet50 --backend compile --loader auto --steps 100 --warmup 40
LIM=100 b r50h NEW --arch resnet50 --backend compile --loader hybrid --steps 100 --warmup 40
LIM=60 b r18 NEW --arch resnet18 --loader auto --steps 150 --warmup 30
LIM=60 b alexnet NEW --arch alexnet --loader auto --steps 150 --warmup 30
cp /tmp/*.json $OUT/ 2>/dev/null
