#!/usr/bin/env bash
# Session 11, call C (one H100, warm from call B): alexnet with the new code at fixed CPU shares 0.3 and 0.45,
# and a second resnet18 round (NEW, then BASE), with the windows of the fixed-share runs.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
tree130k 240
NEW=$PWD/src:/tmp/site; BASE=$PWD/.base/src:/tmp/site
LIM=80 b alexs30 NEW --arch alexnet --loader hybrid --cpu-share 0.3 --steps 150 --warmup 30
LIM=80 b alexs45 NEW --arch alexnet --loader hybrid --cpu-share 0.45 --steps 150 --warmup 30
LIM=80 b r18b NEW --arch resnet18 --loader hybrid --steps 150 --warmup 30
LIM=80 b r18b BASE --arch resnet18 --loader hybrid --steps 150 --warmup 30
python3 - <<'P' | tee -a $S
import json
for f in ["/tmp/alexs30.NEW.json", "/tmp/alexs45.NEW.json"]:
    d = json.load(open(f)); print(f, [(w["cpu_share"], w["images_per_s"]) for w in d.get("split_windows", [])][:12])
P
