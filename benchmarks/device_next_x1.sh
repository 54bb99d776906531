#!/usr/bin/env bash
# Planned next one-GPU call (written in session 20), nvidia-h100-x1, carry [.whl]:
# 1. The GPU-marked tests first (the hybrid loader's new window accounting runs there for the first time).
# 2. Issue #3: AlexNet `bench train --loader auto` three times on the 130k tree (written while the tests run), each
#    run's split windows now with the producer's blocked share (training slower than batch-making), training's wait
#    and the device side per window. Session 20's run 2 made 12,735 img/s with both sides as fast as in a 14,964
#    run. Prediction: in slow windows the producer is blocked (>= 15% of the window) and training hardly waits (< 3%):
#    the GPU is shared by nvJPEG's and the crops' kernels and AlexNet's, and the training step, not the loader, sets
#    the pace there. If instead training waits (>= 10%), the producer's device side is the limit.
set -u
source benchmarks/device_x2_lib.sh  # install and helpers (not only for two GPUs)
with_bytecode
NEW=$PWD/src:/tmp/site
tree130k 240  # the GPU-marked tests run while the tree is written
for r in 1 2 3; do LIM=100 b alexauto$r NEW --arch alexnet --steps 600 --warmup 30; done
for r in 1 2 3; do
  python3 -c "
import json, sys
d = json.load(open('/tmp/alexauto$r.NEW.json'))
for w in d.get('split_windows', []):
    print('  ', w)" | tee -a $S
done
echo; cat $S
