#!/usr/bin/env bash
# Session 19, 2-GPU calls (nvidia-h100-x2, carry [.whl]), on one warm machine: `bash benchmarks/device_s19x2.sh a`,
# then `... b`. Session 18 shipped DDP with gradients as bucket views and a static graph (+4% on a jittery 2x H100,
# 1.72-1.73x there; +9% on a noisy 2x H200) and changed the --ngpu launcher (errors, signals) after the last GPU tests.
# a: the GPU-marked tests, with the new two-GPU ones (NCCL: two GPUs match one, Ctrl-C, a dying rank), while the 13k
#    tree is written; the compile cache filled; one GPU; the shipped pair; the twin control (two one-GPU runs at once;
#    prediction: within 1% of one GPU, as on H200).
# b: the shipped pair again, the old DDP options, one GPU again (the ratio's baseline at both ends of the calls).
# Prediction: steady shipped pairs at 1.86-1.92x of one GPU; old options 2-5% below.
set -u
source benchmarks/device_x2_lib.sh
t0=$(date +%s)
unset PYTHONDONTWRITEBYTECODE; export PYTHONPYCACHEPREFIX=/tmp/pyc XDG_CACHE_HOME=/tmp/xdg
nvidia-smi -L | tee -a $S; nproc | tee -a $S; cut -d' ' -f1-3 /proc/loadavg | tee -a $S
compiled_runs
OLD="--ddp-option gradient_as_bucket_view=False --ddp-option static_graph=False"
if [ "${1:-a}" = a ]; then
  gpu_tests_beside_tree13k 260
  grep -E "passed|failed|PASS|FAIL|Error" $OUT/gpu_tests.txt | tail -15 | tee -a $S
  x2_resnet50; val100; smi_query
  LIMIT=85 run fill 512 python3 -m imagenet_trainer $TT/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null; leftovers
  one c1 95
  pair n1
  twin t1
else
  [ -d /tmp/inet13k ] || echo "a fresh machine: the tree and the compile cache again" | tee -a $S
  fresh=$([ -d /tmp/inet13k ] && echo 0 || echo 1)
  x2_resnet50; val100; smi_query
  [ $fresh = 1 ] && { LIMIT=85 run fill 512 python3 -m imagenet_trainer $TT/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null; leftovers; }
  pair n2
  pair o1 $OLD
  one c2 95
  [ $(( $(date +%s) - t0 )) -lt 420 ] && pair n3
fi
echo "elapsed $(( $(date +%s) - t0 )) s" | tee -a $S
echo; cat $S
