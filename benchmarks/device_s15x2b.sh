#!/usr/bin/env bash
# Session 15, second 2-GPU call. Call 1 (2x H100): the shipped pair made 9,105 / 9,203 img/s (1.65x / 1.67x), at
# crop scale 0.08 10,108 (1.82x against one GPU's 5,548 at 0.08), though its ranks waited for data only 2.6-3.5%
# of the time: the workers' CPU load slows the ranks' own threads (launching, pinning, NCCL's), not only the supply.
# A/B, alternated: the CPU loader's workers kept off cores 0-3 (sched_setaffinity in the worker, a patched copy of
# the code in /tmp/aff), so that the two ranks' threads always find an idle core. Prediction: if contention for
# cores is the gap, the pair with the affinity gains 5-10% (towards 0.08's 10,108); if not, it moves less than 1%.
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
val100
mkdir -p /tmp/aff && cp -r src /tmp/aff/ && python3 - <<'P'
p = "/tmp/aff/src/imagenet_trainer/data/loader.py"
s = open(p).read()
old = "        os.nice(WORKER_NICE)\n"
assert old in s
s = s.replace(old, old + "        os.sched_setaffinity(0, set(range(4, os.cpu_count())))\n")
open(p, "w").write(s)
P
AFF=/tmp/aff/src:/tmp/site
T="python3 -m imagenet_trainer train --data /tmp/inet13k --arch resnet50 --epochs 1 --cache off --val-every 0 --output /tmp/runs"
C="--backend compile --epoch-size 600 --val-dir /tmp/val100 --loader cpu"
LIMIT=120 run fill 512 $T/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null
CUDA_VISIBLE_DEVICES=0 LIMIT=95 run c1 256 $T/c1 $C --batch-size 256 > /dev/null; half c1 256
for r in a b; do
  PYTHONPATH=$AFF LIMIT=62 run c2aff$r 512 $T/c2aff$r $C --batch-size 512 --ngpu 2 > /dev/null; half c2aff$r 512
  LIMIT=62 run c2$r 512 $T/c2$r $C --batch-size 512 --ngpu 2 > /dev/null; half c2$r 512
done
echo; cat $S
