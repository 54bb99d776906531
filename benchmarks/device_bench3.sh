#!/usr/bin/env bash
# Third round: per-image padding instead of a nested tensor, and the first (producer-aware) split rule.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site IMAGENET_TRAINER_CACHE=/tmp/itcache PYTHONUNBUFFERED=1
B="python3 -m imagenet_trainer bench"
[ -d /tmp/inet13k ] || python3 -m imagenet_trainer sample-data /tmp/inet13k --kind imagenet-like --classes 100 --per-class 130 --val-per-class 10 2>/dev/null
run() { name=$1; shift; "$@" --json > $OUT/$name.json 2> $OUT/$name.err || tail -3 $OUT/$name.err; python3 benchmarks/summarize.py $OUT/$name.json | sed "s/^/$name /"; }
run loader_gpu $B loader --data /tmp/inet13k --loader gpu --steps 40 --warmup 10
run r18_hybrid $B train --data /tmp/inet13k --arch resnet18 --loader hybrid --steps 80 --warmup 30
run alex_hybrid $B train --data /tmp/inet13k --arch alexnet --loader hybrid --steps 100 --warmup 30
run r50c_hybrid $B train --data /tmp/inet13k --arch resnet50 --backend compile --loader hybrid --steps 80 --warmup 40
