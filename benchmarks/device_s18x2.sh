#!/usr/bin/env bash
# Session 18, 2x H100, call 1: where the compiled pair's missing 7% goes. A new control: two independent one-GPU
# runs at the same time (the "twin": GPU 0 and GPU 1, no DDP, each with the pair's 14 workers kept off cores 0-3,
# as LOCAL_WORLD_SIZE=2 makes the loader do), beside one GPU alone and the shipped pair, alternated.
# - twin per GPU against one GPU alone = what sharing the machine costs (cores, memory, PCIe, power), no DDP;
# - pair per GPU against twin per GPU = what DDP costs (all-reduces, and each step at the slower rank's pace).
# Prediction: twin 5,300-5,450 img/s per GPU (2-5% below one GPU's 5,580), pair 5,100-5,200 per GPU.
# GPU clocks and power every second beside each run (nvidia-smi), and the ranks' threads 40 s in.
# Then, if time is left, the pair with gradients as bucket views and a static graph (prediction +0.3-1%).
# One call: `bash benchmarks/device_s18x2.sh` on nvidia-h100-x2, carry [.whl].
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
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
t0=$(date +%s)
LIMIT=85 run fill 512 python3 -m imagenet_trainer $TT/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null; leftovers
one() { local name=$1 lim=$2; local smi=$(watch_run $name)
  CUDA_VISIBLE_DEVICES=0 LIMIT=$lim run $name 256 $SE -- $TT/$name $C --batch-size 256 > /dev/null; kill $smi
  half $name 256; steps $name; smi_summary $name; leftovers; }
twin() { local name=$1; local smi=$(watch_run $name) pids="" s=$(date +%s)
  for g in 0 1; do
    LOCAL_WORLD_SIZE=2 CUDA_VISIBLE_DEVICES=$g timeout 62 $SE -- $TT/${name}_$g $C --batch-size 256 --workers 14 \
      --print-freq 10 > /tmp/${name}_$g.log 2>&1 &
    pids="$pids $!"
  done
  wait $pids; kill $smi
  echo "== $name (GPU 0 and GPU 1 alone, at once, 14 workers each) $(( $(date +%s) - s )) s" | tee -a $S
  for g in 0 1; do
    grep -E "first training|^data" /tmp/${name}_$g.log | tee -a $S
    python3 benchmarks/steady_rate.py /tmp/${name}_$g.log --batch 256 --from 0.5 | sed "s/^/   gpu $g: /" | tee -a $S
    steps ${name}_$g; { echo "== ${name}_$g"; cat /tmp/${name}_$g.log; } >> $OUT/logs.txt
  done
  smi_summary $name; leftovers; }
pair() { local name=$1; shift; local smi=$(watch_run $name)
  LIMIT=62 run $name 512 $SE "$@" -- $TT/$name $C --batch-size 512 --ngpu 2 > /dev/null; kill $smi
  half $name 512; steps $name; smi_summary $name; leftovers; }
one c1 95
twin t1
pair s1
twin t2
pair s2
[ $(( $(date +%s) - t0 )) -lt 470 ] && pair v1 --ddp-option gradient_as_bucket_view=True --ddp-option static_graph=True
echo "elapsed $(( $(date +%s) - t0 )) s" | tee -a $S
echo; cat $S
