#!/usr/bin/env bash
# Session 21, a 2-GPU call (nvidia-h100-x2, carry [.whl]): DDP's own ceiling (benchmarks/ddp_ceiling.py, compiled
# resnet50, random batches on the device, 100 steps) with the DDP options train ships (bucket views, no buffer
# broadcast, a static graph), against the gradients in one bucket (bucket_cap_mb=128: the all-reduce after the
# backward, none beside it) and in small ones (5 MB: more of it beside the backward), alternated; one GPU first.
# Call 3 (2x H200): one GPU 6,828 img/s, the pair's ceiling 6,399-6,437 per GPU (94%), NCCL's stream at high
# priority the same. Prediction, if the all-reduce's kernels beside the backward are what DDP costs: one bucket
# 1-3 points nearer one GPU, 5-MB buckets further from it. If one bucket changes nothing, the cost is not the
# overlap (as session 12's one graph suggested), and what is left is the ranks waiting for each other.
set -u
source benchmarks/device_x2_lib.sh
unset PYTHONDONTWRITEBYTECODE; export PYTHONPYCACHEPREFIX=/tmp/pyc XDG_CACHE_HOME=/tmp/xdg
nvidia-smi -L | tee $S; nproc | tee -a $S
s=$(date +%s); CUDA_VISIBLE_DEVICES=0 timeout 90 python3 benchmarks/ddp_ceiling.py --arch resnet50 --compile --steps 100 > /tmp/one.log 2>&1
echo "== one rc=$? $(( $(date +%s) - s )) s" | tee -a $S; grep -o '"rank".*' /tmp/one.log | cut -c1-300 | tee -a $S
SHIP="--bucket-view --no-broadcast-buffers --ddp-option static_graph=True"
for r in 1 2; do
  LIMIT=90 ddp_ceiling2 ship$r $SHIP > /dev/null
  LIMIT=90 ddp_ceiling2 one_bucket$r $SHIP --ddp-option bucket_cap_mb=128 > /dev/null
  LIMIT=90 ddp_ceiling2 small$r $SHIP --ddp-option bucket_cap_mb=5 > /dev/null
done
echo; cat $S
