#!/usr/bin/env bash
# Issues #4 and #8, second round: the JPEG loader (--cache off; the 13k tree would otherwise be cached
# on the GPU) for ResNet-50 on 1 and 2 GPUs, and --recipe fast compiled on 1 GPU against bench's ceiling.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site IMAGENET_TRAINER_CACHE=/tmp/itcache PYTHONUNBUFFERED=1
S=$OUT/summary.txt
nvidia-smi -L | tee $S
CUDA_VISIBLE_DEVICES=0 timeout 100 python3 -m pytest -q -m gpu -p no:cacheprovider tests/data/test_cache.py 2>&1 | tail -2 | tee -a $S
[ -d /tmp/inet13k ] || python3 -m imagenet_trainer sample-data /tmp/inet13k --kind imagenet-like --classes 100 --per-class 130 --val-per-class 10 > /dev/null 2>&1
python3 -c "
from imagenet_trainer.config import TrainConfig
from imagenet_trainer.data.build import load_indexes
print('indexed', len(load_indexes(TrainConfig(data='/tmp/inet13k'))[0]))" | tee -a $S
run() {  # name, global batch, command...
  local name=$1 batch=$2; shift 2
  local s=$(date +%s%N)
  timeout ${LIMIT:-170} "$@" --print-freq 10 > /tmp/$name.log 2>&1
  local rc=$? e=$(date +%s%N)
  echo "== $name rc=$rc wall=$(( (e - s) / 1000000 )) ms: $*" | tee -a $S
  grep -E "first training|^epoch|^time:|^data|^model" /tmp/$name.log | tee -a $S
  python3 benchmarks/steady_rate.py /tmp/$name.log --batch $batch | tee -a $S
  { echo "== $name"; cat /tmp/$name.log; } >> $OUT/logs.txt
}
T="python3 -m imagenet_trainer train --data /tmp/inet13k --arch resnet50 --epochs 1 --epoch-size 150 --cache off --output /tmp/runs"
CUDA_VISIBLE_DEVICES=0 run r50_1gpu 256 $T/r50_1gpu --batch-size 256
run r50_2gpu 512 $T/r50_2gpu --batch-size 512 --ngpu 2
CUDA_VISIBLE_DEVICES=0 LIMIT=200 run r50c_fast 256 $T/r50c_fast --batch-size 256 --backend compile --epoch-size 200 --val-every 0
CUDA_VISIBLE_DEVICES=0 timeout 200 python3 -m imagenet_trainer bench train --data /tmp/inet13k --arch resnet50 --backend compile \
  --steps 80 --warmup 40 --json > $OUT/bench_r50c.json 2> /tmp/bench.err || tail -3 /tmp/bench.err
python3 benchmarks/summarize.py $OUT/bench_r50c.json | tee -a $S
