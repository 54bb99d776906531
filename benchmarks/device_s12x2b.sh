#!/usr/bin/env bash
# Session 12, 2-GPU call B (after call A, on the warm machine): benchmarks/ddp_ceiling.py splits what the
# compiled pair loses: per GPU on random batches (the ceiling), beside the loader (its batches dropped) and
# fed by it (fp32 gradients: call A found bf16 no faster); one GPU without DDP the same way; the pair again.
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
dc() {  # name, processes, ddp_ceiling.py options...
  local name=$1 n=$2; shift 2; local s=$(date +%s)
  timeout 200 torchrun --nproc-per-node $n benchmarks/ddp_ceiling.py --arch resnet50 --compile --data /tmp/inet13k \
    --steps 100 "$@" > /tmp/$name.log 2>&1
  echo "== $name rc=$? $(( $(date +%s) - s )) s: $n processes $*" | tee -a $S
  grep '^{' /tmp/$name.log | tee -a $S; { echo "== $name"; cat /tmp/$name.log; } >> $OUT/logs.txt
}
dc dc2fp32 2 --grads fp32
CUDA_VISIBLE_DEVICES=0 dc dc1 1
dc dc2again 2 --grads fp32
