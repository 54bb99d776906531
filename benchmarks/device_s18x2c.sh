#!/usr/bin/env bash
# Session 18, 2-GPU call 3: the shipped code (DDP with gradients as bucket views and a static graph, commit after
# acee1db) against the same with DDP's copies as before (step_events.py --ddp-option gradient_as_bucket_view=False
# --ddp-option static_graph=False), the pair alternated, one GPU as the baseline; the GPU-marked tests while the
# 13k tree is written. Predictions: the new pair 2-9% above the old one, and at 1.88-1.95x one GPU.
# One call: `bash benchmarks/device_s18x2c.sh` on nvidia-h100-x2, carry [.whl].
set -u
source benchmarks/device_x2_lib.sh
t0=$(date +%s)
nvidia-smi -L | tee $S; nproc | tee -a $S
unset PYTHONDONTWRITEBYTECODE; export PYTHONPYCACHEPREFIX=/tmp/pyc XDG_CACHE_HOME=/tmp/xdg
gpu_tests_beside_tree13k 150
val100
Q=index,clocks.sm,clocks.mem,power.draw,temperature.gpu,utilization.gpu
for f in clocks_event_reasons.active clocks_throttle_reasons.active; do  # why the clocks are held down, if it can say
  nvidia-smi --query-gpu=$f --format=csv,noheader > /dev/null 2>&1 && { Q=$Q,$f; break; }
done
echo "nvidia-smi query: $Q" | tee -a $S
watch_run() {  # name: GPU clocks every second (background; its pid printed), and the threads 40 s in
  nvidia-smi --query-gpu=$Q --format=csv,noheader -l 1 > $OUT/smi_$1.csv 2>&1 &
  local smi=$!
  ( sleep 40; ps -eLo pid,tid,psr,pcpu,ni,comm --sort=-pcpu | head -60 > $OUT/threads_$1.txt ) > /dev/null 2>&1 &
  echo $smi
}
smi_summary() {  # name: per GPU, the median SM clock and power over the rows with utilization >= 90%
  python3 - $OUT/smi_$1.csv <<'EOF' | tee -a $S
import statistics, sys
rows = [r.split(", ") for r in open(sys.argv[1]).read().splitlines() if r.count(",") >= 5]
for gpu in sorted({r[0] for r in rows}):
    busy = [r for r in rows if r[0] == gpu and r[5].rstrip(" %").isdigit() and int(r[5].rstrip(" %")) >= 90]
    if busy:
        clk = [float(r[1].split()[0]) for r in busy]; pw = [float(r[3].split()[0]) for r in busy]
        print(f"   gpu {gpu}: {len(busy)} busy s, SM clock median {statistics.median(clk):.0f} min {min(clk):.0f} MHz, "
              f"power median {statistics.median(pw):.0f} W, reasons {sorted({r[6] for r in busy if len(r) > 6})}")
EOF
}
TT="train --data /tmp/inet13k --arch resnet50 --epochs 1 --cache off --val-every 0 --output /tmp/runs"
C="--backend compile --epoch-size 600 --val-dir /tmp/val100 --loader cpu"
SE="python3 benchmarks/step_events.py --from 0.5 --to 0.9"
OLD="--ddp-option gradient_as_bucket_view=False --ddp-option static_graph=False"
LIMIT=85 run fill 512 python3 -m imagenet_trainer $TT/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null; leftovers
one() { local name=$1 lim=$2; shift 2; local smi=$(watch_run $name)
  CUDA_VISIBLE_DEVICES=0 LIMIT=$lim run $name 256 $SE "$@" -- $TT/$name $C --batch-size 256 > /dev/null; kill $smi
  half $name 256; steps $name; smi_summary $name; leftovers; }
pair() { local name=$1; shift; local smi=$(watch_run $name)
  LIMIT=55 run $name 512 $SE "$@" -- $TT/$name $C --batch-size 512 --ngpu 2 > /dev/null; kill $smi
  half $name 512; steps $name; smi_summary $name; leftovers; }
one c1 95
pair n1
pair o1 $OLD
pair n2
[ $(( $(date +%s) - t0 )) -lt 420 ] && pair o2 $OLD
echo "elapsed $(( $(date +%s) - t0 )) s" | tee -a $S
echo; cat $S
