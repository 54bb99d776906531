#!/usr/bin/env bash
# Session 19, third 2-GPU call (nvidia-h100-x2, carry [.whl]): does NCCL's share of the SMs cost the pair?
# Calls 1-2 (2x H100): shipped pairs 10,026 / 9,827 / 9,926 img/s against one GPU's 5,502 / 5,489 (1.79-1.83x); the
# pair's backward median 32.2 ms against 29.8 on one GPU, its 90th percentile 39-44 ms. Hypothesis: NCCL's all-reduce
# kernels hold SMs beside the backward, and spin on them while the other rank catches up. With at most 4 channels
# (NCCL_MAX_NCHANNELS=4; the all-reduce of all gradients took 0.4 ms with NCCL's own choice, session 12), they hold fewer.
# Prediction: the pair +1-3%, the backward's median and 90th percentile lower. Alternated: shipped, 4 channels, ...
set -u
source benchmarks/device_x2_lib.sh
t0=$(date +%s)
x2_resnet50; val100; smi_query; compiled_runs
LIMIT=85 run fill 512 python3 -m imagenet_trainer $TT/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null; leftovers
left() { [ $(( $(date +%s) - t0 )) -lt $1 ]; }
pair s1
NCCL_MAX_NCHANNELS=4 NCCL_MAX_CTAS=4 pair k1
left 300 && one c1 95
left 390 && NCCL_MAX_NCHANNELS=4 NCCL_MAX_CTAS=4 pair k2
echo "elapsed $(( $(date +%s) - t0 )) s" | tee -a $S
echo; cat $S
