#!/usr/bin/env bash
# Issue #8: which recipe settings hold CIFAR-10 JPEG back at 10 epochs (ResNet-18, batch 512, one H100).
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site PYTHONUNBUFFERED=1
mkdir -p /tmp/c && tar xzf .devdata/cifar10-jpeg.tar.gz -C /tmp/c
run() {  # name, train options...
  local name=$1; shift
  local s=$(date +%s%N)
  timeout 90 python3 -m imagenet_trainer train --data /tmp/c/cifar10 --output /tmp/runs/$name --print-freq 1000 \
    --arch resnet18 --batch-size 512 --epochs ${EPOCHS:-10} "$@" > /tmp/$name.log 2>&1
  local rc=$? e=$(date +%s%N)
  echo "$name rc=$rc wall=$(( (e - s) / 1000000 )) ms | $* | $(tail -1 /tmp/$name.log | cut -c1-60)" | tee -a $OUT/summary.txt
  grep -E "^epoch" /tmp/$name.log | sed 's/^/   /' | cut -c1-200 >> $OUT/curves.txt
  grep -E "^time:" /tmp/$name.log | tee -a $OUT/summary.txt
}
run base_s2 --seed 2
run scale06 --rrc-min-scale 0.6
run scale10 --rrc-min-scale 1.0
run lr01 --lr-per-256 0.1
run lr01_scale06 --lr-per-256 0.1 --rrc-min-scale 0.6
run ls0_scale06 --label-smoothing 0 --rrc-min-scale 0.6
run wd5e4_scale06 --weight-decay 5e-4 --rrc-min-scale 0.6
run b256_scale06 --batch-size 256 --rrc-min-scale 0.6
