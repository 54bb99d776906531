#!/usr/bin/env bash
# Session 8, call 5 (one H100), the 130,000-image tree: the hybrid loader with 8 hardware queues (CUDA's
# default) against 32, and with the files' bytes pinned. OLD = .base/src (HEAD: pageable bytes) with
# CUDA_DEVICE_MAX_CONNECTIONS=8; BASE32 = the same code with 32; NEW = the working tree (32 by default, pinned
# bytes). The loader alone, then resnet18 and alexnet end to end; then longer runs of NEW.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
T=/tmp/inet130k
( t0=$(date +%s)
  python3 -m imagenet_trainer sample-data $T --kind imagenet-like --classes 100 --per-class 1300 --val-per-class 10 > /dev/null 2>&1
  echo "sample-data 130k: $(( $(date +%s) - t0 )) s" >> $S ) &
TREE=$!
t0=$(date +%s)
timeout 200 python3 -m pytest -q -m gpu tests -p no:cacheprovider > $OUT/gpu_tests.txt 2>&1
echo "gpu tests rc=$? in $(( $(date +%s) - t0 )) s: $(tail -1 $OUT/gpu_tests.txt)" | tee -a $S
wait $TREE
python3 -c "
from imagenet_trainer.config import TrainConfig
from imagenet_trainer.data.build import load_indexes
print('indexed', len(load_indexes(TrainConfig(data='$T'))[0]))" | tee -a $S
NEW=$PWD/src:/tmp/site; OLD=$PWD/.base/src:/tmp/site; BASE32=$OLD
queues() { case $1 in OLD) export CUDA_DEVICE_MAX_CONNECTIONS=8;; BASE32) export CUDA_DEVICE_MAX_CONNECTIONS=32;; *) unset CUDA_DEVICE_MAX_CONNECTIONS;; esac; }
for v in OLD NEW; do
  queues $v; echo "-- loader $v" | tee -a $S
  PYTHONPATH=${!v} timeout 60 python3 -m imagenet_trainer bench loader --data $T --loader hybrid --steps 150 --warmup 30 --json > /tmp/loader.$v.json 2>/dev/null
  python3 -c "import json; d=json.load(open('/tmp/loader.$v.json')); print(round(d['images_per_s']))" | tee -a $S
done
LIM=60
for v in OLD BASE32 NEW; do queues $v; b r18 $v --arch resnet18 --loader hybrid --steps 150 --warmup 30; done
for v in NEW BASE32 OLD; do queues $v; b alexnet $v --arch alexnet --loader hybrid --steps 150 --warmup 30; done
queues NEW
b r18long NEW --arch resnet18 --loader hybrid --steps 500 --warmup 50
b alexlong NEW --arch alexnet --loader hybrid --steps 600 --warmup 50
cp /tmp/*.json $OUT/ 2>/dev/null
