#!/usr/bin/env bash
# First call on the GPU machine: GPU tests, then each loader once on a small ImageNet-shaped tree.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site IMAGENET_TRAINER_CACHE=/tmp/itcache PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc
python3 -c "import torch, torchvision; print(torch.__version__, torchvision.__version__)"
python3 -m pytest -q -m gpu -p no:cacheprovider tests 2>&1 | tail -15
time python3 -m imagenet_trainer sample-data /tmp/inet --kind imagenet-like --classes 100 --per-class 100 --val-per-class 5 2>/dev/null
for L in cpu gpu hybrid; do
  python3 -m imagenet_trainer bench train --data /tmp/inet --arch resnet18 --loader $L --steps 30 --warmup 10 --json > $OUT/r18_$L.json 2> $OUT/r18_$L.err || tail -5 $OUT/r18_$L.err
done
python3 benchmarks/summarize.py $OUT/*.json
timeout 120 python3 -m imagenet_trainer train --data /tmp/inet --arch resnet50 --epochs 1 --epoch-size 30 --print-freq 5 --output /tmp/r50 2>&1 | tail -12
