#!/usr/bin/env bash
# Planned next one-GPU call (written in session 21), nvidia-h100-x1, carry [.whl]:
# 1. The GPU-marked tests first, while the 130k tree is written (a81d94f's shared queue helper has not run on a GPU).
# 2. Issue #3's table rows on the 130k tree with the decoding thread (e0c6212), which session 21 measured only on the
#    13k tree (AlexNet +3.4% against the code before it, three alternated rounds): AlexNet three times, resnet18
#    twice, `--loader auto`. Prediction: AlexNet at 15,000 img/s or more in 3 of 3 where the probe's workers decode
#    5,000 img/s or more (2 of 3 below that); resnet18 at 90% of its ceiling or more, as in sessions 11 and 15.
# (session 20's plan, run as session 21's call 1, is benchmarks/results/2026-11-27-session21/call1_h100/)
set -u
source benchmarks/device_x2_lib.sh  # install and helpers (not only for two GPUs)
with_bytecode
NEW=$PWD/src:/tmp/site
tree130k 240  # the GPU-marked tests run while the tree is written
for r in 1 2 3; do LIM=100 b alexauto$r NEW --arch alexnet --steps 600 --warmup 30; done
for r in 1 2; do LIM=100 b r18auto$r NEW --arch resnet18 --steps 600 --warmup 30; done
for f in /tmp/alexauto*.NEW.json /tmp/r18auto*.NEW.json; do
  python3 -c "
import json, sys
d = json.load(open('$f'))
print('$f', round(d['images_per_s']), 'of ceiling', round(d['of_ceiling'], 3))
for w in d.get('split_windows', []):
    print('  ', w)" | tee -a $S
done
echo; cat $S
