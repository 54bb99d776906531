#!/usr/bin/env bash
# Planned next 2-GPU call (written in session 17). Session 17 found a compiled pair's runs either steady (1.85-1.86x,
# each rank's step within 1-3% of its median) or jittery (1.73-1.75x, the host behind in 1-5% of the steps), the mode
# changing from run to run with the same code, and a steady pair's backward 3.0-3.5 ms longer than one GPU's (1.9x
# allows about 2.4). This call:
# 1. looks for what starts the jittery mode: the GPUs' clocks, power and temperature every second, and the ranks'
#    threads (core, CPU share) in the middle of each run, beside step_events.py's figures;
# 2. tries two DDP options on the backward, alternated with the shipped pair: gradients as views into the
#    all-reduce buckets (no copy per parameter) with a static graph. Prediction: steady runs 0.3-1% faster.
# One call: `bash benchmarks/device_next_x2.sh` on nvidia-h100-x2, carry [.whl].
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
val100
watch_run() {  # name: GPU clocks every second, and one look at the ranks' threads 40 s in
  nvidia-smi --query-gpu=index,clocks.sm,clocks.mem,power.draw,temperature.gpu,utilization.gpu --format=csv,noheader \
    -l 1 > $OUT/smi_$1.csv 2>&1 &
  local smi=$!
  ( sleep 40; ps -eLo pid,tid,psr,pcpu,ni,comm --sort=-pcpu | head -60 > $OUT/threads_$1.txt ) &
  echo $smi
}
TT="train --data /tmp/inet13k --arch resnet50 --epochs 1 --cache off --val-every 0 --output /tmp/runs"
C="--backend compile --epoch-size 600 --val-dir /tmp/val100 --loader cpu"
SE="python3 benchmarks/step_events.py --from 0.5 --to 0.9"
t0=$(date +%s)
LIMIT=120 run fill 512 python3 -m imagenet_trainer $TT/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null; leftovers
CUDA_VISIBLE_DEVICES=0 LIMIT=95 run c1 256 $SE -- $TT/c1 $C --batch-size 256 > /dev/null; half c1 256; steps c1; leftovers
pair() { local name=$1; shift; local smi=$(watch_run $name)
  LIMIT=62 run $name 512 $SE "$@" -- $TT/$name $C --batch-size 512 --ngpu 2 > /dev/null; kill $smi
  half $name 512; steps $name; leftovers; }
V="--ddp-option gradient_as_bucket_view=True --ddp-option static_graph=True"
pair s1
pair v1 $V
pair s2
[ $(( $(date +%s) - t0 )) -lt 480 ] && pair v2 $V
echo "elapsed $(( $(date +%s) - t0 )) s" | tee -a $S
echo; cat $S
