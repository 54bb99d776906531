#!/usr/bin/env bash
# Planned next 2-GPU call (written in session 18). Session 18 found the compiled pair's loss to be DDP's (on 2x H200
# two one-GPU runs at once kept within 1% of one GPU alone, the pair 7.4% below them, all in the backward) and
# shipped DDP with gradients as bucket views and a static graph (+9% on a noisy 2x H200, +4% on a 2x H100 where every
# pair ran jittery, 1.72-1.73x there). This call, on 2x H100 (the card):
# 1. the twin control on H100 (prediction: within 1% of one GPU, as on H200);
# 2. the shipped pair against the old DDP options, alternated, with step figures (prediction: +2-5%; steady pairs at
#    1.88-1.92x);
# 3. if time is left, the shipped pair with buckets of 50 MB (fewer graph splits and all-reduces; it recompiles).
# One call: `bash benchmarks/device_next_x2.sh` on nvidia-h100-x2, carry [.whl].
set -u
source benchmarks/device_x2_lib.sh
t0=$(date +%s)
x2_resnet50
val100
smi_query
compiled_runs
OLD="--ddp-option gradient_as_bucket_view=False --ddp-option static_graph=False"
LIMIT=85 run fill 512 python3 -m imagenet_trainer $TT/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null; leftovers
one c1 95
pair n1
twin t1
pair o1 $OLD
pair n2
[ $(( $(date +%s) - t0 )) -lt 440 ] && PAIR_LIMIT=120 pair b1 --ddp-option bucket_cap_mb=50
echo "elapsed $(( $(date +%s) - t0 )) s" | tee -a $S
echo; cat $S
