#!/usr/bin/env bash
# Session 3, one H100, issue #8: ResNet-9 on CIFAR-10 JPEG with padded crops and flip + 1 px translation
# test-time augmentation; variants around the 30 s budget and one long run for the 120 s budget.
# Also: where the seconds before train() go (import times).
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONUNBUFFERED=1 XDG_CACHE_HOME=/tmp/xdg PYTHONPATH=$PWD/src:/tmp/site
S=$OUT/summary.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $S
for m in torch torchvision imagenet_trainer.engine.run; do
  s=$(date +%s%N); python3 -c "import $m"; e=$(date +%s%N); echo "import $m: $(( (e - s) / 1000000 )) ms" | tee -a $S
done
python3 -X importtime -c "import imagenet_trainer.engine.run, imagenet_trainer.cli" 2> /tmp/imp.txt; sort -t'|' -k2 -n /tmp/imp.txt | tail -12 >> $S
mkdir -p /tmp/c && tar xzf .devdata/cifar10-jpeg.tar.gz -C /tmp/c
cifar() {
  name=$1; lim=$2; shift 2; s=$(date +%s%N)
  timeout $lim python3 -m imagenet_trainer train --data /tmp/c/cifar10 --output /tmp/runs/$name --print-freq 1000 \
    --arch resnet9 --val-every 0 --weight-decay 5e-4 "$@" > /tmp/$name.log 2>&1
  e=$(date +%s%N); echo "$name $*: wall $(( (e - s) / 1000000 )) ms | $(tail -1 /tmp/$name.log | cut -c1-60)" | tee -a $S
  grep -E "^time:" /tmp/$name.log | tee -a $S
}
cifar p16 60 --epochs 16 --batch-size 512
cifar p16_s1 60 --epochs 16 --batch-size 512 --seed 1
cifar p16_ls2 60 --epochs 16 --batch-size 512 --label-smoothing 0.2
cifar p18_b1024 60 --epochs 18 --batch-size 1024
cifar p80 150 --epochs 80 --batch-size 512
