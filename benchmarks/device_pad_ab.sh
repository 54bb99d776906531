#!/usr/bin/env bash
# A/B in one call: the GPU decoder's padded batch built by a per-image copy loop (.base = the previous
# commit's src, carried) against one concatenation + one gather (this tree), hybrid loader, one H100.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export IMAGENET_TRAINER_CACHE=/tmp/itcache PYTHONUNBUFFERED=1
S=$OUT/summary.txt
nvidia-smi --query-gpu=name --format=csv,noheader | tee $S
PYTHONPATH=$PWD/src:/tmp/site timeout 60 python3 -m pytest -q -m gpu -p no:cacheprovider tests/data/test_hybrid.py 2>&1 | tail -1 | tee -a $S
PYTHONPATH=$PWD/src:/tmp/site python3 -m imagenet_trainer sample-data /tmp/inet13k --kind imagenet-like --classes 100 --per-class 130 --val-per-class 10 > /dev/null 2>&1
for run in "base resnet18" "new resnet18" "base alexnet" "new alexnet" "base resnet18" "new resnet18"; do
  set -- $run; src=$PWD/src; [ $1 = base ] && src=$PWD/.base/src
  PYTHONPATH=$src:/tmp/site timeout 120 python3 -m imagenet_trainer bench train --data /tmp/inet13k --arch $2 --loader hybrid \
    --steps 80 --warmup 30 --json > /tmp/r.json 2> /tmp/r.err || tail -2 /tmp/r.err
  echo "$1 $(PYTHONPATH=$PWD/src python3 benchmarks/summarize.py /tmp/r.json)" | tee -a $S
  cp /tmp/r.json $OUT/$1_$2_$(date +%s).json
done
