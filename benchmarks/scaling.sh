#!/usr/bin/env bash
# Multi-GPU scaling of `train` from JPEG: one GPU against N GPUs of this machine, in one call.
#
#   bash benchmarks/scaling.sh [NGPU] [DATA]        # NGPU default 2; DATA default /tmp/inet13k
#
# Compiled ResNet-50, 256 images per GPU, one epoch of 600 batches, JPEG decoded every batch (--cache off),
# everything else as shipped (--loader auto, --ddp-graph auto). A first short launch of the N-GPU set-up fills
# torch.compile's cache and caches the loader probe's choice, as an earlier run of the same set-up would.
# Each rate is the steady one over batches 180-600 (benchmarks/steady_rate.py on the run's progress lines),
# and the ratio is N GPUs' rate over one GPU's. DATA is written first if it is not there (the 13,000-image
# ImageNet-shaped tree of BENCHMARKS.md). Logs go to $OUT (default: a new temporary folder).
# Needs the package installed (`make install`); PYTHON defaults to .venv/bin/python, else python3.
set -euo pipefail
n=${1:-2}
data=${2:-/tmp/inet13k}
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-$([ -x "$here/../.venv/bin/python" ] && echo "$here/../.venv/bin/python" || echo python3)}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
if [ "$n" -lt 2 ]; then echo "NGPU must be 2 or more" >&2; exit 2; fi

[ -d "$data/train" ] || "$py" -m imagenet_trainer sample-data "$data" --kind imagenet-like --classes 100 \
  --per-class 130 --val-per-class 10

train() {  # log name, options...
  local name=$1; shift
  rm -rf "$out/$name"  # a run folder is never trained over
  "$py" -m imagenet_trainer train --data "$data" --arch resnet50 --backend compile --epochs 1 --cache off \
    --val-every 0 --print-freq 10 --output "$out/$name" "$@" > "$out/$name.out" 2> "$out/$name.log"
}
rate() {  # log name, global batch: the steady images/s
  "$py" "$here/steady_rate.py" "$out/$1.log" --batch "$2" | cut -d' ' -f1
}

train fill --epoch-size 10 --batch-size $((256 * n)) --ngpu "$n"
CUDA_VISIBLE_DEVICES=${ONE_GPU:-0} train one --epoch-size 600 --batch-size 256
train many --epoch-size 600 --batch-size $((256 * n)) --ngpu "$n"

one=$(rate one 256)
many=$(rate many $((256 * n)))
card=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 || echo unknown)
commit=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
"$py" -c "import sys; one, many, n = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]); \
print(f'1 GPU {one:,.0f} img/s, {n} GPUs {many:,.0f} img/s: {many / one:.3f}x ({sys.argv[4]}, {sys.argv[5]}, commit {sys.argv[6]})')" \
  "$one" "$many" "$n" "$card" "$(date +%F)" "$commit"
echo "logs: $out"
