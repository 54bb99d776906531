#!/usr/bin/env bash
# The loader issue's figures on one GPU machine. Usage (on the device): bash benchmarks/device_bench.sh
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site IMAGENET_TRAINER_CACHE=/tmp/itcache PYTHONUNBUFFERED=1
B="python3 -m imagenet_trainer bench"
nvidia-smi --query-gpu=name --format=csv,noheader
[ -d /tmp/inet13k ] || python3 -m imagenet_trainer sample-data /tmp/inet13k --kind imagenet-like --classes 100 --per-class 130 --val-per-class 10 2>/dev/null
run() { name=$1; shift; echo "== $name: $*" >&2; "$@" --json > $OUT/$name.json 2> $OUT/$name.err || tail -3 $OUT/$name.err; }
run loader_cpu_vs_naive $B loader --data /tmp/inet13k --loader cpu --steps 40 --warmup 10 --compare
run loader_gpu $B loader --data /tmp/inet13k --loader gpu --steps 40 --warmup 10
run r50c_hybrid $B train --data /tmp/inet13k --arch resnet50 --backend compile --loader hybrid --steps 60 --warmup 25
run r50c_cpu $B train --data /tmp/inet13k --arch resnet50 --backend compile --loader cpu --steps 40 --warmup 25
run r18_hybrid $B train --data /tmp/inet13k --arch resnet18 --loader hybrid --steps 60 --warmup 20
run alexnet_hybrid $B train --data /tmp/inet13k --arch alexnet --loader hybrid --steps 80 --warmup 20
run alexnet_gpu $B train --data /tmp/inet13k --arch alexnet --loader gpu --steps 60 --warmup 20
run loader_memory $B loader --data /tmp/inet13k --loader hybrid --epochs 5
python3 benchmarks/summarize.py $OUT/*.json
