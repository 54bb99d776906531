#!/usr/bin/env bash
# The hybrid split by hand: end-to-end resnet18/alexnet at fixed CPU shares, and the GPU decode stages.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site IMAGENET_TRAINER_CACHE=/tmp/itcache PYTHONUNBUFFERED=1
B="python3 -m imagenet_trainer bench"
[ -d /tmp/inet13k ] || python3 -m imagenet_trainer sample-data /tmp/inet13k --kind imagenet-like --classes 100 --per-class 130 --val-per-class 10 2>/dev/null
python3 benchmarks/gpu_decode_profile.py /tmp/inet13k
run() { name=$1; shift; "$@" --json > $OUT/$name.json 2> $OUT/$name.err || tail -3 $OUT/$name.err; python3 benchmarks/summarize.py $OUT/$name.json | sed "s/^/$name /"; }
for S in 1.0 0.7 0.4; do run r18_s$S $B train --data /tmp/inet13k --arch resnet18 --loader hybrid --cpu-share $S --steps 50 --warmup 15; done
run r18_s0.7_w12 $B train --data /tmp/inet13k --arch resnet18 --loader hybrid --cpu-share 0.7 --workers 12 --steps 50 --warmup 15
for S in 0.7 0.4; do run alex_s$S $B train --data /tmp/inet13k --arch alexnet --loader hybrid --cpu-share $S --steps 60 --warmup 15; done
