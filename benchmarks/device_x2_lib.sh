# Shared by the device scripts (source it): install, environment, leftovers and steps (session 17), the 13k imagenet-like tree (make_tree; with
# the GPU tests meanwhile: gpu_tests_beside_tree13k) or the issue's 130k tree with them (tree130k), run NAME GLOBAL_BATCH COMMAND... (a training run
# and its steady rate; half: over the epoch's second half), bench A/B helpers (b, brief, loader_alone), 2-GPU set-up
# and pairs (x2_resnet50, x2_pairs, val100), ddp_ceiling2 (benchmarks/ddp_ceiling.py on 2 GPUs), and (session 18)
# smi_query, watch_run NAME (GPU clocks and power beside a run; into SMI_DIR, default $OUT) and smi_summary NAME.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site IMAGENET_TRAINER_CACHE=/tmp/itcache PYTHONUNBUFFERED=1
S=$OUT/summary.txt

make_tree() {
  [ -d /tmp/inet13k ] && return
  local t0=$(date +%s)
  python3 -m imagenet_trainer sample-data /tmp/inet13k --kind imagenet-like --classes 100 --per-class 130 --val-per-class 10 > /dev/null 2>&1
  echo "sample-data 13k: $(( $(date +%s) - t0 )) s" | tee -a $S
  python3 -c "
from imagenet_trainer.config import TrainConfig
from imagenet_trainer.data.build import load_indexes
print('indexed', len(load_indexes(TrainConfig(data='/tmp/inet13k'))[0]))" | tee -a $S
}

run() {  # name, global batch, command... (PF: batches between progress lines, default 10)
  local name=$1 batch=$2; shift 2
  local s=$(date +%s%N)
  timeout ${LIMIT:-170} "$@" --print-freq ${PF:-10} > /tmp/$name.log 2>&1
  local rc=$? e=$(date +%s%N)
  echo "== $name rc=$rc wall=$(( (e - s) / 1000000 )) ms: $*" | tee -a $S
  grep -E "first training|^epoch|^time:|^data|^model|^loader auto" /tmp/$name.log | tee -a $S
  python3 benchmarks/steady_rate.py /tmp/$name.log --batch $batch | tee -a $S
  { echo "== $name"; cat /tmp/$name.log; } >> $OUT/logs.txt
}

cifar_data() {  # the CIFAR-10 JPEG set (carried as .devdata) unpacked to /tmp/c/cifar10
  mkdir -p /tmp/c && [ -d /tmp/c/cifar10 ] || tar xzf .devdata/cifar10-jpeg.tar.gz -C /tmp/c
}

cifar() {  # name, train options...: one CIFAR-10 run, its wall clock, result and time split (session 5 scripts)
  local name=$1; shift; local s=$(date +%s%N)
  timeout ${CIFAR_LIMIT:-150} python3 -m imagenet_trainer train --data /tmp/c/cifar10 --output /tmp/runs/$name --print-freq 1000 \
    --val-every 0 --weight-decay 5e-4 --batch-size 512 "$@" > /tmp/$name.log 2>&1
  local e=$(date +%s%N)
  echo "$name $*: wall $(( (e - s) / 1000000 )) ms | $(tail -1 /tmp/$name.log | cut -c1-70)" | tee -a $S
  grep -E "^time:" /tmp/$name.log | tee -a $S; { echo "== $name"; cat /tmp/$name.log; } >> $OUT/logs.txt
}

with_bytecode() {  # run Python as an installed package does (the device image ships no .pyc); log the card
  unset PYTHONDONTWRITEBYTECODE; export PYTHONPYCACHEPREFIX=/tmp/pyc XDG_CACHE_HOME=/tmp/xdg
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $S
}

brief() {  # one line of a bench --json file (with --loader auto, the probe's rates and seconds too)
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print({k: round(v, 3) if isinstance(v, float) else v for k, v in d.items() if k in ('loader','images_per_s','cpu_share','of_ceiling','first_batch_s')}, 'ceiling', round(d['ceiling']['images_per_s']), {k: round(v, 1) for k, v in d.get('probe', {}).items() if isinstance(v, float)})" $1 2>&1 | tee -a $S
}

b() {  # label, code (the name of a PYTHONPATH variable: BASE or NEW), bench train args...; tree $T, limit $LIM s
  local label=$1 v=$2; shift 2
  echo "-- $label $v" | tee -a $S
  PYTHONPATH=${!v} timeout ${LIM:-120} python3 -m imagenet_trainer bench train --data $T --json "$@" > /tmp/$label.$v.json 2>/tmp/$label.$v.err
  brief /tmp/$label.$v.json; tail -2 /tmp/$label.$v.err >> $S
}

x2_resnet50() {  # 2-GPU calls: log the cards, bytecode and compile caches, the 13k tree; T = the train command
  nvidia-smi -L | tee $S; nproc | tee -a $S
  unset PYTHONDONTWRITEBYTECODE; export PYTHONPYCACHEPREFIX=/tmp/pyc XDG_CACHE_HOME=/tmp/xdg
  make_tree
  T="python3 -m imagenet_trainer train --data /tmp/inet13k --arch resnet50 --epochs 1 --epoch-size 250 --cache off --val-every 0 --output /tmp/runs"
}

gpu_tests_beside_tree13k() {  # the GPU-marked tests (timeout ${1:-240} s) while make_tree writes the 13k tree
  ( make_tree > /dev/null 2>&1 ) &
  local tree=$! t0=$(date +%s)
  timeout ${1:-240} python3 -m pytest -q -m gpu tests -p no:cacheprovider > $OUT/gpu_tests.txt 2>&1
  echo "gpu tests rc=$? in $(( $(date +%s) - t0 )) s: $(tail -1 $OUT/gpu_tests.txt)" | tee -a $S
  wait $tree
}

tree130k() {  # the issue's 130,000-image tree in /tmp/inet130k (T), written while the GPU-marked tests run
  # (timeout ${1:-240} s), unless it is there already (a warm machine); then its index, cached
  T=/tmp/inet130k
  if [ ! -d $T ]; then
    ( local t0=$(date +%s)
      python3 -m imagenet_trainer sample-data $T --kind imagenet-like --classes 100 --per-class 1300 --val-per-class 10 > /dev/null 2>&1
      echo "sample-data 130k: $(( $(date +%s) - t0 )) s, $(du -sh $T | cut -f1)" >> $S ) &
    local tree=$! t0=$(date +%s)
    timeout ${1:-240} python3 -m pytest -q -m gpu tests -p no:cacheprovider > $OUT/gpu_tests.txt 2>&1
    echo "gpu tests rc=$? in $(( $(date +%s) - t0 )) s (while the tree was written): $(tail -1 $OUT/gpu_tests.txt)" | tee -a $S
    wait $tree
  fi
  python3 -c "
from imagenet_trainer.config import TrainConfig
from imagenet_trainer.data.build import load_indexes
print('indexed', len(load_indexes(TrainConfig(data='$T'))[0]))" | tee -a $S
}

x2_pairs() {  # 1 GPU against 2, twice, eager; then the pair compiled (a first short run fills the compile cache)
  CUDA_VISIBLE_DEVICES=0 run fill 256 $T/f --batch-size 256 --epoch-size 10 > /dev/null
  for r in 1 2; do
    CUDA_VISIBLE_DEVICES=0 run g1_$r 256 $T/g1_$r --batch-size 256
    run g2_$r 512 $T/g2_$r --batch-size 512 --ngpu 2
  done
  LIMIT=200 run fillc 512 $T/fc --batch-size 512 --epoch-size 10 --ngpu 2 --backend compile > /dev/null
  CUDA_VISIBLE_DEVICES=0 LIMIT=200 run c1 256 $T/c1 --batch-size 256 --backend compile
  LIMIT=200 run c2 512 $T/c2 --batch-size 512 --ngpu 2 --backend compile
}

loader_alone() {  # code (the name of a PYTHONPATH variable): bench loader --loader hybrid on $T, img/s printed
  local v=$1; echo "-- loader $v" | tee -a $S
  PYTHONPATH=${!v} timeout 60 python3 -m imagenet_trainer bench loader --data $T --loader hybrid --steps 150 --warmup 30 --json > /tmp/loader.$v.json 2>/dev/null
  python3 -c "import json; d=json.load(open('/tmp/loader.$v.json')); print(round(d['images_per_s']))" | tee -a $S
}

val100() {  # /tmp/val100: one val image per class of the 13k tree, for short final evaluations
  mkdir -p /tmp/val100 && for d in /tmp/inet13k/val/*/; do c=$(basename $d); mkdir -p /tmp/val100/$c; cp $(ls $d* | head -1) /tmp/val100/$c/; done
}

half() {  # name, global batch: the steady rate of /tmp/NAME.log over the second half of its epoch
  python3 benchmarks/steady_rate.py /tmp/$1.log --batch $2 --from 0.5 | tee -a $S
}

ddp_ceiling2() {  # name, ddp_ceiling.py options...: compiled resnet50 under torchrun on 2 GPUs, 100 steps a phase
  local name=$1; shift; local s=$(date +%s)
  timeout ${LIMIT:-170} torchrun --nproc-per-node 2 benchmarks/ddp_ceiling.py --arch resnet50 --compile --steps 100 "$@" \
    > /tmp/$name.log 2>&1
  echo "== $name rc=$? $(( $(date +%s) - s )) s: $*" | tee -a $S; grep -o '"rank".*' /tmp/$name.log | cut -c1-420 | tee -a $S
}

leftovers() {  # processes of earlier runs still alive (then killed), and the load average (session 16 on)
  local n=$(pgrep -fc "imagenet_trainer|step_events|start_phases|compile_worker" || true)
  [ "$n" != 0 ] && pkill -9 -f "imagenet_trainer|step_events|start_phases|compile_worker"; sleep 1
  echo "   left over: $n processes | load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a $S
}

steps() {  # name: the [steps] and [split] lines (benchmarks/step_events.py) of /tmp/NAME.log
  grep -h '^\[steps\]' /tmp/$1.log | cut -c1-600 | tee -a $S
  grep -h '^\[split\]' /tmp/$1.log | cut -c1-1200 | tee -a $S
}

smi_query() {  # Q: the nvidia-smi fields watch_run logs (session 18)
  Q=index,clocks.sm,clocks.mem,power.draw,temperature.gpu,utilization.gpu
  for f in clocks_event_reasons.active clocks_throttle_reasons.active; do  # why the clocks are held down, if it can say
    nvidia-smi --query-gpu=$f --format=csv,noheader > /dev/null 2>&1 && { Q=$Q,$f; break; }
  done
  echo "nvidia-smi query: $Q" | tee -a $S
}
watch_run() {  # name: GPU clocks every second (background; its pid printed), and the threads 40 s in
  nvidia-smi --query-gpu=$Q --format=csv,noheader -l 1 > ${SMI_DIR:-$OUT}/smi_$1.csv 2>&1 &
  local smi=$!
  ( sleep 40; ps -eLo pid,tid,psr,pcpu,ni,comm --sort=-pcpu | head -60 > ${SMI_DIR:-$OUT}/threads_$1.txt ) > /dev/null 2>&1 &
  echo $smi
}
smi_summary() {  # name: per GPU, the median SM clock and power over the rows with utilization >= 90%
  python3 - ${SMI_DIR:-$OUT}/smi_$1.csv <<'EOF' | tee -a $S
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

compiled_runs() {  # the compiled resnet50 runs of sessions 17-18 under step_events.py: TT, C, SE, then one, twin, pair
  TT="train --data /tmp/inet13k --arch resnet50 --epochs 1 --cache off --val-every 0 --output /tmp/runs"
  C="--backend compile --epoch-size 600 --val-dir /tmp/val100 --loader cpu"
  SE="python3 benchmarks/step_events.py --from 0.5 --to 0.9"
}
one() {  # name, limit, step_events switches...: one GPU (GPU 0)
  local name=$1 lim=$2; shift 2; local smi=$(watch_run $name)
  CUDA_VISIBLE_DEVICES=0 LIMIT=$lim run $name 256 $SE "$@" -- $TT/$name $C --batch-size 256 > /dev/null; kill $smi
  half $name 256; steps $name; smi_summary $name; leftovers
}
twin() {  # name: GPU 0 and GPU 1 alone at once (no DDP), 14 workers each kept off cores 0-3, as a pair's ranks
  local name=$1; local smi=$(watch_run $name) pids="" s=$(date +%s)
  for g in 0 1; do
    LOCAL_WORLD_SIZE=2 CUDA_VISIBLE_DEVICES=$g timeout ${PAIR_LIMIT:-68} $SE -- $TT/${name}_$g $C --batch-size 256 \
      --workers 14 --print-freq 10 > /tmp/${name}_$g.log 2>&1 &
    pids="$pids $!"
  done
  wait $pids; kill $smi
  echo "== $name (GPU 0 and GPU 1 alone, at once, 14 workers each) $(( $(date +%s) - s )) s" | tee -a $S
  for g in 0 1; do
    grep -E "first training|^data" /tmp/${name}_$g.log | tee -a $S
    python3 benchmarks/steady_rate.py /tmp/${name}_$g.log --batch 256 --from 0.5 | sed "s/^/   gpu $g: /" | tee -a $S
    steps ${name}_$g; { echo "== ${name}_$g"; cat /tmp/${name}_$g.log; } >> $OUT/logs.txt
  done
  smi_summary $name; leftovers
}
pair() {  # name, step_events switches...: the pair (--ngpu 2); 68 s reach batch 540 on a slow 2x H100 (session 18)
  local name=$1; shift; local smi=$(watch_run $name)
  LIMIT=${PAIR_LIMIT:-68} run $name 512 $SE "$@" -- $TT/$name $C --batch-size 512 --ngpu 2 > /dev/null; kill $smi
  half $name 512; steps $name; smi_summary $name; leftovers
}
