#!/usr/bin/env bash
# Session 6, call 5 (one H100, the machine of call 4 still warm, its 130k tree in /tmp): the GPU-marked tests
# at the new controller, then a repeat of resnet18 and alexnet with the adaptive split.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
timeout 200 python3 -m pytest -q -m gpu tests -p no:cacheprovider 2>&1 | tail -4 | tee -a $S
T=/tmp/inet130k
[ -d $T ] || { echo "no 130k tree: machine was not warm" | tee -a $S; exit 0; }
for arch in resnet18 alexnet; do
  echo "-- $arch NEW (repeat)" | tee -a $S
  timeout 120 python3 -m imagenet_trainer bench train --data $T --json --arch $arch --loader hybrid --steps 150 --warmup 30 \
    > $OUT/$arch.json 2>/dev/null
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(round(d['images_per_s']), d['cpu_share'], round(d['of_ceiling'], 3), 'ceiling', round(d['ceiling']['images_per_s']))" $OUT/$arch.json | tee -a $S
done
