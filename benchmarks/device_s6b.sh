#!/usr/bin/env bash
# Session 6, call 2 (one H100): (a) #8 on an H100: the fast recipe (EMA, progressive resizing, checkpoints) on
# ResNet-50 compiled from JPEG against `bench train` (no recipe) and the model-only ceiling in the same call;
# (b) #3: is the adaptive CPU/GPU split at a good point? bench train with fixed shares against adaptive.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
make_tree
brief() {  # one line of a bench --json file
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print({k: round(v, 3) if isinstance(v, float) else v for k, v in d.items() if k in ('images_per_s','cpu_share','of_ceiling','first_batch_s')}, 'ceiling', round(d['ceiling']['images_per_s']))" $1 2>&1 | tee -a $S
}
[ "${SKIP_FAST:-}" ] || LIMIT=200 run r50_fast 256 python3 -m imagenet_trainer train --data /tmp/inet13k --arch resnet50 --backend compile \
  --epochs 1 --epoch-size 200 --cache off --val-every 0 --output /tmp/runs/r50_fast
echo "-- r50 bench train" | tee -a $S
timeout 200 python3 -m imagenet_trainer bench train --data /tmp/inet13k --arch resnet50 --backend compile --loader hybrid \
  --steps 80 --warmup 40 --json > $OUT/r50_bench.json 2>/tmp/r50_bench.err; brief $OUT/r50_bench.json
sweep() {  # arch, shares...
  local arch=$1; shift
  for share in "$@"; do
    local opt=""; [ "$share" != adaptive ] && opt="--cpu-share $share"
    echo "-- $arch hybrid share=$share" | tee -a $S
    timeout 120 python3 -m imagenet_trainer bench train --data /tmp/inet13k --arch $arch --loader hybrid --steps 80 \
      --warmup 20 --json $opt > $OUT/${arch}_$share.json 2>/dev/null; brief $OUT/${arch}_$share.json
  done
}
sweep resnet18 adaptive 0.3 0.45 0.6
sweep alexnet adaptive 0.1 0.25 0.4
