#!/usr/bin/env bash
# Session 6, call 7 (one H100, the last 4 minutes of device time): the hybrid loader's batches in shared slots
# (crops and file bytes in one reused slot, small tensors as bytes) against the code before (.base/src, commit
# 7a5afe8: a new shared segment and a socket per tensor, 8 per batch), alternating, 13k tree.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
make_tree
NEW=$PWD/src:/tmp/site; BASE=$PWD/.base/src:/tmp/site
for arch in resnet18 alexnet; do
  for v in ${ORDER:-BASE NEW}; do
    PYTHONPATH=${!v} timeout 60 python3 -m imagenet_trainer bench train --data /tmp/inet13k --json --arch $arch \
      --loader hybrid --steps 80 --warmup 20 > /tmp/$arch.$v.json 2>/dev/null
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[2], round(d['images_per_s']), d['cpu_share'], round(d['of_ceiling'], 3), 'ceiling', round(d['ceiling']['images_per_s']))" \
      /tmp/$arch.$v.json "$arch $v" 2>&1 | tee -a $S
  done
done
