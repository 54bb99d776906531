#!/usr/bin/env bash
# Session 21, one-GPU call (nvidia-h100-x1, carry [.whl, .base]; .base/src = the code before the decoding thread).
# Call 1 (130k tree) showed AlexNet's batches set by the hybrid producer's device side: training waited 38-63% of
# each window, the producer was never blocked, and a window's rate followed 256 / (device side + ~1 ms). The
# device side (12.7-19.8 ms a batch) is nvJPEG's call, which returns only when its images are done, then the
# crops, copies and waits, in turn. NEW decodes each batch in a thread of its own while the producer finishes the
# batch before it. Prediction: NEW +8-15% over BASE (the 2-3 ms besides nvJPEG's call off each batch), training
# waiting less, the device side per batch (decode + the rest, now overlapped) about the same or a little longer.
# The 13k tree (the 130k one takes 200 s to write), bench train --loader hybrid, alternated three times; then the
# GPU-marked tests of the data pipeline with NEW.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
NEW=$PWD/src:/tmp/site; BASE=$PWD/.base/src:/tmp/site
make_tree; T=/tmp/inet13k
for r in 1 2 3; do
  for v in BASE NEW; do LIM=80 b alex$r $v --arch alexnet --loader hybrid --steps 500 --warmup 30; done
done
for r in 1 2 3; do for v in BASE NEW; do
  python3 -c "
import json, statistics as st
d = json.load(open('/tmp/alex$r.$v.json')); w = d.get('split_windows', [])
f = lambda k: round(st.median([x[k] for x in w]), 3) if w else None
print('$v $r', round(d['images_per_s']), 'windows', len(w), 'median training_waited', f('training_waited'),
      'producer_waited', f('producer_waited'), 'device_side_ms', f('device_side_ms'))" | tee -a $S
done; done
t1=$(date +%s); timeout 150 python3 -m pytest -q -m gpu tests/data -p no:cacheprovider > $OUT/gpu_tests.txt 2>&1
echo "gpu tests (tests/data) rc=$? in $(( $(date +%s) - t1 )) s: $(tail -1 $OUT/gpu_tests.txt)" | tee -a $S
echo; cat $S
