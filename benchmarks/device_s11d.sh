#!/usr/bin/env bash
# Session 11, call D (one H100): the final code (regions; the controller's 80-batch windows; the probe's start
# share) on the 130k tree, with the GPU-marked tests while the tree is written. alexnet with --loader auto
# twice (probe, then its cached choice) and at a fixed CPU share of 0.3, 600 steps each; resnet18 auto 600
# steps; compiled resnet50 auto (100 steps after 40, the #3 table's command). The windows of each alexnet run.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
tree130k 240
NEW=$PWD/src:/tmp/site
LIM=100 b alexauto1 NEW --arch alexnet --steps 600 --warmup 30
LIM=100 b alexfix30 NEW --arch alexnet --loader hybrid --cpu-share 0.3 --steps 600 --warmup 30
LIM=100 b alexauto2 NEW --arch alexnet --steps 600 --warmup 30
LIM=100 b r18auto NEW --arch resnet18 --steps 600 --warmup 30
LIM=170 b r50auto NEW --arch resnet50 --backend compile --steps 100 --warmup 40
python3 - <<'P' | tee -a $S
import json
for n in ["alexauto1", "alexfix30", "alexauto2", "r18auto"]:
    try:
        d = json.load(open(f"/tmp/{n}.NEW.json"))
    except (OSError, ValueError):
        continue
    print(n, [(w["cpu_share"], w["images_per_s"]) for w in d.get("split_windows", [])])
P
tar czf $OUT/json_d.tgz -C /tmp $(cd /tmp && ls *.json) 2>/dev/null
