#!/usr/bin/env bash
# Session 10, call F (one H100, 130k tree): does the hybrid loader's producer thread lose its core to the
# workers? In call D the producer's device side took 15-24 ms per alexnet batch, where the same nvJPEG
# calls beside alexnet take 10.7 ms per 180 files with idle cores (call E). alexnet --loader hybrid at a
# fixed CPU share of 0.25 with 15 (the default), 13 and 11 workers, two rounds, 600 steps; one JSON line
# per run in the summary (split_windows dropped).
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
tree130k 240
NEW=$PWD/src:/tmp/site
for r in 1 2; do for w in 15 13 11; do
  LIM=90 b alexw$w.$r NEW --arch alexnet --loader hybrid --cpu-share 0.25 --workers $w --steps 600 --warmup 50
  python3 -c "import json; d=json.load(open('/tmp/alexw$w.$r.NEW.json')); print(round(d['device_side_s_per_batch']*1000, 1), 'ms device side')" | tee -a $S
done; done
