#!/usr/bin/env bash
# (2026-11-25: one try ran past its 200 s limit with no output kept; this version logs to $OUT as it goes.)
# The fast recipe on CIFAR-10 JPEG (../shared/data), end to end from the JPEG folder, timed by the wall clock.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site IMAGENET_TRAINER_CACHE=/tmp/itcache PYTHONUNBUFFERED=1
mkdir -p /tmp/c && tar xzf .devdata/cifar10-jpeg.tar.gz -C /tmp/c
start=$(date +%s.%N)
python3 -m imagenet_trainer train --data /tmp/c/cifar10 --arch resnet18 --epochs ${EPOCHS:-12} --batch-size 512 \
  --loader cpu --output /tmp/cifar_run --print-freq 50 2>&1 | tee $OUT/train.log | grep --line-buffered -v "^val"
end=$(date +%s.%N)
echo "wall-clock seconds, launch to final line: $(echo "$end - $start" | bc)"
cp /tmp/cifar_run/metrics.jsonl /tmp/cifar_run/config.yaml $OUT/ 2>/dev/null
