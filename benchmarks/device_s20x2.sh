#!/usr/bin/env bash
# Session 20's 2-GPU calls (planned in session 19), nvidia-h100-x2, carry [.whl], one warm machine:
# `bash benchmarks/device_s20x2.sh a`, then `... b` (b ends with the GPU-marked tests). Session 19's shipped pairs: 1.79-1.83x on one 2x H100, 1.64x
# on a jittery one; each pair's median backward 2.3-2.6 ms above one GPU's, its 90th percentile 8-25 ms above;
# the twin's second run (no DDP) fell behind in 10% of its steps. NCCL's channels were not it.
# Hypothesis: a rank's own threads (training, autograd, pin-memory, NCCL's) run on any core, the workers' too, and
# wait there behind a niced worker or each other; one late rank stalls both. `step_events.py --rank-cores` keeps
# them on the 4 cores the workers stay off: `shared` (both ranks on cores 0-3) or `split` (2 cores each).
# Prediction: shared +2-5% over the shipped pair, the backward's p90 down by half; split no better than shared
# (5 busy threads on 2 cores).
set -u
source benchmarks/device_x2_lib.sh
t0=$(date +%s)
unset PYTHONDONTWRITEBYTECODE; export PYTHONPYCACHEPREFIX=/tmp/pyc XDG_CACHE_HOME=/tmp/xdg
nvidia-smi -L | tee -a $S; nproc | tee -a $S
compiled_runs
fresh=$([ -d /tmp/inet13k ] && echo 0 || echo 1)
x2_resnet50; val100; smi_query
[ $fresh = 1 ] && { LIMIT=85 run fill 512 python3 -m imagenet_trainer $TT/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null; leftovers; }
if [ "${1:-a}" = a ]; then
  one c1 95
  pair n1
  pair sh1 --rank-cores shared
  pair sp1 --rank-cores split
else
  pair sh2 --rank-cores shared
  pair n2
  pair sp2 --rank-cores split
  one c2 95
  t1=$(date +%s); timeout 200 python3 -m pytest -q -m gpu tests -p no:cacheprovider > $OUT/gpu_tests.txt 2>&1
  echo "gpu tests rc=$? in $(( $(date +%s) - t1 )) s: $(tail -1 $OUT/gpu_tests.txt)" | tee -a $S
fi
grep -h "rank-cores" /tmp/sh*.log /tmp/sp*.log 2>/dev/null | sort -u | tee -a $S
echo "elapsed $(( $(date +%s) - t0 )) s" | tee -a $S
echo; cat $S
