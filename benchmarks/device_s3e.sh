#!/usr/bin/env bash
# Session 3: ResNet-50 compiled from JPEG (hybrid loader) at the session's start (.base/src) and now, one call.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONUNBUFFERED=1 IMAGENET_TRAINER_CACHE=/tmp/itcache
S=$OUT/summary.txt
[ -d /tmp/inet13k ] || PYTHONPATH=$PWD/src:/tmp/site python3 -m imagenet_trainer sample-data /tmp/inet13k --kind imagenet-like --classes 100 --per-class 130 --val-per-class 10 > /dev/null 2>&1
run() { name=$1; pp=$2; shift 2; PYTHONPATH=$pp timeout 170 python3 -m imagenet_trainer bench "$@" --json > $OUT/$name.json 2> /tmp/$name.err || tail -3 /tmp/$name.err; PYTHONPATH=$PWD/src python3 benchmarks/summarize.py $OUT/$name.json | sed "s/^/$name /" | tee -a $S; }
A="train --data /tmp/inet13k --arch resnet50 --backend compile --loader hybrid --steps 80 --warmup 40"
run r50c_old $PWD/.base/src:/tmp/site $A
run r50c_new $PWD/src:/tmp/site $A
