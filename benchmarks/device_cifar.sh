#!/usr/bin/env bash
# Issues #8 and #3 on one H100: CIFAR-10 JPEG (../shared/data, carried in .devdata), end to end from the
# JPEG folder (index built cold on the first run, decode into the cache, training, evaluation), timed by
# the wall clock around the whole command; the same recipe through --loader naive for the accuracy check.
# Usage: bash benchmarks/device_cifar.sh NAME "OPTIONS" [NAME "OPTIONS" ...]
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site PYTHONUNBUFFERED=1 XDG_CACHE_HOME=/tmp/xdg
mkdir -p /tmp/c && tar xzf .devdata/cifar10-jpeg.tar.gz -C /tmp/c
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee -a $OUT/summary.txt
rm -rf /tmp/xdg  # the first run indexes the 60,000 files itself
while [ $# -ge 2 ]; do
  name=$1; opts=$2; shift 2
  s=$(date +%s%N)
  timeout ${LIMIT:-150} python3 -m imagenet_trainer train --data /tmp/c/cifar10 --output /tmp/runs/$name --print-freq 1000 \
    $opts > /tmp/$name.log 2>&1
  rc=$?; e=$(date +%s%N)
  echo "$name rc=$rc wall=$(( (e - s) / 1000000 )) ms | $opts | $(tail -1 /tmp/$name.log | cut -c1-62)" | tee -a $OUT/summary.txt
  grep -E "^time:|first training" /tmp/$name.log | tee -a $OUT/summary.txt
  { echo "== $name: $opts"; grep -vE "^(train|val)" /tmp/$name.log; } >> $OUT/logs.txt
done
