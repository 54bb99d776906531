#!/usr/bin/env bash
# Session 12, 2-GPU call D: one all-reduce of all ResNet-50 gradients takes 0.39 ms here (call B), yet DDP
# costs the compiled model 4.3% per GPU on random batches (5,418 against 5,658). torch.compile splits a DDP
# model into one graph per gradient bucket (DDPOptimizer) so that all-reduces overlap the backward; one whole
# graph fuses more and launches less, and all-reduces after the backward. DDP ceiling whole, train's pair
# with the whole graph (optimize_ddp set before the fork), 1 GPU, then the DDP ceiling split as before.
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
mkdir -p /tmp/val100 && for d in /tmp/inet13k/val/*/; do c=$(basename $d); mkdir -p /tmp/val100/$c; cp $(ls $d* | head -1) /tmp/val100/$c/; done
C="--backend compile --epoch-size 600 --val-dir /tmp/val100 --loader cpu"
half() { python3 benchmarks/steady_rate.py /tmp/$1.log --batch $2 --from 0.5 | tee -a $S; }
dc() {  # name, ddp_ceiling.py options...
  local name=$1; shift; local s=$(date +%s)
  timeout 150 torchrun --nproc-per-node 2 benchmarks/ddp_ceiling.py --arch resnet50 --compile --steps 100 "$@" > /tmp/$name.log 2>&1
  echo "== $name rc=$? $(( $(date +%s) - s )) s: $*" | tee -a $S; grep '^{' /tmp/$name.log | cut -c1-250 | tee -a $S
}
dc dcwhole --whole-graph
printf 'import runpy, torch._dynamo\ntorch._dynamo.config.optimize_ddp = False\nrunpy.run_module("imagenet_trainer", run_name="__main__")\n' > /tmp/whole.py
LIMIT=140 run c2whole 512 ${T/-m imagenet_trainer//tmp/whole.py}/c2whole $C --batch-size 512 --ngpu 2; half c2whole 512
CUDA_VISIBLE_DEVICES=0 LIMIT=80 run c1 256 $T/c1 $C --batch-size 256; half c1 256
dc dcsplit
