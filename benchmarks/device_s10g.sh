#!/usr/bin/env bash
# Session 10, call G (one H100, 13k tree): resnet18 with the guarded split controller (twice) against a fixed
# CPU share of 0.3, 1,000 steps, and each run's timed windows (share, img/s, producer's wait) in the summary.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
make_tree
T=/tmp/inet13k; NEW=$PWD/src:/tmp/site
windows() { python3 -c "import json; d=json.load(open('/tmp/$1.NEW.json')); print([(w['cpu_share'], w['images_per_s'] // 100, w['producer_waited']) for w in d.get('split_windows', [])])" | tee -a $S; }
LIM=90 b r18g1 NEW --arch resnet18 --loader hybrid --steps 1000 --warmup 50; windows r18g1
LIM=90 b r18f NEW --arch resnet18 --loader hybrid --cpu-share 0.3 --steps 1000 --warmup 50; windows r18f
LIM=90 b r18g2 NEW --arch resnet18 --loader hybrid --steps 1000 --warmup 50; windows r18g2
