#!/usr/bin/env bash
# Session 3, one H100: (1) the GPU tests; (2) issue #3 before/after the shared batch slots and the CPU
# normalizer changes, the previous commit (carried as .base/src) and the working tree in the same call.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONUNBUFFERED=1 IMAGENET_TRAINER_CACHE=/tmp/itcache XDG_CACHE_HOME=/tmp/xdg
S=$OUT/summary.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $S
NEW=$PWD/src:/tmp/site; OLD=$PWD/.base/src:/tmp/site
PYTHONPATH=$NEW timeout 150 python3 -m pytest -q -m gpu tests 2>&1 | tail -3 | tee -a $S
t0=$(date +%s); PYTHONPATH=$NEW python3 -m imagenet_trainer sample-data /tmp/inet13k --kind imagenet-like --classes 100 --per-class 130 --val-per-class 10 > /dev/null 2>&1
echo "sample-data: $(( $(date +%s) - t0 )) s" | tee -a $S
run() { name=$1; pp=$2; shift 2; PYTHONPATH=$pp timeout 150 python3 -m imagenet_trainer bench "$@" --json > $OUT/$name.json 2> /tmp/$name.err || tail -3 /tmp/$name.err; PYTHONPATH=$NEW python3 benchmarks/summarize.py $OUT/$name.json | sed "s/^/$name /" | tee -a $S; }
D="--data /tmp/inet13k"
run loader_old $OLD loader $D --loader cpu --steps 40 --warmup 10 --compare
run loader_new $NEW loader $D --loader cpu --steps 40 --warmup 10 --compare
run r18cpu_old $OLD train $D --arch resnet18 --loader cpu --steps 80 --warmup 30
run r18cpu_new $NEW train $D --arch resnet18 --loader cpu --steps 80 --warmup 30
run r18hyb_old $OLD train $D --arch resnet18 --loader hybrid --steps 80 --warmup 30
run r18hyb_new $NEW train $D --arch resnet18 --loader hybrid --steps 80 --warmup 30
run alexcpu_new $NEW train $D --arch alexnet --loader cpu --steps 100 --warmup 30
run alexhyb_new $NEW train $D --arch alexnet --loader hybrid --steps 100 --warmup 30
