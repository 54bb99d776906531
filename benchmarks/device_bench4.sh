#!/usr/bin/env bash
# Session 2: the issue #3 table again with the current code (JPEG loaders; bench always uses --cache off),
# then two ResNet-9 CIFAR variants for the 30 s budget of issue #8.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site IMAGENET_TRAINER_CACHE=/tmp/itcache PYTHONUNBUFFERED=1
S=$OUT/summary.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $S
B="python3 -m imagenet_trainer bench"
t0=$(date +%s); python3 -m imagenet_trainer sample-data /tmp/inet13k --kind imagenet-like --classes 100 --per-class 130 --val-per-class 10 > /dev/null 2>&1
echo "sample-data: $(( $(date +%s) - t0 )) s" | tee -a $S
run() { name=$1; shift; timeout 200 "$@" --json > $OUT/$name.json 2> /tmp/$name.err || tail -3 /tmp/$name.err; python3 benchmarks/summarize.py $OUT/$name.json | sed "s/^/$name /" | tee -a $S; }
run loader_cpu $B loader --data /tmp/inet13k --loader cpu --steps 40 --warmup 10 --compare
run r18_hybrid $B train --data /tmp/inet13k --arch resnet18 --loader hybrid --steps 80 --warmup 30
run alex_hybrid $B train --data /tmp/inet13k --arch alexnet --loader hybrid --steps 100 --warmup 30
run r50c_hybrid $B train --data /tmp/inet13k --arch resnet50 --backend compile --loader hybrid --steps 80 --warmup 40
mkdir -p /tmp/c && tar xzf .devdata/cifar10-jpeg.tar.gz -C /tmp/c
for v in "ls2:--label-smoothing 0.2" "b256:--batch-size 256"; do
  name=${v%%:*}; opts=${v#*:}; s=$(date +%s%N)
  timeout 90 python3 -m imagenet_trainer train --data /tmp/c/cifar10 --output /tmp/runs/$name --print-freq 1000 --arch resnet9 \
    --epochs 12 --batch-size 512 --val-every 0 --weight-decay 5e-4 $opts > /tmp/$name.log 2>&1
  e=$(date +%s%N); echo "cifar r9 12ep wd5e-4 $opts: wall $(( (e - s) / 1000000 )) ms | $(tail -1 /tmp/$name.log | cut -c1-50)" | tee -a $S
  grep "^time:" /tmp/$name.log | tee -a $S
done
